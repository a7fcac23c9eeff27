"""Temporal coherence: a feed-forward style network answers small input changes (sensor noise, compression,
motion) with large output changes, which shows as flicker and as textures that swim instead of moving
with the picture. `TemporalBlender` works on both sides of the network:

- before it, `stabilize()`: where the input has not changed beyond noise since the frame the network was last
  given, the network is given that frame's pixels again, exactly, so it draws the same there (a still
  background stays still, and it costs the style nothing: every frame is still a real stylization);
- after it, the call: the previous output is carried onto the current frame along the input's optical flow
  wherever the flow is trusted (forward-backward consistent, not flowing out of the picture) and the input
  there still matches, within a tolerance, the input that paint was made from; elsewhere (what comes into
  view, what the flow got wrong, what changed) the new frame is taken as it is, so a moving object leaves no
  ghost trail. A scene cut, a reset or a change of frame size starts afresh.

Carried paint is copied, not averaged: where a network draws its texture anew every frame, a mix of two textures
is neither and washes the style out (docs/flicker.md has the figures), and it is moved with nearest-pixel
sampling, because interpolating it again every frame blurs it away within a few frames. Only whole regions are
carried (a pixel and its REGION x REGION neighbourhood all trusted): carrying single pixels inside a moving,
deforming object gives a patchwork of paint from different frames. They meet the new paint around them edge to
edge, with no feather, which would be a mix of two textures again. Because trust compares the current input with
the input each carried pixel was painted from (carried along with it), not just with the frame before, slow
changes (light, a slow zoom) add up until they are repainted: paint never goes stale.
The flow is OpenCV's DIS (nst_video/flow.py; this module uses cv2 for the flow's image operations too) at a
reduced size (preset fast at 320 px live, medium at 640 px for video files), on a thread of its own when
`prepare()` is called ahead (while the network works on the frame); benchmarks/bench_temporal.py measures
both sides of the trade.

`warping_error()` measures what this is for, the standard way (Lai et al., ECCV 2018); `flicker()` the
change of the output where the input held still."""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

import cv2
import numpy as np

from nst_video import flow as fl

FLOW_SIDE = 320      # live: the flow is computed with the long side at most this (640x480 -> 320x240): ~4x cheaper
OFFLINE_FLOW_SIDE = 640  # video files: a flow at twice the detail follows motion better, for more time a frame
                         # and some style on deforming objects (docs/flicker.md, "Video files at 640 px")
FLOW_PRESET = "fast"  # live (the webcam): as cheap as "ultrafast" at this size, and steadier
OFFLINE_FLOW_PRESET = "medium"  # video files, which have no frame deadline: a few ms more than fast, and it
                                # follows motion better (both: docs/flicker.md, "The flow's preset")
HOLD_SIDE = 320      # stabilize() compares frames with the long side at most this: the scaling averages noise
GATE_LEVEL = 4.0     # grey levels (at HOLD_SIDE) of input change from what the network last saw: noise
GATE_CUT = 0.6       # more than this share of the picture changed: give the network the new frame whole
PHOTO_LEVEL = 24.0   # grey levels (0..255) of change from the input carried paint was made from, at weight 1,
                     # past which it is repainted
REGION = 9           # flow-size pixels: carried paint needs this neighbourhood trusted around it
FB_TOLERANCE = 0.5   # forward-backward miss (squared, in flow pixels) tolerated, + 1% of the motion squared
STILL_FLOW = 0.2     # motion below this (pixels of the frame) counts as none: a still background stays still
CUT_TRUSTED = 0.3    # less than this share of the picture trusted: a scene cut, start afresh


class TemporalBlender:
    """out = the previous output carried along the input's optical flow where it is trusted, the new stylized
    frame elsewhere; and, for any weight > 0, the network's input held where it only changed by noise (see
    the module's docstring). The weight scales how much the input under carried paint may change before it
    is repainted (1: PHOTO_LEVEL grey levels, 0.5: half that; 0: off).

    Per frame, from one thread, in order: `prepare(source)` (optional: starts the flow on the blender's
    thread), `stabilize(source)` -> what to stylize, then `blender(source, stylized)` -> the frame to show.
    `weight` (0..1, 0 = off: everything passes through unchanged) may be changed between frames (the
    webcam's 't' key)."""

    def __init__(self, weight: float = 0.0, flow_side: int = FLOW_SIDE, preset: str = FLOW_PRESET):
        self.weight = weight
        self.flow_side = flow_side
        self.preset = preset  # DIS preset (flow.PRESETS): FLOW_PRESET live, OFFLINE_FLOW_PRESET for video files
        self._flow = fl.Flow(preset)         # for the calling thread
        self._worker_flow = fl.Flow(preset)  # for the flow thread (DIS: one instance per thread)
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[np.ndarray, np.ndarray | Future | None, Future]] = deque()
        self.cuts = 0  # fresh starts at a scene cut (not counting resets or size changes), for benchmarks
        self.reset()

    @classmethod
    def for_video_files(cls, weight: float) -> TemporalBlender:
        """The blender `video` uses: files have no frame deadline, so a finer, slower flow than live."""
        return cls(weight, OFFLINE_FLOW_SIDE, OFFLINE_FLOW_PRESET)

    def reset(self) -> None:
        self._pending.clear()  # flows already under way finish, unused
        self._prev_grey: np.ndarray | None = None
        self._prev_output: np.ndarray | None = None
        self._painted_from: np.ndarray | None = None  # per pixel, the input grey its paint was made from
        self._held: np.ndarray | None = None  # what stabilize() last handed to the network
        self._held_grey: np.ndarray | None = None

    def stabilize(self, source_rgb: np.ndarray) -> np.ndarray:
        """The frame to give the network: where the input has not changed beyond noise since the frame the
        network was last given, that frame's pixels, exactly (a network answers noise with flicker); where it
        changed (and a little around it), the new ones."""
        if self._strength <= 0:
            self._held = self._held_grey = None
            return source_rgb
        size = flow_size(source_rgb.shape[1], source_rgb.shape[0], HOLD_SIDE)
        grey = fl.grey(source_rgb, size)
        held = self._held
        if held is None or held.shape != source_rgb.shape:
            self._held, self._held_grey = source_rgb.copy(), grey
            return source_rgb
        changed = cv2.blur(cv2.absdiff(grey, self._held_grey), (3, 3)) > GATE_LEVEL
        if changed.mean() > GATE_CUT:
            self._held, self._held_grey = source_rgb.copy(), grey
            return source_rgb
        changed = cv2.dilate(changed.view(np.uint8), np.ones((3, 3), np.uint8))
        if (source_rgb.shape[1], source_rgb.shape[0]) != size:
            changed = cv2.resize(changed, source_rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        cv2.copyTo(np.ascontiguousarray(source_rgb), changed, held)
        self._held_grey = fl.grey(held, size)
        return held.copy()  # the network's frame may wait in a queue: it must not change

    @property
    def _strength(self) -> float:
        return min(max(float(self.weight), 0.0), 1.0)

    def prepare(self, source_rgb: np.ndarray) -> None:
        """Start the flow of this frame, against the frame before it, on the flow thread."""
        if self._strength <= 0:
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nst-flow")
        prev = self._pending[-1][2] if self._pending else self._prev_grey
        self._pending.append((source_rgb, prev, self._executor.submit(self._prepared, source_rgb, prev)))

    def __call__(self, source_rgb: np.ndarray, stylized_rgb: np.ndarray) -> np.ndarray:
        if self._strength <= 0:
            self._pending.clear()
            self._prev_grey = self._prev_output = self._painted_from = None
            return stylized_rgb
        grey, motion, cut = self._motion_for(source_rgb)
        prev_output, self._prev_grey = self._prev_output, grey
        painted_from = self._painted_from
        if (motion is None or prev_output is None or prev_output.shape != stylized_rgb.shape
                or painted_from is None or painted_from.shape != grey.shape):
            self.cuts += cut
            self._prev_output, self._painted_from = stylized_rgb, grey
            return stylized_rgb
        back, consistent = motion
        painted_from = fl.warp(painted_from, back, cv2.INTER_NEAREST)
        trusted = consistent & (cv2.absdiff(painted_from, grey) < self._strength * PHOTO_LEVEL)
        region = cv2.erode(trusted.view(np.uint8), np.ones((REGION, REGION), np.uint8),
                           borderType=cv2.BORDER_REPLICATE)
        self._painted_from = np.where(region > 0, painted_from, grey)
        h, w = stylized_rgb.shape[:2]
        hs, ws = back.shape[:2]
        if (w, h) != (ws, hs):
            back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
            back = cv2.multiply(back, (w / ws, h / hs, 0, 0))  # per channel: cheaper than numpy's broadcast
                                                                # over the last axis (docs/flicker.md, "Cost")
            region = cv2.resize(region, (w, h), interpolation=cv2.INTER_NEAREST)
        # Carried paint meets new paint edge to edge, unmixed: a feather, even one pixel of the frame wide, is a
        # mix of two textures along every seam, and there are seams all over a moving picture (measured:
        # docs/flicker.md, "The seam where carried paint ends").
        out = np.array(stylized_rgb)
        cv2.copyTo(fl.warp(prev_output, back, cv2.INTER_NEAREST), region, out)
        self._prev_output = out
        return out

    # The flow: (grey at the flow size, (flow into the previous frame, consistent mask) or None, whether it is a
    # cut).

    def _motion_for(self, source_rgb: np.ndarray):
        if self._pending:
            source, prev, job = self._pending.popleft()
            prev_grey = prev.result()[0] if isinstance(prev, Future) else prev
            if source is source_rgb and prev_grey is self._prev_grey:
                return job.result()
            self._pending.clear()  # not the frames that were prepared: compute it here
        return self._grey_and_motion(source_rgb, self._prev_grey, self._flow)

    def _prepared(self, source_rgb: np.ndarray, prev: np.ndarray | Future | None):
        if isinstance(prev, Future):  # the one flow thread runs the jobs in order: that one is done
            prev = prev.result()[0]
        return self._grey_and_motion(source_rgb, prev, self._worker_flow)

    def _grey_and_motion(self, source_rgb: np.ndarray, prev_grey: np.ndarray | None, flow: fl.Flow):
        grey = fl.grey(source_rgb, flow_size(source_rgb.shape[1], source_rgb.shape[0], self.flow_side))
        if prev_grey is None or prev_grey.shape != grey.shape or min(grey.shape) < fl.MIN_SIDE:
            return grey, None, False  # nothing to follow (a tiny picture: no flow, no blending)
        found = motion(prev_grey, grey, flow, still=STILL_FLOW * grey.shape[1] / source_rgb.shape[1])
        return grey, found, found is None


def flow_size(width: int, height: int, side: int = FLOW_SIDE) -> tuple[int, int]:
    """(width, height) to compute the flow at: the long side at most `side`, the short one not scaled below
    flow.MIN_SIDE (32 for a very wide picture) where it was not already."""
    scale = min(1.0, side / max(width, height))
    least = min(min(width, height), 2 * fl.MIN_SIDE)
    scale = max(scale, least / min(width, height))
    return round(width * scale), round(height * scale)


def motion(prev_grey: np.ndarray, grey: np.ndarray, flow: fl.Flow, still: float = 0.0):
    """(flow from `grey` into `prev_grey`, bool mask of where it is consistent and stays in the picture), or
    None at a scene cut (too little of the picture found again in the frame before)."""
    back = flow(grey, prev_grey)
    fwd = flow(prev_grey, grey)
    miss, lengths = fl.consistency_error(back, fwd)
    if still > 0:
        # back - back where the motion is below `still`: a masked write, ~2x faster than numpy's boolean one
        cv2.subtract(back, back, dst=back, mask=(fl.length2(back) < still * still).view(np.uint8))
    # Whether it stays in the picture is judged on the flow as it will be used: the hundredth of a pixel DIS
    # finds "out" at a still picture's border would otherwise repaint a REGION-wide band around it every frame.
    consistent = (miss <= 0.01 * lengths + FB_TOLERANCE) & fl.inside(back)
    found = consistent & (cv2.absdiff(grey, fl.warp(prev_grey, back)) < PHOTO_LEVEL)
    if float(found.mean()) < CUT_TRUSTED:
        return None
    return back, consistent


def warping_error(sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray], preset: str = "medium") -> float:
    """The warping error of Lai et al. (ECCV 2018): the mean over frames t >= 1 of the squared difference of
    output t and output t-1 warped onto it (RGB in 0..1, per channel), over the pixels where the *input's*
    optical flow (DIS `preset`, at full size) is trusted (see flow.occlusion_free). Lower is steadier;
    the same measure on the input says how much the scene itself changes. NaN for fewer than two frames."""
    flow = fl.Flow(preset)
    errors = []
    prev_grey = None
    for i, (src, out) in enumerate(zip(sources, outputs, strict=True)):
        grey = fl.grey(src)
        if i:
            back, mask = fl.trusted_back_flow(flow, prev_grey, grey)
            diff = fl.warp(outputs[i - 1], back).astype(np.float32) - out
            diff = (diff * diff).sum(axis=2)
            n = 3 * int(mask.sum()) or diff.size * 3  # nothing trusted: counted as 0, as Lai et al. do
            errors.append(float(diff[mask].sum()) / n / 255.0 ** 2)
        prev_grey = grey
    return float(np.mean(errors)) if errors else float("nan")


def flicker(sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray], still: float = 2.0) -> float:
    """Mean absolute change (0..255) between consecutive outputs, over the 8x8 blocks where the input changed
    by less than `still` grey levels: what a viewer sees as flicker on a still background. NaN if the input
    never held still."""
    total, count = 0.0, 0
    for i in range(1, len(outputs)):
        still_blocks = block_motion(sources[i - 1], sources[i]) < still
        if not still_blocks.any():
            continue
        change = _block_mean(np.abs(outputs[i].astype(np.float32) - outputs[i - 1]).mean(axis=2))
        total += float(change[still_blocks].sum())
        count += int(still_blocks.sum())
    return total / count if count else float("nan")


BLOCK = 8


def block_motion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute grey-level change between two RGB uint8 frames, per BLOCK x BLOCK block (edge blocks
    cover what is left), as float32 of shape (ceil(H / BLOCK), ceil(W / BLOCK)). Every second pixel of
    every second row is enough to see a block move, at a quarter of the cost."""
    step = 2
    return _block_mean(np.abs(_grey(a[::step, ::step]) - _grey(b[::step, ::step])), BLOCK // step,
                       (a.shape[0], a.shape[1]))


def _block_mean(diff: np.ndarray, block: int = BLOCK, full_shape: tuple[int, int] | None = None) -> np.ndarray:
    h, w = full_shape or diff.shape
    bh, bw = -(-h // BLOCK), -(-w // BLOCK)
    padded = np.pad(diff, ((0, bh * block - diff.shape[0]), (0, bw * block - diff.shape[1])), mode="edge")
    return padded.reshape(bh, block, bw, block).mean(axis=(1, 3), dtype=np.float32)


def _grey(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b
