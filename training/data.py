"""Content photos for training: any folder of images, recursively. Unreadable files are skipped and counted;
grey, palette, CMYK and small images are handled. The order of batches is a pure function of (seed, step),
so a resumed run sees exactly the batches an uninterrupted run would."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nst_video.errors import NstError
from nst_video.images import is_image_path, load_image


def find_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise NstError(f"--content-dir {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    if not files:
        raise NstError(f"--content-dir {folder}: no images found (looked for .jpg, .png, ... recursively)")
    return files


def rgb_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1] (a copy: any view, read-only or strided, will do)."""
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255.0)


def load_rgb_tensor(path: Path, max_size: int | None = None) -> torch.Tensor:
    """An image as (3, H, W) float in [0, 1], through the app's own loader (EXIF, modes, truncation)."""
    return rgb_tensor(load_image(path, max_size=max_size).rgb)


def resize_and_crop(rgb: np.ndarray, size: int, rng: np.random.Generator, max_zoom: float = 1.0) -> np.ndarray:
    """Scale the short side to `size` (up for small images) times a zoom drawn log-uniformly from 1..max_zoom,
    then a random size x size crop. The zoom makes crops as smooth per pixel as a part of a large picture:
    the training photos are small, the pictures a network paints are often not."""
    h, w = rgb.shape[:2]
    zoom = float(np.exp(rng.uniform(0.0, np.log(max_zoom)))) if max_zoom > 1 else 1.0
    scale = size * zoom / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        rgb = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    top, left = rng.integers(0, nh - size + 1), rng.integers(0, nw - size + 1)
    return rgb[top:top + size, left:left + size]


class ContentImages(torch.utils.data.Dataset):
    """Item (step, slot) -> a crop. The file is chosen by a per-epoch permutation; an unreadable file is
    replaced by the next readable one."""

    def __init__(self, folder: Path, image_size: int, batch_size: int, seed: int, max_zoom: float = 1.0):
        self.files = find_images(folder)
        self.image_size, self.batch_size, self.seed, self.max_zoom = image_size, batch_size, seed, max_zoom

    def __len__(self) -> int:
        return len(self.files)

    def file_index(self, step: int, slot: int) -> int:
        flat = step * self.batch_size + slot
        epoch, pos = divmod(flat, len(self.files))
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.files))
        return int(perm[pos])

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        step, slot = key
        index = self.file_index(step, slot)
        rng = np.random.default_rng([self.seed, step, slot, 1])
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                rgb = load_image(path).rgb
            except NstError:  # train.py counts it from the index actually used
                continue
            crop = resize_and_crop(rgb, self.image_size, rng, self.max_zoom)
            return rgb_tensor(crop), (index + attempt) % len(self.files)
        raise NstError("no readable images in --content-dir")


class StepBatches(torch.utils.data.Sampler):
    """Yields [(step, slot) for slot in slots] for step = start, start+1, ... up to max_steps. `slots`: all B
    of the global batch in one process; a rank's share of them under torchrun (training/distributed.py), so the
    ranks together draw exactly what one process draws (as DistributedSampler would, but per step, which keeps
    batches a function of (seed, step) for --resume)."""

    def __init__(self, start_step: int, max_steps: int, slots: range):
        self.start, self.stop, self.slots = start_step, max_steps, slots

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield [(step, slot) for slot in self.slots]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def content_loader(dataset: ContentImages, start_step: int, max_steps: int, num_workers: int,
                   share: slice = slice(None)):
    """Batches of the steps from `start_step`; `share`: the slots of each global batch this process takes."""
    slots = range(dataset.batch_size)[share]
    return torch.utils.data.DataLoader(dataset, batch_sampler=StepBatches(start_step, max_steps, slots),
                                       num_workers=num_workers, persistent_workers=False,
                                       pin_memory=torch.cuda.is_available())
