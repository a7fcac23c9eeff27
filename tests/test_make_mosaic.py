"""training/make_mosaic.py draws the project's own mosaic style image: it must look like tesserae in grout."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst_video.training.make_mosaic import render_mosaic

ROOT = Path(__file__).resolve().parent.parent


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def component_sizes(mask: np.ndarray) -> np.ndarray:
    """Pixel counts of the 4-connected regions of `mask` (min-label propagation: fine for small regions)."""
    h, w = mask.shape
    none = h * w
    labels = np.where(mask, np.arange(none).reshape(h, w), none)
    for _ in range(500):
        new = labels.copy()
        new[1:] = np.minimum(new[1:], labels[:-1])
        new[:-1] = np.minimum(new[:-1], labels[1:])
        new[:, 1:] = np.minimum(new[:, 1:], labels[:, :-1])
        new[:, :-1] = np.minimum(new[:, :-1], labels[:, 1:])
        new = np.where(mask, new, none)
        if np.array_equal(new, labels):
            break
        labels = new
    return np.unique(labels[mask], return_counts=True)[1]


@pytest.fixture(scope="module")
def mosaic() -> np.ndarray:
    return render_mosaic(512, seed=0)


def test_size_and_type(mosaic):
    assert mosaic.shape == (512, 512, 3) and mosaic.dtype == np.uint8


def test_many_tiles_set_in_dark_grout(mosaic):
    lum = luminance(mosaic)
    assert np.percentile(lum, 10) < 35, "the darkest tenth (the grout) should be dark"
    assert np.percentile(lum, 70) > 60, "most of the picture should be tiles, not grout"
    tiles = component_sizes(lum >= 45)
    assert (tiles >= 8).sum() > 2000, "grout should separate the picture into thousands of tesserae"
    assert tiles.max() < 0.01 * lum.size, "no large area without grout lines"


def test_rich_colours(mosaic):
    rgb = mosaic.astype(np.int32)
    blue = ((rgb[..., 2] - rgb[..., 0]) > 40).mean()
    warm = ((rgb[..., 0] - rgb[..., 2]) > 60).mean()
    assert blue > 0.1 and warm > 0.1, (blue, warm)
    bins = np.unique((rgb // 32) @ np.array([64, 8, 1])).size
    assert bins >= 60, f"only {bins} colour bins: too uniform"


def test_seed_changes_tiles_not_design():
    a, b = render_mosaic(128, seed=1), render_mosaic(128, seed=2)
    assert not np.array_equal(a, b)
    # same design: the two renderings agree broadly once the tile detail is blurred away
    blur = [np.asarray(Image.fromarray(x).resize((8, 8), Image.Resampling.BOX), np.float32) for x in (a, b)]
    assert np.abs(blur[0] - blur[1]).mean() < 12


def test_command_line_is_deterministic(tmp_path):
    out = tmp_path / "sub" / "m.png"
    cmd = [sys.executable, "-m", "training.make_mosaic", str(out), "--size", "128", "--seed", "1"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)
    written = np.asarray(Image.open(out).convert("RGB"))
    assert written.shape == (128, 128, 3)
    assert np.array_equal(written, render_mosaic(128, seed=1))
    assert not list(out.parent.glob(".*partial*")), "temporary file left behind"
