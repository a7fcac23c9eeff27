"""`nst-video image` through the real CLI: good inputs of every kind, and each bad input."""
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_odd_size_photo_keeps_its_size_via_implicit_mode(photo, tmp_path):
    out = tmp_path / "out.png"
    r = run_cli(photo, out, "--style", "randomstyle")
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.size == (517, 333) and im.mode == "RGB"
        styled = np.asarray(im).astype(int)
    with Image.open(photo) as im:
        assert np.abs(styled - np.asarray(im).astype(int)).mean() > 10  # it really was stylized
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the 0600 of a temp file


def test_explicit_image_command_with_o_and_max_size(photo, tmp_path):
    out = tmp_path / "small.jpg"
    r = run_cli("image", photo, "-o", out, "--style", "randomstyle", "--max-size", "200")
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "JPEG" and max(im.size) == 200 and im.size == (200, 129)


def _write_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    """One image of each awkward kind; returns name -> expected upright (width, height)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 41), dtype=np.uint8), "L").save(folder / "grey.png")
    Image.fromarray((rng.integers(0, 65536, (22, 33))).astype(np.uint16)).save(folder / "deep16.png")
    Image.fromarray(rng.integers(0, 256, (25, 35, 3), dtype=np.uint8)).convert("P").save(folder / "palette.gif")
    Image.new("CMYK", (37, 19), (10, 200, 30, 5)).save(folder / "cmyk.jpg")
    rgba = rng.integers(0, 256, (20, 28, 4), dtype=np.uint8)
    rgba[:, :10, 3] = 0
    rgba[:, 10:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    # EXIF orientation 6 ("rotate 90 CW to display"): stored 40x24, shown 24x40
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(folder / "rotated.jpg", exif=exif)
    return {"grey.png": (41, 30), "deep16.png": (33, 22), "palette.gif": (35, 25), "cmyk.jpg": (37, 19),
            "alpha.png": (28, 20), "rotated.jpg": (24, 40)}


def test_folder_of_awkward_formats(tmp_path):
    expected = _write_inputs(tmp_path / "in" / "sub")
    r = run_cli("image", tmp_path / "in", "-o", tmp_path / "out", "--style", "randomstyle")
    assert r.returncode == 0, r.stderr
    for name, size in expected.items():
        with Image.open(tmp_path / "out" / "sub" / name) as im:
            assert im.size == size, name
            if name == "alpha.png":
                assert im.mode == "RGBA"
                alpha = np.asarray(im)[:, :, 3]
                assert alpha[:, :10].max() == 0 and alpha[:, 10:].min() == 255


def test_deep16_grey_is_scaled_not_clipped(tmp_path):
    # A 16-bit ramp must come out as a ramp; clipping to 255 would make it flat white.
    from nst_video.images import load_image
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    rgb = load_image(tmp_path / "ramp.png").rgb
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and 100 < rgb[0, 32, 0] < 160


def test_glob_and_cp_style_output_folder(tmp_path, photo):
    for i in range(3):
        Image.open(photo).save(tmp_path / f"p{i}.png")
    out = tmp_path / "styled"
    out.mkdir()
    r = run_cli("image", str(tmp_path / "p*.png"), out, "--style", "randomstyle", "--format", "jpg")
    assert r.returncode == 0, r.stderr
    assert _listing(out) == {"p0.jpg", "p1.jpg", "p2.jpg"}


# --- bad input: one line on stderr, non-zero exit, no traceback, nothing written --------------------------

def _assert_clean_failure(r, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) >= 1 and lines[-1].startswith("nst-video: error:"), r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_missing_file(tmp_path):
    r = run_cli("image", tmp_path / "nope.jpg", "-o", tmp_path / "o.png", "--style", "randomstyle")
    _assert_clean_failure(r, "nope.jpg", "no such file")
    assert _listing(tmp_path) == set()


def test_not_an_image(tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is text, not a JPEG")
    r = run_cli("image", fake, "-o", tmp_path / "o.png", "--style", "randomstyle")
    _assert_clean_failure(r, "not an image")
    assert _listing(tmp_path) == {"fake.jpg"}


def test_truncated_image(tmp_path, photo):
    data = photo.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 3])
    r = run_cli("image", cut, "-o", tmp_path / "o.png", "--style", "randomstyle")
    _assert_clean_failure(r, "truncated")
    assert not (tmp_path / "o.png").exists() and not list(tmp_path.glob(".o*"))


def _png_with_claimed_size(path: Path, width: int, height: int):
    """A tiny PNG whose header claims a huge size: the classic decompression bomb shape."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr: ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17: ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_decompression_bomb(tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_with_claimed_size(bomb, 30000, 30000)
    r = run_cli("image", bomb, "-o", tmp_path / "o.png", "--style", "randomstyle")
    _assert_clean_failure(r, "too large")
    assert _listing(tmp_path) == {"bomb.png"}


def test_unknown_style_lists_the_available_ones(photo, tmp_path):
    r = run_cli("image", photo, "-o", tmp_path / "o.png", "--style", "vangogh")
    _assert_clean_failure(r, "unknown style 'vangogh'", "otherstyle", "randomstyle")
    assert not (tmp_path / "o.png").exists()


def test_output_equal_to_input_is_refused(photo):
    before = photo.read_bytes()
    r = run_cli("image", photo, "-o", photo, "--style", "randomstyle")
    _assert_clean_failure(r, "refusing to overwrite")
    assert photo.read_bytes() == before


def test_output_folder_that_cannot_exist(photo, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    r = run_cli("image", photo, "-o", blocker / "o.png", "--style", "randomstyle")
    _assert_clean_failure(r, "afile")
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_folder(photo, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = run_cli("image", photo, "-o", ro / "o.png", "--style", "randomstyle")
        _assert_clean_failure(r, "cannot")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file(photo, tmp_path):
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(photo.read_bytes())
    locked.chmod(0)
    r = run_cli("image", locked, "-o", tmp_path / "o.png", "--style", "randomstyle")
    _assert_clean_failure(r, "permission denied")
    assert not (tmp_path / "o.png").exists()


def test_one_bad_file_in_a_folder_fails_the_run_but_not_the_others(tmp_path, photo):
    src = tmp_path / "in"
    src.mkdir()
    Image.open(photo).save(src / "good.png")
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    r = run_cli("image", src, "-o", tmp_path / "out", "--style", "randomstyle")
    assert r.returncode != 0 and "bad.png" in r.stderr and "Traceback" not in r.stderr
    assert _listing(tmp_path / "out") == {"good.png"}


def test_corrupt_style_file_is_a_clear_error(photo, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 100)
    r = run_cli("image", photo, "-o", tmp_path / "o.png", "--style", broken)
    _assert_clean_failure(r, "broken.safetensors")


def test_styles_command_lists_user_styles():
    r = run_cli("styles")
    assert r.returncode == 0, r.stderr
    assert "randomstyle" in r.stdout and "otherstyle" in r.stdout
