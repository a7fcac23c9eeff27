"""Temporal smoothing: a feed-forward style network answers small input changes (sensor noise, compression)
with large output changes, which shows as flicker. Blending each stylized frame with the previous output
hides it where the picture is still; where the input moved the new frame is taken as it is (no ghost
trails), and a scene cut starts afresh.

`flicker()` measures what this is for: the mean change between consecutive outputs where the input was still.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

BLOCK = 8            # motion is judged per 8x8 block: robust to pixel noise, cheap at 1080p
MOTION_LEVEL = 10.0  # mean absolute change (grey levels, 0..255) of a block at which blending fades out
CUT_FRACTION = 0.6   # more than this share of blocks moving at once: a scene cut, start afresh
MAX_KEEP = 0.9       # weight 1 keeps 90% of the previous output in still parts (never 100%: it would freeze)


class TemporalBlender:
    """out = keep * previous_output + (1 - keep) * stylized, keep = weight * MAX_KEEP * stillness, per block.

    `weight` (0..1, 0 = off) may be changed between frames (the webcam's 't' key)."""

    def __init__(self, weight: float = 0.0):
        self.weight = weight
        self.reset()

    def reset(self) -> None:
        self._prev_source: np.ndarray | None = None
        self._prev_output: np.ndarray | None = None

    def __call__(self, source_rgb: np.ndarray, stylized_rgb: np.ndarray) -> np.ndarray:
        keep_max = min(max(float(self.weight), 0.0), 1.0) * MAX_KEEP
        prev_source, prev_output = self._prev_source, self._prev_output
        self._prev_source = source_rgb
        if keep_max <= 0 or prev_source is None or prev_source.shape != source_rgb.shape \
                or prev_output.shape != stylized_rgb.shape:
            self._prev_output = stylized_rgb.astype(np.float32)
            return stylized_rgb
        motion = block_motion(prev_source, source_rgb)
        if np.mean(motion > MOTION_LEVEL) > CUT_FRACTION:
            self._prev_output = stylized_rgb.astype(np.float32)
            return stylized_rgb
        # Dilate by one block, so a block beside a moving edge does not keep a ghost of it.
        keep = keep_max * np.clip(1.0 - _dilate(motion) / MOTION_LEVEL, 0.0, 1.0)
        keep = _upsample(keep, stylized_rgb.shape[:2])[..., None]
        out = stylized_rgb.astype(np.float32)
        step = prev_output - out
        step *= keep
        out += step
        self._prev_output = out  # kept in float: rounding every frame would drift in the still parts
        step = np.add(out, 0.5, out=step)  # a blend of values in 0..255 stays in 0..255: no clipping needed
        return step.astype(np.uint8)


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


def flicker(sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray], still: float = 2.0) -> float:
    """Mean absolute change (0..255) between consecutive outputs, over the blocks where the input changed by
    less than `still` grey levels: what a viewer sees as flicker. NaN if the input never held still."""
    total, count = 0.0, 0
    for i in range(1, len(outputs)):
        still_blocks = block_motion(sources[i - 1], sources[i]) < still
        if not still_blocks.any():
            continue
        change = _block_mean(np.abs(outputs[i].astype(np.float32) - outputs[i - 1]).mean(axis=2))
        total += float(change[still_blocks].sum())
        count += int(still_blocks.sum())
    return total / count if count else float("nan")


def _grey(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def _dilate(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, mode="edge")
    h, w = m.shape
    return np.max([p[y:y + h, x:x + w] for y in range(3) for x in range(3)], axis=0)


def _upsample(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(blocks, BLOCK, axis=0), BLOCK, axis=1)[:shape[0], :shape[1]].astype(np.float32)
