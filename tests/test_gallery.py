"""scripts/make_gallery.py: a grid of the sample photos in each style, built with the real `nst-video image`."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_gallery.py"
_spec = importlib.util.spec_from_file_location("make_gallery", SCRIPT)
gallery = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gallery)


def run_gallery(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def photos(tmp_path) -> Path:
    """Two tiny photos, one landscape and one portrait: with --max-size 64 they become 64x48 and 46x64."""
    folder = tmp_path / "photos"
    folder.mkdir()
    yy, xx = np.mgrid[0:60, 0:80]
    a = np.stack([xx * 3, yy * 4, (xx + yy) * 2], axis=2).astype(np.uint8)
    a[20:40, 30:60] = (200, 40, 40)
    Image.fromarray(a).save(folder / "a.png")
    b = np.full((70, 50, 3), (40, 160, 90), np.uint8)
    b[10:60, 10:25] = (250, 240, 220)
    Image.fromarray(b).save(folder / "b.jpg", quality=95)
    return folder


def cell(grid: np.ndarray, row_top: int, col: int, w: int, h: int, cell_w: int) -> np.ndarray:
    x = gallery.GAP + col * (cell_w + gallery.GAP) + (cell_w - w) // 2
    return grid[row_top:row_top + h, x:x + w].astype(np.int32)


@pytest.mark.slow
def test_grid_of_photos_by_styles(photos, tmp_path, style_dir):
    out = tmp_path / "gallery.jpg"
    r = run_gallery("--styles", "randomstyle,otherstyle", "--photos", photos, "--out", out, "--max-size", 64)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    with Image.open(out) as im:
        assert im.format == "JPEG"
        grid = np.asarray(im.convert("RGB"))
    gap, cell_w, rows = gallery.GAP, 64, [(64, 48), (46, 64)]  # (w, h) per photo, in name order
    columns = 3  # the original, then two styles
    assert grid.shape[1] == columns * cell_w + (columns + 1) * gap
    assert grid.shape[0] == gallery.LABEL_HEIGHT + 48 + 64 + 3 * gap

    top = gallery.LABEL_HEIGHT + gap
    originals = sorted(photos.iterdir())
    for (w, h), src in zip(rows, originals, strict=True):
        original = cell(grid, top, 0, w, h, cell_w)
        expected = np.asarray(Image.open(src).convert("RGB").resize((w, h), Image.Resampling.LANCZOS), np.int32)
        assert np.abs(original - expected).mean() < 8, "first column should be the original photo"
        styled = [cell(grid, top, c, w, h, cell_w) for c in (1, 2)]
        for s in styled:
            assert np.abs(s - original).mean() > 10, "a style column looks like the original"
        assert np.abs(styled[0] - styled[1]).mean() > 5, "the two styles gave the same picture"
        top += h + gap
    # the label band holds text: some light pixels on the dark background
    assert (grid[:gallery.LABEL_HEIGHT] > 150).any()


def test_unknown_style_is_one_line_error_and_no_file(photos, tmp_path, style_dir, capsys):
    out = tmp_path / "gallery.jpg"
    status = gallery.main(["--styles", "randomstyle,nosuchstyle", "--photos", str(photos), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert err.strip().count("\n") == 0 and "nosuchstyle" in err
    assert not out.exists() and list(tmp_path.glob("*partial*")) == []


def test_refuses_output_inside_photo_folder(photos, style_dir, capsys):
    status = gallery.main(["--styles", "randomstyle", "--photos", str(photos), "--out", str(photos / "g.jpg")])
    assert status == 1 and "inside the photo folder" in capsys.readouterr().err
    assert not (photos / "g.jpg").exists()
