"""Stroke scale: stylize at a working size chosen for the painting's strokes, then bring the result back to the
photo's full size with the photo's own detail.

The network paints strokes a few pixels wide whatever the picture's size, so a 20 MP photo stylized at full
size looks like fine noise from a normal viewing distance. With a style scale S the network runs on the
photo scaled down by S (strokes S times as large against the picture), and the stylization is brought back
up by guided detail transfer, after the fast guided filter (He & Sun 2015):

    out = up(P) + up(A) * (I - up(I_low))

P is the stylization at the working size, I the photo's full-size luminance, I_low the luminance of the
scaled-down photo the network saw, up() bilinear upsampling, and A per channel the slope of the guided
filter's local linear model of P against I_low (box windows of RADIUS px at the working size, regularised
by EPS): where the painting follows the photo's light and dark, the photo's fine detail (what scaling down
took away: I - up(I_low)) comes back in the same proportion; where the painting ignores the photo (its own
texture), A is about 0 and the strokes stay as painted. At the working size the result is the stylization
itself: the detail term has nothing at the scales the network saw.

Everything is computed in row strips, so a full-size result needs a few bytes per pixel beyond the output."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

AUTO_PIXELS = 1_000_000  # `auto`: the network sees at most this many pixels (a 1 MP photo is left as it is)
RADIUS = 2               # guided filter window radius, in working-size pixels
EPS = 1e-3               # regularisation of the slope, in (0..1 intensity)^2: detail comes back where the
#                          local contrast is above ~0.03 (sqrt(EPS)); flat areas get none of the photo's noise
STRIP_PIXELS = 2_000_000  # output pixels per strip


def style_scale_for(style_scale: float | str, h: int, w: int) -> float:
    """The scale a picture of h x w is stylized at: `auto` scales down to at most AUTO_PIXELS (never up)."""
    if style_scale == "auto":
        return max(1.0, math.sqrt(h * w / AUTO_PIXELS))
    return float(style_scale)


def working_size(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(1, round(h / scale)), max(1, round(w / scale))


def downscale(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """RGB uint8 scaled down to h x w, antialiased (Pillow's bilinear filter, as wide as the scale)."""
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) BT.601 luminance."""
    r, g, b = rgb.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over (2r+1)^2 windows, over the pixels that exist at the borders."""
    if x.device.type != "cpu" or r == 0:
        return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    # On the CPU OpenCV's running-sum box filter is ~40x avg_pool2d's (it is on the webcam's path every frame).
    window, zeros = (2 * r + 1, 2 * r + 1), cv2.BORDER_CONSTANT
    planes = x.float().contiguous().numpy()
    count = cv2.boxFilter(np.ones(planes.shape[-2:], np.float32), -1, window, normalize=False, borderType=zeros)
    out = np.empty_like(planes)
    for index in np.ndindex(*planes.shape[:2]):
        out[index] = cv2.boxFilter(planes[index], -1, window, normalize=False, borderType=zeros) / count
    return torch.from_numpy(out)


class DetailUpsampler:
    """The stylization at the working size, ready to be brought up to full size strip by strip (`rows`)."""

    def __init__(self, styled: torch.Tensor, photo_low: torch.Tensor, h: int, w: int, radius: int = RADIUS,
                 eps: float = EPS):
        """styled, photo_low: (1, 3, h', w') float in [0, 1] on one device; h, w: the full size."""
        guide = luma(photo_low)
        r = min(radius, (min(guide.shape[-2:]) - 1) // 2) if min(guide.shape[-2:]) > 1 else 0
        mean_i, mean_p = _box(guide, r), _box(styled, r)
        cov = _box(guide * styled, r) - mean_i * mean_p
        var = _box(guide * guide, r) - mean_i * mean_i
        slope = _box(cov / (var + eps), r)
        self.low = torch.cat([styled, slope, guide], dim=1)  # (1, 7, h', w')
        self.h, self.w = h, w
        self.cols = _bilinear_taps(w, self.low.shape[-1], self.low.device)

    def rows(self, y0: int, y1: int, photo: torch.Tensor) -> torch.Tensor:
        """Rows y0..y1 of the full-size result, given the photo's rows there ((1, 3, y1 - y0, W) float)."""
        if (y0, y1) == (0, self.h):  # the whole picture (a webcam frame): one resize, the same bilinear taps
            up = _resize_bilinear(self.low, self.h, self.w)
        else:
            i0, i1, wt = _bilinear_taps(self.h, self.low.shape[-2], self.low.device, y0, y1)
            low = torch.lerp(self.low[:, :, i0], self.low[:, :, i1], wt.view(1, 1, -1, 1))
            j0, j1, wt = self.cols
            up = torch.lerp(low[..., j0], low[..., j1], wt)
        styled, slope, guide = up.split((3, 3, 1), dim=1)
        return slope.mul_(luma(photo) - guide).add_(styled).clamp_(0.0, 1.0)


def _resize_bilinear(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(1, C, h', w') -> (1, C, h, w), bilinear with half-pixel centres (OpenCV's INTER_LINEAR on the CPU, a
    few times faster than F.interpolate there; both clamp at the borders as _bilinear_taps does)."""
    if x.device.type != "cpu":
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    planes = x[0].float().contiguous().numpy()
    return torch.from_numpy(np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in planes]))[None]


def _bilinear_taps(out_size: int, in_size: int, device: torch.device, start: int = 0, stop: int | None = None):
    """For output positions start..stop of a bilinear resize (half-pixel centres, as F.interpolate with
    align_corners=False): the two input indices and the weight of the second."""
    pos = (torch.arange(start, out_size if stop is None else stop, device=device, dtype=torch.float64) + 0.5) \
        * (in_size / out_size) - 0.5
    pos = pos.clamp_(min=0)
    i0 = pos.floor().long().clamp_(max=in_size - 1)
    i1 = (i0 + 1).clamp_(max=in_size - 1)
    return i0, i1, (pos - i0).float()


def strip_rows(w: int) -> int:
    return max(1, STRIP_PIXELS // max(1, w))
