"""Tiled inference for pictures of any size: bounded memory, no seams, the same result as one pass.

Why naive tiles fail with this network: each of its instance norm layers (15 in Johnson's network) normalises
with the per-channel mean and variance of its *whole* feature map. A tile run on its own normalises with its
own statistics, which differ from tile to tile: seams and colour shifts. Estimates of the whole picture's
statistics do not fix it: the network's features depend on scale, so a scaled-down copy has other statistics,
and a picture is not the same everywhere, so a sample of it has others too (the PSNR figures:
docs/large-pictures.md; benchmarks/bench_large.py --stats measures them). So the statistics are exact:

- The picture runs layer by layer. A layer's output is computed in bands of rows; a band reads the rows of
  the layer's input it needs plus the convolution's reach (kernel // 2 rows each side, reflected at the
  picture's edges as the network's padding does), so every band is exact and bands join without a seam:
  there is nothing to blend.
- While a layer's output is written, its per-channel statistics are accumulated (per band, merged in
  float64): when the last band is done, the next norm layer has the mean and variance of the whole map,
  as in one pass, and the map is normalised as the next layer reads it.
- Maps at half and quarter resolution are kept whole, in float32 or, where the budget is tight, float16.
  The two full-resolution maps (the first layer's output and the next-to-last's) are kept too where the
  budget allows (`keep_full`); otherwise their statistics come from a sweep that computes the layer and
  drops it, and the layer is computed again where it is read (~17% more work than one pass).

Memory: the kept maps (~70 B per picture pixel in float32, 35 in float16, twice that with keep_full; a map
being read is released band by band as the next one is written) plus one band's working memory (~1.1 KB
per band pixel, BAND_BYTES_PER_PIXEL), against ~1 KB per pixel of the whole picture for one PyTorch pass.

The network must be available as PyTorch modules: the graph runtimes (OpenVINO, ONNX Runtime) run the
whole network in one call and compute instance norm inside their graphs, so tiles always run on the torch
runtime, on the Stylizer's device (the Stylizer chooses; see Stylizer.plan).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from nst_video.model import ConvLayer, ConvNormReLU, FixedNorm, InstanceNorm, ResidualBlock, TransformerNet, norm_affine

# rows(a, b) -> rows a..b of a map, (1, C, b - a, W) float32 on the device, for 0 <= a < b <= the map's height.
Rows = Callable[[int, int], torch.Tensor]

# Working memory per pixel of a band at full resolution (the last layers: 64 channels upsampled, 32
# convolved, the convolution's reordered copies); measured with benchmarks/bench_large.py --memory.
BAND_BYTES_PER_PIXEL = 1100
BAND_PIXELS = 1 << 19  # full-resolution pixels per band where the budget allows (~0.5 MP)


def padded_size(h: int, w: int) -> tuple[int, int, str]:
    """The size the network runs at for an h x w picture, and the padding mode (as model.pad_bottom_right)."""
    m, lo = TransformerNet.SIZE_MULTIPLE, TransformerNet.MIN_SIZE
    th, tw = max(-(-h // m) * m, lo), max(-(-w // m) * m, lo)
    return th, tw, ("reflect" if th - h < h and tw - w < w else "replicate")


def supported(model: nn.Module) -> bool:
    """Whether `model` has the layout Program runs (TransformerNet with ConvNormReLU / ResidualBlock parts)."""
    return (isinstance(model, TransformerNet) and model.pixel_shuffle == 1 and len(model.down) == 3
            and all(isinstance(m, ConvNormReLU) for m in model.down)
            and all(isinstance(m, ResidualBlock) for m in model.res) and len(model.up) == 2)


def map_bytes(model: TransformerNet, pixels: int, dtype: torch.dtype, keep_full: bool = False) -> int:
    """The most the kept maps hold at once for a picture of `pixels` (padded) pixels; keep_full: with the two
    full-resolution maps kept too, instead of computed twice. A map being read shrinks while the next grows
    (Map.release), so the peak is the larger of the two, plus 10% for the bands in flight."""
    c1, c2, c3 = (layer[0][1].out_channels for layer in model.down)
    per_pixel = max(c2 / 4, 2 * c3 / 16)  # elements: a half-resolution map; two quarter maps (residual)
    if keep_full:
        per_pixel = max(per_pixel, c1)
    return int(1.1 * pixels * per_pixel * torch.finfo(dtype).bits / 8)


def band_bytes(pixels: int, fp16: bool = False) -> int:
    return int(pixels * BAND_BYTES_PER_PIXEL * (0.5 if fp16 else 1.0))


def conv_rows(rows: Rows, h: int, conv: nn.Conv2d, pad: int, a: int, b: int, upsample: bool = False) -> torch.Tensor:
    """Output rows a..b of ReflectionPad2d(pad) + conv (after a nearest x2 upsampling, if asked) on a map of
    height h (before upsampling) read through `rows`."""
    s, k = conv.stride[0], conv.kernel_size[0]
    lo, hi = a * s - pad, (b - 1) * s + k - pad  # rows of the (upsampled) input, before padding
    top, bottom = max(0, -lo), max(0, hi - (2 * h if upsample else h))  # rows that are the edge's reflection
    lo, hi = lo + top, hi - bottom
    if upsample:
        x = F.interpolate(rows(lo // 2, (hi + 1) // 2), scale_factor=2, mode="nearest")[..., lo % 2:lo % 2 + hi - lo, :]
    else:
        x = rows(lo, hi)
    x = F.pad(x, (pad, pad, top, bottom), mode="reflect")  # rows and columns in one copy
    return F.conv2d(x.to(conv.weight.dtype), conv.weight, conv.bias, stride=s).float()


class Stats:
    """Per-channel sums of everything written to a map, for the norm layer that reads it."""

    def __init__(self):
        self.count = 0
        self.mean = self.m2 = torch.zeros(0)

    def add(self, y: torch.Tensor) -> None:
        """A band's mean and variance (float32), merged into the running ones in float64 (Chan et al.)."""
        c = y.shape[1]
        flat = y.float().transpose(0, 1).reshape(c, -1)  # a view for one picture: reduced along rows, fast
        n = flat.shape[1]
        # Sum and sum of squares, two plain reductions: several times faster than torch.var_mean on a CPU.
        mean = flat.sum(dim=1, dtype=torch.float64) / n
        var = torch.linalg.vector_norm(flat, dim=1).double().square_().div_(n).sub_(mean.square())
        if bool((var < 1e-4 * mean.square()).any()):  # the mean dwarfs the spread: float32 squares cancel
            var = torch.linalg.vector_norm(flat - mean.float()[:, None], dim=1).double().square_().div_(n)
        var = var.clamp_(min=0)
        if self.count == 0:
            self.mean, self.m2 = mean, var * n
        else:
            delta = mean - self.mean
            total = self.count + n
            self.mean = self.mean + delta * (n / total)
            self.m2 = self.m2 + var * n + delta.square() * (self.count * n / total)
        self.count += n

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean.float(), (self.m2 / self.count).float()


def normalise(layer: InstanceNorm | FixedNorm, stats: Stats, relu: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The norm layer with the whole map's statistics (a FixedNorm: its own), as a function of a band (float32
    or float16) that returns a new float32 band: weight * (x - mean) / sqrt(var + eps) + bias, as x * scale +
    shift."""
    scale, shift = layer.scale_shift() if isinstance(layer, FixedNorm) else norm_affine(layer, *stats.mean_var())
    shift, scale = shift.view(1, -1, 1, 1), scale.view(1, -1, 1, 1)

    def apply(x: torch.Tensor) -> torch.Tensor:
        y = torch.addcmul(shift, x.float(), scale)
        return y.relu_() if relu else y
    return apply


class Map:
    """A whole feature map, written in bands top to bottom and stored as those bands in `dtype`, with the
    statistics of what was written. Bands its last reader has passed are released, so a map being read
    shrinks while the next one grows."""

    def __init__(self, channels: int, h: int, w: int, dtype: torch.dtype, device: torch.device):
        self.h, self.dtype = h, dtype
        self.starts: list[int] = []
        self.bands: list[torch.Tensor | None] = []
        self.stats = Stats()

    def write(self, a: int, y: torch.Tensor) -> None:
        self.starts.append(a)
        self.bands.append(y.to(self.dtype))

    def _overlapping(self, a: int, b: int) -> Iterator[tuple[int, torch.Tensor]]:
        i = max(0, bisect.bisect_right(self.starts, a) - 1)
        while i < len(self.starts) and self.starts[i] < b:
            band = self.bands[i]
            if band is None:
                raise RuntimeError(f"rows {a}..{b} of a map were released before they were read")
            yield self.starts[i], band
            i += 1

    def rows(self, a: int, b: int) -> torch.Tensor:
        """Rows a..b in float32: a view where they lie in one float32 band (readers never change them)."""
        parts = [band[:, :, max(a, s) - s:b - s] for s, band in self._overlapping(a, b)]
        return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)).float()

    def put(self, a: int, y: torch.Tensor) -> None:
        """Overwrite rows a.. with y (rows already written)."""
        for s, band in self._overlapping(a, a + y.shape[-2]):
            lo, hi = max(a, s), min(a + y.shape[-2], s + band.shape[-2])
            band[:, :, lo - s:hi - s] = y[:, :, lo - a:hi - a]

    def release(self, below: int) -> None:
        """Drop the bands that lie wholly above row `below` (no reader needs them any more)."""
        for i, s in enumerate(self.starts):
            band = self.bands[i]
            if band is not None and s + band.shape[-2] <= below:
                self.bands[i] = None


@dataclass
class Program:
    """Johnson's network (any widths and block count) run layer by layer in bands, for one picture.

    read(a, b): rows a..b of the padded picture, (1, 3, b - a, W) float32 in [0, 1] on the device.
    band_pixels: full-resolution pixels per band; map_dtype: how the half/quarter maps are stored."""
    model: TransformerNet
    read: Rows
    h: int
    w: int
    band_pixels: int = BAND_PIXELS
    map_dtype: torch.dtype = torch.float32
    keep_full: bool = False  # store the full-resolution maps too (~17% less work, more memory)

    def _band(self, width: int, scale: int = 1) -> int:
        """Rows per band of a map `scale` times smaller than the picture, `width` wide: bands of band_pixels
        of the picture's pixels (4x as many at quarter resolution, where a pixel of the picture costs a
        quarter of the working memory)."""
        pixels = self.band_pixels * (4 if scale == 4 else 1)
        return max(1, pixels // (scale * scale) // max(1, width))

    def _fill(self, out: Map, compute: Rows, width: int, scale: int, source: Map | None = None,
              needs: Callable[[int], int] | None = None) -> Map:
        """Write `out` band by band; `source` (read for the last time) is released as far as `needs(row)`,
        the first source row that output row `row` and the ones below it read."""
        step = self._band(width, scale)
        for a in range(0, out.h, step):
            y = compute(a, min(out.h, a + step))
            out.stats.add(y)
            out.write(a, y)
            if source is not None and needs is not None:
                source.release(needs(a + step))
        return out

    def _sweep(self, compute: Rows, h: int, width: int, scale: int) -> Stats:
        stats, step = Stats(), self._band(width, scale)
        for a in range(0, h, step):
            stats.add(compute(a, min(h, a + step)))
        return stats

    def run(self) -> Iterator[tuple[int, torch.Tensor]]:
        """Bands of the stylized picture, top to bottom: (first row, (1, 3, rows, W) float32 in [0, 1])."""
        m, h, w = self.model, self.h, self.w
        device = next(m.parameters()).device
        (conv0, norm0, _), (conv1, norm1, _), (conv2, norm2, _) = m.down

        l0 = self._full_resolution(lambda a, b: conv_rows(self.read, h, conv0[1], conv0[0].padding[0], a, b),
                                   conv0[1].out_channels, norm0, device)
        m1 = self._fill(Map(conv1[1].out_channels, h // 2, w // 2, self.map_dtype, device),
                        lambda a, b: conv_rows(l0, h, conv1[1], conv1[0].padding[0], a, b), w // 2, 2,
                        getattr(l0, "kept", None), lambda row: 2 * row - 1)
        n1 = normalise(norm1, m1.stats, relu=True)
        m2 = self._fill(Map(conv2[1].out_channels, h // 4, w // 4, self.map_dtype, device),
                        lambda a, b: conv_rows(lambda i, j: n1(m1.rows(i, j)), h // 2, conv2[1],
                                               conv2[0].padding[0], a, b), w // 4, 4,
                        m1, lambda row: 2 * row - 1)
        m1 = l0 = None  # freed: only m2 is needed from here
        # The residual stream, normalised in place: x <- relu(norm(m2)).
        x, n2 = m2, normalise(norm2, m2.stats, relu=True)
        self._apply(x, n2, w // 4)
        for block in m.res:
            (pad_a, conv_a), norm_a, _, (pad_b, conv_b), norm_b = block.body
            ha = self._fill(Map(conv_a.out_channels, h // 4, w // 4, self.map_dtype, device),
                            lambda a, b, conv_a=conv_a, pad_a=pad_a: conv_rows(x.rows, h // 4, conv_a,
                                                                                 pad_a.padding[0], a, b),
                            w // 4, 4)
            na = normalise(norm_a, ha.stats, relu=True)
            hb = self._fill(Map(conv_b.out_channels, h // 4, w // 4, self.map_dtype, device),
                            lambda a, b, ha=ha, na=na, conv_b=conv_b, pad_b=pad_b: conv_rows(
                                lambda i, j: na(ha.rows(i, j)), h // 4, conv_b, pad_b.padding[0], a, b),
                            w // 4, 4, ha, lambda row: row - 1)
            del ha
            nb = normalise(norm_b, hb.stats, relu=False)
            step = self._band(w // 4, 4)
            for a in range(0, x.h, step):
                x.put(a, nb(hb.rows(a, a + step)).add_(x.rows(a, a + step)))
                hb.release(a + step)
            del hb
        (_, (up_conv0, up_norm0, _)), (_, (up_conv1, up_norm1, _)) = m.up
        u0 = self._fill(Map(up_conv0[1].out_channels, h // 2, w // 2, self.map_dtype, device),
                        lambda a, b: conv_rows(x.rows, h // 4, up_conv0[1], up_conv0[0].padding[0], a, b,
                                               upsample=True), w // 2, 2, x, lambda row: (row - 1) // 2)
        x = m2 = None  # freed
        nu0 = normalise(up_norm0, u0.stats, relu=True)

        l4 = self._full_resolution(
            lambda a, b, u0=u0: conv_rows(lambda i, j: nu0(u0.rows(i, j)), h // 2, up_conv1[1],
                                          up_conv1[0].padding[0], a, b, upsample=True),
            up_conv1[1].out_channels, up_norm1, device, u0, lambda row: (row - 1) // 2)
        u0 = None  # kept only where l4 still reads it
        out: ConvLayer = m.out
        step = self._band(w, 1)
        for a in range(0, h, step):
            y = conv_rows(l4, h, out[1], out[0].padding[0], a, min(h, a + step))
            yield a, y.tanh_().add_(1).div_(2)

    def _full_resolution(self, compute: Rows, channels: int, layer: InstanceNorm | FixedNorm, device: torch.device,
                         source: Map | None = None, needs: Callable[[int], int] | None = None) -> Rows:
        """A full-resolution layer, normalised and activated, to read in bands: kept whole (keep_full), or its
        statistics from a sweep of its own and the layer computed again where it is read."""
        if self.keep_full:
            kept = self._fill(Map(channels, self.h, self.w, self.map_dtype, device), compute, self.w, 1,
                              source, needs)
            compute, stats = kept.rows, kept.stats
        elif isinstance(layer, FixedNorm):  # its statistics are its own: no sweep
            stats = Stats()
        else:
            stats = self._sweep(compute, self.h, self.w, 1)
        norm = normalise(layer, stats, relu=True)

        def rows(a: int, b: int) -> torch.Tensor:
            return norm(compute(a, b))
        rows.kept = kept if self.keep_full else None  # type: ignore[attr-defined]  (released by its reader)
        return rows

    def _apply(self, target: Map, fn: Callable[[torch.Tensor], torch.Tensor], width: int) -> None:
        step = self._band(width, 4)
        for a in range(0, target.h, step):
            target.put(a, fn(target.rows(a, a + step)))


def padded_reader(read: Rows, h: int, w: int) -> tuple[Rows, int, int]:
    """rows(a, b) of the picture padded at the bottom/right as the network pads it (model.pad_bottom_right:
    reflection, replication for slivers), from rows(a, b) of the picture itself (h x w); and the padded size."""
    hp, wp, mode = padded_size(h, w)

    def rows(a: int, b: int) -> torch.Tensor:
        if b <= h:
            x, lo = read(a, b), a
        else:  # rows past the bottom reflect (or repeat) the picture's last ones
            lo = min(a, 2 * h - b - 1 if mode == "reflect" else h - 1)
            x = F.pad(read(lo, h), (0, 0, 0, b - h), mode=mode)[..., a - lo:, :]
        return F.pad(x, (0, wp - w, 0, 0), mode=mode) if wp > w else x
    return rows, hp, wp


def stylize_bands(model: TransformerNet, read: Rows, h: int, w: int, band_pixels: int = BAND_PIXELS,
                  map_dtype: torch.dtype = torch.float32, keep_full: bool = False
                  ) -> Iterator[tuple[int, torch.Tensor]]:
    """The stylized picture (h x w, read through `read` as float32 rows on the device) in bands of rows, top
    to bottom: (first row, (1, 3, rows, w)), cropped back from the padded size."""
    rows, hp, wp = padded_reader(read, h, w)
    for a, y in Program(model, rows, hp, wp, band_pixels, map_dtype, keep_full).run():
        if a < h:
            yield a, y[..., :min(h - a, y.shape[-2]), :w]


def plan_bands(model: TransformerNet, h: int, w: int, room: int, fp16: bool
               ) -> tuple[int, torch.dtype, bool] | None:
    """(band pixels, map dtype, keep_full) for an h x w picture within `room` bytes: the least work and the
    most exact maps that fit (full bands, float32, full-resolution maps kept), thinner bands and float16
    maps where the room is tight; None if not even float16 maps and the thinnest bands fit."""
    hp, wp, _ = padded_size(h, w)
    per_pixel = band_bytes(1, fp16) or 1
    options = [(torch.float32, True), (torch.float32, False), (torch.float16, False)]
    for wanted in (min(BAND_PIXELS, hp * wp), 8 * wp):  # full bands first; then the thinnest (8 rows)
        for dtype, keep_full in options:
            band = min(BAND_PIXELS, int((room - map_bytes(model, hp * wp, dtype, keep_full)) // per_pixel))
            if band >= wanted:
                return band, dtype, keep_full
    return None


def minimum_bytes(model: TransformerNet, h: int, w: int, fp16: bool) -> int:
    hp, wp, _ = padded_size(h, w)
    return map_bytes(model, hp * wp, torch.float16) + band_bytes(8 * wp, fp16)

