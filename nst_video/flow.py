"""Optical flow between video frames: what temporal.py blends along, and what the warping error measures.

OpenCV lives here (its DIS optical flow, Kroeger et al., ECCV 2016, and cv2.remap for warping), as it does
in camera.py and window.py: these are the only modules that import it.

Convention: the flow from frame `a` to frame `b`, `f = flow(a, b)`, says where each pixel of `a` is in `b`:
a(x) ~ b(x + f(x)), in pixels, float32 (H, W, 2) as (dx, dy). `warp(b, f)` samples `b` at x + f(x), so it
moves `b` onto `a`'s pixel grid."""
from __future__ import annotations

import cv2
import numpy as np

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


MIN_SIDE = 16  # DIS refuses images much smaller than this


class Flow:
    """DIS optical flow. One instance per thread: DIS keeps working buffers between calls."""

    def __init__(self, preset: str = "ultrafast"):
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grey uint8 image `a` to `b` (same size, each side at least MIN_SIDE): a(x) ~ b(x + f(x))."""
        h, w = a.shape
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"optical flow needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, not {w}x{h}")
        if w <= h:
            return self._dis.calc(a, b, None)
        # OpenCV's DIS (5.0) crashes on wide images of few rows (e.g. 100x31: a segfault, not an error),
        # never on tall ones: compute a wide picture's flow transposed.
        flow = self._dis.calc(cv2.transpose(a), cv2.transpose(b), None)
        # Transposed back channel by channel, (dy, dx) -> (dx, dy): a quarter of the time of one strided copy.
        out = np.empty((h, w, 2), np.float32)
        out[..., 0], out[..., 1] = flow[..., 1].T, flow[..., 0].T
        return out


def grey(rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Grey uint8 of an RGB uint8 frame, scaled down to `size` (width, height) by area averaging, which also
    averages sensor noise away."""
    g = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if size is not None and size != (g.shape[1], g.shape[0]):
        g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    return g


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(H, W, 2) float32 of each pixel's own (x, y); cached per size (read-only)."""
    grid = _GRIDS.get((h, w))
    if grid is None:
        if len(_GRIDS) > 8:  # a stream whose size keeps changing must not grow this without bound
            _GRIDS.clear()
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        grid = _GRIDS[(h, w)] = np.dstack([xs, ys])
        grid.flags.writeable = False
    return grid


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """`image` sampled at x + flow(x) (bilinear by default; outside the picture, its nearest edge)."""
    maps = pixel_grid(*flow.shape[:2]) + flow
    return cv2.remap(image, maps, None, interpolation, borderMode=cv2.BORDER_REPLICATE)


def inside(flow: np.ndarray) -> np.ndarray:
    """Bool (H, W): x + flow(x) lies within the picture (what flows out of it has nothing to come from)."""
    h, w = flow.shape[:2]
    target = pixel_grid(h, w) + flow
    return (target[..., 0] >= 0) & (target[..., 0] <= w - 1) & (target[..., 1] >= 0) & (target[..., 1] <= h - 1)


def consistency_error(back: np.ndarray, fwd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-backward check for `back` = flow(cur, prev) and `fwd` = flow(prev, cur): followed there and
    back, a pixel that is seen in both frames returns where it started. Returns the squared distance it
    misses by, and the squared lengths of the two flows summed (the tolerance grows with the motion), both
    (H, W) float32."""
    fwd_there = warp(fwd, back)
    return length2(back + fwd_there), length2(back) + length2(fwd_there)


def occlusion_free(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Bool (H, W) mask of the pixels of the current frame whose flow into the previous one is trusted, as in
    the warping error of Lai et al. (ECCV 2018, after Ruder et al. 2016): forward-backward consistent
    (|b + f(x + b)|^2 <= 0.01 (|b|^2 + |f|^2) + 0.5), not on a motion boundary (|grad b|^2 <=
    0.01 |b|^2 + 0.002), and not flowing out of the picture."""
    miss, lengths = consistency_error(back, fwd)
    ok = miss <= 0.01 * lengths + 0.5
    du = np.zeros_like(back)
    dv = np.zeros_like(back)
    du[:, :-1] = back[:, 1:] - back[:, :-1]
    dv[:-1] = back[1:] - back[:-1]
    ok &= length2(du) + length2(dv) <= 0.01 * length2(back) + 0.002
    return ok & inside(back)


def trusted_back_flow(flow: Flow, prev_grey: np.ndarray, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flow from `grey` into `prev_grey` and its occlusion_free mask: what the warping error moves the
    previous output along, and where it counts (train --flow-weight trains on the same)."""
    back, fwd = flow(grey, prev_grey), flow(prev_grey, grey)
    return back, occlusion_free(back, fwd)


def length2(flow: np.ndarray) -> np.ndarray:
    """Squared length of each vector of a (H, W, 2) flow, (H, W)."""
    return flow[..., 0] ** 2 + flow[..., 1] ** 2
