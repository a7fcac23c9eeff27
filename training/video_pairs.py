"""Consecutive frame pairs of real videos, with the optical flow between them, for the temporal term of
`train --flow-weight` (after Huang et al., CVPR 2017, and Gao et al., ReCoNet, ACCV 2018): the network's
output for frame t should equal its output for frame t-1 moved along the *input's* flow, wherever that flow is
trusted. That is exactly what the warping error (nst_video.temporal.warping_error) measures, so the term
trains the network on the measure users see as flicker: real motion, deforming objects, codec noise and
light changes, which the synthetic motion term (train.random_motion) cannot show it.

All pairs are decoded and their flow computed once, when training starts (a few seconds per clip): frames
scaled to a long side of `frame_side` (the size bench_temporal.py measures at, so texture and motion have the
scale they have there), the backward flow (t -> t-1) by DIS "medium" and its mask, both by the function the
warping error uses (nst_video.flow.trusted_back_flow). A batch is random crops of
random pairs, a pure function of (seed, step), so a resumed run sees the same ones."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nst_video import flow as fl
from nst_video.errors import NstError
from nst_video.report import say
from nst_video.training.data import rgb_tensor
from nst_video.video_io import VIDEO_SUFFIXES, VideoSource

FRAME_SIDE = 320      # long side the frames are scaled to: bench_temporal.py's default size
PAIRS_PER_CLIP = 48   # spread evenly over each clip: long clips do not outweigh short ones
MIN_CROP = 128        # the smallest flow crop: a 256-px fine-tune crops the 320-px frames at their short side


@dataclass
class FramePair:
    prev: np.ndarray   # (H, W, 3) uint8, frame t-1
    cur: np.ndarray    # (H, W, 3) uint8, frame t
    back: np.ndarray   # (H, W, 2) float16 flow from cur into prev: cur(x) ~ prev(x + back(x)); half the memory
                       # of float32, within a thousandth of a pixel per pixel of motion
    mask: np.ndarray   # (H, W) bool: back is trusted there (forward-backward consistent, stays in the picture)


def find_videos(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise NstError(f"--video-dir {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise NstError(f"--video-dir {folder}: no videos found ({', '.join(sorted(VIDEO_SUFFIXES))}, recursively)")
    return files


def clip_pairs(path: Path, frame_side: int = FRAME_SIDE, pairs: int = PAIRS_PER_CLIP) -> list[FramePair]:
    """Up to `pairs` consecutive-frame pairs spread evenly over the clip, each with its flow and mask."""
    with VideoSource(path, max_size=frame_side) as source:
        frames = [frame.rgb for frame in source]
    if len(frames) < 2:
        return []
    flow = fl.Flow("medium")
    out = []
    for t in np.unique(np.linspace(1, len(frames) - 1, min(pairs, len(frames) - 1)).round().astype(int)):
        prev, cur = frames[t - 1], frames[t]
        if prev.shape != cur.shape:
            continue  # a size change mid-stream: no flow between them
        back, mask = fl.trusted_back_flow(flow, fl.grey(prev), fl.grey(cur))
        out.append(FramePair(prev, cur, back.astype(np.float16), mask))
    return out


class VideoPairs:
    """Pairs from every video of a folder; `batch(step)` -> (prev, cur, grid, mask) tensors for one step:
    frames (N, 3, S, S) in [0, 1], the sampling grid (N, S, S, 2) that moves an image of frame t-1 onto
    frame t (for grid_sample, align_corners=False), and the (N, 1, S, S) mask of trusted pixels. S is the
    training crop size, or the frames' short side where that is smaller (said once): the frames keep the scale
    the warping error is measured at rather than being enlarged to the crop."""

    def __init__(self, folder: Path, image_size: int, batch_size: int, seed: int, frame_side: int = FRAME_SIDE):
        self.batch_size, self.seed = batch_size, seed
        self.pairs: list[FramePair] = []
        self.clips: list[str] = []
        for path in find_videos(folder):
            try:
                found = clip_pairs(path, max(frame_side, image_size))
            except (NstError, OSError) as e:  # UnsupportedInput included
                say(f"--video-dir: skipped {path.name} ({e})")
                continue
            found = [p for p in found if min(p.cur.shape[:2]) >= min(image_size, MIN_CROP)]
            if found:
                self.pairs += found
                self.clips.append(path.name)
        if not self.pairs:
            raise NstError(f"--video-dir {folder}: no readable clips with two frames of at least "
                           f"{min(image_size, MIN_CROP)} px")
        self.image_size = min(image_size, *(min(p.cur.shape[:2]) for p in self.pairs))
        if self.image_size < image_size:
            say(f"--video-dir: the flow term's crops are {self.image_size} px (the clips' frames at {frame_side} px "
                f"are smaller than {image_size})")

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, 2])
        s = self.image_size
        prevs, curs, grids, masks = [], [], [], []
        for index in rng.integers(0, len(self.pairs), self.batch_size):
            pair = self.pairs[index]
            h, w = pair.cur.shape[:2]
            top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            crop = np.s_[top:top + s, left:left + s]
            back = pair.back[crop].astype(np.float32)
            # Pixels whose flow leaves the crop have nothing under them in the crop of frame t-1.
            mask = pair.mask[crop] & fl.inside(back)
            flipped = rng.random() < 0.5  # mirrored pairs: motion to the left and to the right alike
            where = fl.pixel_grid(s, s) + back
            grid = (where + 0.5) / s * 2 - 1  # pixel centres -> grid_sample's [-1, 1]
            prev, cur = pair.prev[crop], pair.cur[crop]
            if flipped:
                prev, cur, mask = prev[:, ::-1], cur[:, ::-1], mask[:, ::-1]
                grid = grid[:, ::-1] * np.float32([-1, 1])
            prevs.append(rgb_tensor(prev))
            curs.append(rgb_tensor(cur))
            grids.append(torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32)))
            masks.append(torch.from_numpy(np.ascontiguousarray(mask)).float()[None])
        return torch.stack(prevs), torch.stack(curs), torch.stack(grids), torch.stack(masks)
