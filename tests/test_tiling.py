"""Pictures of any size (issue #14): tiled inference in bands with whole-picture statistics, the memory budget,
and the stroke scale. Small pictures with small bands, so every test runs tiles and band borders."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from nst_video import guided, memory, tiling
from nst_video.errors import NstError
from nst_video.model import build_network
from nst_video.styles import StyleInfo, save_style
from nst_video.stylizer import Stylizer, frames_to_tensor
from tests.conftest import ROOT, run_cli

RACCOON = ROOT / "samples" / "photos" / "raccoon.jpg"


def _network(seed=0, architecture="johnson"):
    torch.manual_seed(seed)
    return build_network(architecture).eval().requires_grad_(False)


def _photo(h, w):
    """A real photo cropped and repeated to h x w (real detail, odd sizes)."""
    rgb = np.asarray(Image.open(RACCOON).convert("RGB"))
    reps = (-(-h // rgb.shape[0]), -(-w // rgb.shape[1]), 1)
    return np.ascontiguousarray(np.tile(rgb, reps)[:h, :w])


def _bands(model, rgb, band_pixels, map_dtype=torch.float32, keep_full=False):
    x = frames_to_tensor([rgb])
    out = torch.full_like(x, -1.0)
    for a, band in tiling.stylize_bands(model, lambda a, b: x[..., a:b, :], *rgb.shape[:2], band_pixels,
                                        map_dtype, keep_full):
        out[..., a:a + band.shape[-2], :] = band
    return out


def _psnr(a, b):
    return 10 * np.log10(1.0 / torch.mean((a - b) ** 2).item())


@pytest.fixture
def tiled_stylizer(monkeypatch):
    """A Stylizer whose budget forces tiles: the process is taken to hold nothing, and the budget holds one
    pass of no more than 20,000 pixels."""
    monkeypatch.setattr(memory, "in_use", lambda device: 0)

    def make(model=None, **kwargs):
        s = Stylizer(model or _network(), device="cpu", **{"backend": "torch", **kwargs})
        s.max_memory = memory.untiled_bytes(s.runtime.name, 20_000)
        return s
    return make


@torch.inference_mode()
def test_bands_with_whole_picture_statistics_equal_one_pass():
    model = _network()
    rgb = _photo(103, 157)
    one = model(frames_to_tensor([rgb]))
    # 10 rows per band at full resolution: 11 bands, and band borders in every layer
    exact = _bands(model, rgb, band_pixels=1600)
    assert (exact - one).abs().max().item() < 1e-4
    # float16 maps (tight budgets): still far within 35 dB of one pass
    assert _psnr(_bands(model, rgb, 1600, torch.float16), one) > 50
    assert (_bands(model, rgb, 1600, torch.float32, keep_full=True) - one).abs().max().item() < 1e-4


@torch.inference_mode()
def test_a_flat_picture_stays_flat_across_band_borders():
    # Flat colour with a noisy patch in a corner: far from the patch the result must be one flat colour in
    # every band. Tiles normalised by their own statistics fail this (the patch's tile gets other ones).
    from nst_video.styles import StyleRegistry
    model = StyleRegistry().load("mosaic")[1].eval()  # a trained style: random weights paint grey
    rgb = np.full((160, 120, 3), (90, 140, 200), np.uint8)
    rgb[:24, :24] = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    tiled = (_bands(model, rgb, band_pixels=1440) * 255).round()[0]
    far = tiled[:, :, 90:]  # > 60 px (the receptive field) right of the patch, across 7 band borders
    assert (far.amax(dim=(1, 2)) - far.amin(dim=(1, 2))).max().item() <= 1
    naive = torch.cat([model(frames_to_tensor([rgb[:80]])), model(frames_to_tensor([rgb[80:]]))], dim=2)
    naive = (naive * 255).round()[0, :, :, 90:]
    assert (naive.amax(dim=(1, 2)) - naive.amin(dim=(1, 2))).max().item() > 1  # the check can see a seam


@pytest.mark.parametrize("h, w", [(1, 301), (3, 97), (301, 1), (257, 2), (7, 900), (803, 9), (61, 83)])
@torch.inference_mode()
def test_odd_sizes_slivers_and_long_pictures_come_out_whole(tiled_stylizer, h, w):
    model = _network()
    rgb = _photo(h, w)
    hp, wp, _ = tiling.padded_size(h, w)
    one = model(frames_to_tensor([rgb]))
    # the thinnest bands there are: 8 rows at full resolution (2 at quarter resolution)
    assert (_bands(model, rgb, band_pixels=8 * wp) - one).abs().max().item() < 1e-4
    stylizer = tiled_stylizer(model)
    stylizer.max_memory = 1 << 30
    per_pixel = memory.UNTILED_BYTES_PER_PIXEL["torch"]
    memory.UNTILED_BYTES_PER_PIXEL["torch"] = 1 << 24  # one pass never fits: tiles, whatever the shape
    try:
        assert stylizer.plan(h, w).band_pixels is not None
        tiled = stylizer.stylize_image(rgb)
    finally:
        memory.UNTILED_BYTES_PER_PIXEL["torch"] = per_pixel
    assert tiled.shape == rgb.shape
    assert stylizer.plan(h, w).band_pixels is None
    assert np.abs(tiled.astype(int) - stylizer.stylize_image(rgb)).max() <= 1


def test_the_stylizer_tiles_what_does_not_fit_and_agrees_with_one_pass(tiled_stylizer):
    stylizer = tiled_stylizer(strength=0.8, preserve_color=True)  # post-processing on bands too
    rgb = _photo(150, 200)
    plan = stylizer.plan(150, 200)
    assert plan.band_pixels is not None and plan.need <= stylizer.max_memory
    tiled = stylizer.stylize_image(rgb)
    stylizer.max_memory = 1 << 40
    one = stylizer.stylize_image(rgb)
    assert np.abs(tiled.astype(int) - one).max() <= 1
    # the tensor path (CUDA streams, tests, a server) tiles the same way
    stylizer.max_memory = memory.untiled_bytes("torch", 20_000)
    assert stylizer.plan(150, 200, result_bytes=12).band_pixels is not None
    x = frames_to_tensor([rgb])
    assert (stylizer.stylize_tensor(x) - torch.from_numpy(one).permute(2, 0, 1)[None] / 255).abs().max() < 2 / 255


def test_graph_runtimes_tile_on_torch(tiled_stylizer):
    pytest.importorskip("openvino")
    stylizer = tiled_stylizer(backend="openvino")
    assert stylizer.runtime.name == "openvino"
    rgb = _photo(150, 170)
    assert stylizer.plan(150, 170).band_pixels is not None
    tiled = stylizer.stylize_image(rgb)
    stylizer.max_memory = 1 << 40
    assert np.abs(tiled.astype(float) - stylizer.stylize_image(rgb)).mean() < 2  # OpenVINO's own precision


def test_a_budget_too_small_even_for_tiles_is_one_clear_error(tiled_stylizer):
    stylizer = tiled_stylizer()
    stylizer.max_memory = 10 * 2**20
    with pytest.raises(NstError, match=r"4000x3000 picture does not fit .*--max-memory.*even in tiles"):
        stylizer.plan(3000, 4000)


def test_maps_go_float16_where_float32_does_not_fit():
    model = _network()
    assert tiling.plan_bands(model, 3000, 4000, 4 * 2**30, fp16=False)[1:] == (torch.float32, True)
    fp32 = tiling.plan_bands(model, 3000, 4000, 2 * 2**30, fp16=False)
    assert fp32 is not None and fp32[1:] == (torch.float32, False)
    small = tiling.map_bytes(model, 3000 * 4000, torch.float32) * 3 // 4 + tiling.band_bytes(1 << 16)
    fp16 = tiling.plan_bands(model, 3000, 4000, small, fp16=False)
    assert fp16 is not None and fp16[1] == torch.float16
    assert tiling.plan_bands(model, 3000, 4000, small // 3, fp16=False) is None


@pytest.mark.slow  # a 12 MP picture through the real command
def test_peak_memory_stays_within_the_budget(tmp_path):
    # A 12 MP picture through the real command with --max-memory: the peak RSS of the process (libraries
    # included) stays under it. The network is the lite architecture (a quarter of the work, same layers).
    save_style(tmp_path / "lite.safetensors", _network(architecture="lite").state_dict(),
               StyleInfo(name="lite", title="Random lite (test)", credit="tests", architecture="lite"))
    h, w = 3000, 4000
    Image.fromarray(_photo(h, w)).save(tmp_path / "big.bmp")
    # Tight, but above what a freshly installed environment already holds before the picture (~850 MiB: its
    # libraries all in the page cache; ~540 MiB in an older one), so that it still runs in tiles there.
    budget = "1.6G"
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    r = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "nst_video", "image",
                        tmp_path / "big.bmp", tmp_path / "out.bmp", "--style", str(tmp_path / "lite.safetensors"),
                        "--style-scale", "1", "--max-memory", budget, "--backend", "torch", "--device", "cpu"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    peak = int(r.stdout.split()[-1]) * 1024
    assert peak <= memory.parse_size(budget), f"peak RSS {peak / 2**30:.2f} GiB over {budget}"
    with Image.open(tmp_path / "out.bmp") as im:
        assert im.size == (w, h)


@pytest.mark.parametrize("value", ["0", "-1G", "abc", "1.5X", "nan", ""])
def test_bad_max_memory_is_a_usage_error(photo, tmp_path, value):
    r = run_cli("image", photo, tmp_path / "o.png", "--style", "randomstyle", "--max-memory", value)
    assert r.returncode == 2 and "--max-memory" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("value", ["0", "0.5", "-2", "nan", "inf", "big"])
def test_bad_style_scale_is_a_usage_error(photo, tmp_path, value):
    r = run_cli("image", photo, tmp_path / "o.png", "--style", "randomstyle", "--style-scale", value)
    assert r.returncode == 2 and "--style-scale" in r.stderr and "Traceback" not in r.stderr


def test_a_budget_below_what_the_process_holds_is_one_error_line(photo, tmp_path):
    r = run_cli("image", photo, tmp_path / "o.png", "--style", "randomstyle", "--max-memory", "50M")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("nst-video: error: a 517x333 picture does not fit")
    assert not (tmp_path / "o.png").exists()


def test_max_memory_sizes():
    assert memory.parse_size("2G") == 2 * 2**30
    assert memory.parse_size("1.5GB") == int(1.5 * 2**30)
    assert memory.parse_size("512m") == 512 * 2**20
    assert memory.parse_size("800MiB") == 800 * 2**20
    assert memory.parse_size("4000000") == 4_000_000


# --- stroke scale ---

def test_auto_scale_leaves_pictures_up_to_1_mp_alone():
    assert guided.style_scale_for("auto", 1000, 1000) == 1.0
    assert guided.style_scale_for("auto", 480, 640) == 1.0
    assert guided.style_scale_for("auto", 3391, 6028) == pytest.approx(np.sqrt(3391 * 6028 / 1e6))
    assert guided.style_scale_for(3, 10, 10) == 3.0


def test_a_big_photo_is_the_same_painting_as_its_small_version():
    # A photo 4x as large, at --style-scale 4, scaled back down, is what the small photo gives; at scale 1
    # the network paints strokes a quarter the size, and the scaled-down result is another picture.
    from nst_video.styles import StyleRegistry
    stylizer = Stylizer(StyleRegistry().load("mosaic")[1], device="cpu", backend="torch")
    small = _photo(72, 96)
    big = np.asarray(Image.fromarray(small).resize((384, 288), Image.Resampling.LANCZOS))

    def shrunk(rgb):
        return frames_to_tensor([np.asarray(Image.fromarray(rgb).resize((96, 72), Image.Resampling.BOX))])
    reference = frames_to_tensor([stylizer.stylize_image(small)])
    stylizer.style_scale = 4
    scaled = stylizer.stylize_image(big)
    assert scaled.shape == big.shape
    stylizer.style_scale = 1
    full = stylizer.stylize_image(big)
    assert _psnr(shrunk(scaled), reference) > 23  # measured: 26.8 dB
    assert _psnr(shrunk(scaled), reference) > _psnr(shrunk(full), reference) + 8  # 13.9 dB at scale 1


def test_detail_comes_back_from_the_photo():
    # A "style" that returns the photo: brought up with the photo's detail, the result is the photo itself
    # (far closer than plain bilinear upsampling); a flat stylization gets none of the photo's texture.
    photo = frames_to_tensor([_photo(240, 320)])
    low = frames_to_tensor([guided.downscale(_photo(240, 320), 60, 80)])
    up = guided.DetailUpsampler(low, low, 240, 320)
    restored = up.rows(0, 240, photo)
    bilinear = torch.nn.functional.interpolate(low, size=(240, 320), mode="bilinear", align_corners=False)
    assert _psnr(restored, photo) > _psnr(bilinear, photo) + 3
    flat = guided.DetailUpsampler(torch.full_like(low, 0.4), low, 240, 320).rows(0, 240, photo)
    assert (flat - 0.4).abs().max().item() < 1e-5


def test_strips_join_exactly(monkeypatch):
    stylizer = Stylizer(_network(), device="cpu", backend="torch", style_scale=3)
    rgb = _photo(121, 203)
    whole = stylizer.stylize_image(rgb)
    monkeypatch.setattr(guided, "STRIP_PIXELS", 203 * 7)
    assert np.array_equal(stylizer.stylize_image(rgb), whole)


@pytest.mark.parametrize("h, w", [(1, 400), (400, 1), (5, 3001)])
def test_style_scale_on_slivers(h, w):
    stylizer = Stylizer(_network(), device="cpu", backend="torch", style_scale=4)
    assert stylizer.stylize_image(_photo(h, w)).shape == (h, w, 3)


def test_image_command_defaults_to_auto_scale_and_keeps_the_size(tmp_path):
    Image.fromarray(_photo(820, 1300)).save(tmp_path / "in.png")  # 1.07 MP: scaled by 1.03
    r = run_cli("image", tmp_path / "in.png", tmp_path / "out.png", "--style", "randomstyle")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (1300, 820)
