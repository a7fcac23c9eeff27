"""`nst-video optimize` (Gatys et al.): the step guard (rollback on NaN, giving up with the last good image),
the style actually transferred, several style images, coarse to fine, bad inputs as one line, stop signals in a
real process. A random-weight VGG keeps these fast; one test uses the real weights and a painting."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_video.errors import NstError
from nst_video.training.loss_net import PerceptualLoss, gram, load_vgg_weights, vgg16_features_to_relu4_3
from nst_video.training.optimize import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    OptimizeConfig,
    estimate_memory,
    optimize,
    parse_style_spec,
    plan_levels,
)
from tests.conftest import ROOT, needs_shared_data, run_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A random-weight VGG file, a 64x48 photo, two different style images, and bad inputs."""
    root = tmp_path_factory.mktemp("optimize")
    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in vgg16_features_to_relu4_3().state_dict().items()}, root / "vgg.pth")
    yy, xx = np.mgrid[0:48, 0:64]
    photo = np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) * 2 % 256], 2).astype(np.uint8)
    photo[10:30, 20:40] = (200, 40, 40)
    Image.fromarray(photo).save(root / "photo.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "noise.png")
    stripes = np.zeros((40, 40, 3), np.uint8)
    stripes[:, ::4] = (255, 220, 0)
    Image.fromarray(stripes).save(root / "stripes.png")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "tiny.png")
    (root / "text.jpg").write_text("not an image")
    Image.new("1", (12_000, 8_000)).save(root / "bomb.png")  # 96 megapixels: over the decoder's limit
    return root


def _cfg(data: Path, out: Path, styles=None, **kw) -> OptimizeConfig:
    base = dict(content=str(data / "photo.png"), styles=styles or [(str(data / "noise.png"), 1.0)], output=str(out),
                size=48, steps=8, device="cpu", vgg_weights=str(data / "vgg.pth"), log_interval=100)
    base.update(kw)
    return OptimizeConfig(**base)


def _once(faults: dict[int, str]):
    """A poison hook that fires once per step listed, so a rollback can recover."""
    def poison(step):
        return faults.pop(step, None)
    return poison


def _tensor(path: Path, size=None) -> torch.Tensor:
    im = Image.open(path).convert("RGB")
    if size:
        im = im.resize(size, Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div(255)[None]


def _style_distance(vgg: Path, image: torch.Tensor, styles: list[Path], weights=None) -> float:
    loss = PerceptualLoss(load_vgg_weights(vgg), 0.0, 1.0, 0.0, content_layer=CONTENT_LAYER, style_layers=STYLE_LAYERS,
                          scale_free=True)
    loss.set_style([_tensor(p) for p in styles], weights)
    with torch.no_grad():
        return float(loss(image, image)["style"])


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_poisoned_step_rolls_back_and_the_run_finishes(data, tmp_path, optimizer):
    out = tmp_path / "out.png"
    result = optimize(_cfg(data, out, optimizer=optimizer), poison=_once({2: "loss", 5: "image"}))
    assert result.failures == [(2, "non-finite loss"), (5, "non-finite image")]
    assert result.steps == 8 and all(np.isfinite(v) for v in result.terms.values())
    picture = np.asarray(Image.open(out))
    assert picture.shape == (36, 48, 3) and picture.std() > 10  # a NaN image would be written as flat black


def test_repeated_failures_stop_with_a_clear_message_and_the_last_good_image_under_its_own_name(data, tmp_path):
    out = tmp_path / "out.png"
    with pytest.raises(NstError, match=r"failed 5 steps in a row \(non-finite loss.*Saved the last good image "
                                       r"\(2 steps\) to .*out\.last-good\.png; nothing was written to .*out\.png"):
        optimize(_cfg(data, out, steps=20), poison=lambda step: "loss" if step >= 3 else None)
    assert not out.exists()  # a failed run leaves nothing that looks like its result
    assert np.asarray(Image.open(tmp_path / "out.last-good.png")).std() > 10


def test_a_run_that_never_takes_a_good_step_writes_nothing(data, tmp_path):
    out = tmp_path / "out.png"
    with pytest.raises(NstError, match=r"failed 5 steps in a row.*Nothing was written to .*out\.png"):
        optimize(_cfg(data, out), poison=lambda step: "loss")
    assert list(tmp_path.iterdir()) == []


def test_running_out_of_memory_midway_keeps_the_last_good_image_under_its_own_name(data, tmp_path):
    out = tmp_path / "out.png"
    with pytest.raises(NstError, match=r"ran out of memory during the optimisation at 48x36: choose a smaller "
                                       r"--size\. Saved the last good image \(2 steps\) to .*out\.last-good\.png"):
        optimize(_cfg(data, out), poison=_once({3: "oom"}))
    assert not out.exists() and Image.open(tmp_path / "out.last-good.png").size == (48, 36)


@pytest.mark.parametrize("option, value", [("--init-noise", "nan"), ("--style-weight", "inf"),
                                           ("--style-weight", "nan"), ("--lr", "nan"), ("--style-scale", "nan"),
                                           ("--style-scale", "inf"), ("--content-weight", "1e999")])
def test_non_finite_numbers_are_a_usage_error_and_write_nothing(data, tmp_path, option, value):
    """Once an all-black out.png (--init-noise nan), the photo plus noise (--style-weight inf) or an internal
    error (--lr nan, --style-scale nan): now refused when the options are read, before any work."""
    from click.testing import CliRunner

    from nst_video.cli import main

    out = tmp_path / "out.png"
    r = CliRunner().invoke(main, ["optimize", str(data / "photo.png"), str(data / "noise.png"), str(out), "--size",
                                  "48", "--steps", "4", "--device", "cpu", "--vgg-weights", str(data / "vgg.pth"),
                                  option, value])
    assert r.exit_code == 2 and option in r.output and "finite" in r.output, r.output
    assert list(tmp_path.iterdir()) == []


def test_non_finite_numbers_are_refused_for_python_callers_too(data, tmp_path):
    for field in ("init_noise", "style_weight", "lr", "style_scale"):
        with pytest.raises(NstError, match=f"--{field.replace('_', '-')} nan: must be a finite number"):
            optimize(_cfg(data, tmp_path / "out.png", **{field: float("nan")}))
    assert list(tmp_path.iterdir()) == []


def test_the_style_distance_falls_below_the_photos(data, tmp_path):
    out = tmp_path / "out.png"
    optimize(_cfg(data, out, steps=20))
    photo = _tensor(data / "photo.png", (48, 36))
    before = _style_distance(data / "vgg.pth", photo, [data / "noise.png"])
    after = _style_distance(data / "vgg.pth", _tensor(out), [data / "noise.png"])
    assert after < 0.3 * before, (before, after)


@pytest.mark.slow
@pytest.mark.shared_data
def test_with_the_real_network_the_painting_s_style_arrives(tmp_path):
    vgg = needs_shared_data("vgg", "vgg16_to_relu4_3_fp16.pth")
    painting = needs_shared_data("styles", "starry_night.jpg")
    photo_path = ROOT / "samples" / "photos" / "raccoon.jpg"
    out = tmp_path / "out.png"
    result = optimize(OptimizeConfig(content=str(photo_path), styles=[(str(painting), 1.0)], output=str(out),
                                     size=64, steps=30, device="cpu", vgg_weights=str(vgg)))
    assert not result.failures
    style = tmp_path / "style.png"
    with Image.open(painting) as im:  # the painting at the size the run used (long side as the result's)
        im.convert("RGB").resize((64, round(64 * im.height / im.width))).save(style)
    before = _style_distance(vgg, _tensor(photo_path, (64, 48)), [style])
    after = _style_distance(vgg, _tensor(out), [style])
    assert after < 0.5 * before, (before, after)


def test_several_style_images_mix_their_grams_by_weight(data):
    loss = PerceptualLoss(load_vgg_weights(data / "vgg.pth"), 1, 1, 0, style_layers=STYLE_LAYERS)
    a, b = _tensor(data / "noise.png"), _tensor(data / "stripes.png")
    loss.set_style([a, b], [3, 1])
    mixed = loss.style_grams
    feats_a, feats_b = loss.features(a), loss.features(b)
    for name, g in zip(STYLE_LAYERS, mixed, strict=True):
        torch.testing.assert_close(g, 0.75 * gram(feats_a[name]) + 0.25 * gram(feats_b[name]))


@pytest.mark.slow
def test_the_heavier_style_image_wins(data, tmp_path):
    noise, stripes = str(data / "noise.png"), str(data / "stripes.png")
    only_style = dict(steps=30, tv_weight=0, content_weight=0)  # the mix alone decides
    optimize(_cfg(data, tmp_path / "n.png", styles=[(noise, 0.9), (stripes, 0.1)], **only_style))
    optimize(_cfg(data, tmp_path / "s.png", styles=[(noise, 0.1), (stripes, 0.9)], **only_style))
    to_stripes = [_style_distance(data / "vgg.pth", _tensor(tmp_path / f), [data / "stripes.png"])
                  for f in ("n.png", "s.png")]
    to_noise = [_style_distance(data / "vgg.pth", _tensor(tmp_path / f), [data / "noise.png"])
                for f in ("n.png", "s.png")]
    assert to_stripes[1] < to_stripes[0] and to_noise[0] < to_noise[1], (to_stripes, to_noise)


def test_style_specs_take_an_optional_weight(tmp_path):
    assert parse_style_spec("a.jpg") == ("a.jpg", 1.0)
    assert parse_style_spec("dir/a.jpg:0.7") == ("dir/a.jpg", 0.7)
    odd = tmp_path / "b:2.png"
    odd.write_bytes(b"")
    assert parse_style_spec(str(odd)) == (str(odd), 1.0)  # an existing file's name is never split
    with pytest.raises(NstError, match="above 0"):
        parse_style_spec("a.jpg:0")


def test_the_command_with_two_styles_saves_intermediates_and_the_result(data, tmp_path):
    out = tmp_path / "out.jpg"
    r = run_cli("optimize", data / "photo.png", data / "noise.png", out, "--style-image",
                f"{data / 'stripes.png'}:0.3", "--size", "48", "--steps", "4", "--save-every", "2", "--device", "cpu",
                "--vgg-weights", data / "vgg.pth")
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (48, 36)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.step0002.jpg", "out.step0004.jpg"]
    assert f"wrote {out} (48x36, 4 steps" in r.stderr


def test_preserve_color_keeps_the_photos_chroma(data, tmp_path):
    optimize(_cfg(data, tmp_path / "kept.png", steps=6, preserve_color=True))
    optimize(_cfg(data, tmp_path / "free.png", steps=6))
    photo = _tensor(data / "photo.png", (48, 36))

    def chroma(x):
        r, g, b = x.unbind(1)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return torch.stack([b - y, r - y])
    kept = (chroma(_tensor(tmp_path / "kept.png")) - chroma(photo)).abs().mean()
    free = (chroma(_tensor(tmp_path / "free.png")) - chroma(photo)).abs().mean()
    assert kept < 0.03 and kept < free / 2, (kept, free)


@pytest.mark.parametrize("init", ["content", "noise", "style"])
def test_every_start_image_runs(data, tmp_path, init):
    result = optimize(_cfg(data, tmp_path / "out.png", steps=2, init=init))
    assert result.steps == 2 and Image.open(tmp_path / "out.png").size == (48, 36)


def test_large_outputs_are_done_coarse_to_fine(data, tmp_path):
    assert [(lv.width, lv.height, lv.steps) for lv in plan_levels(4000, 3000, 2048, 512, 300)] == \
        [(512, 384, 300), (1024, 768, 150), (2048, 1536, 150)]
    assert len(plan_levels(640, 480, 512, 512, 300)) == 1
    result = optimize(_cfg(data, tmp_path / "out.png", size=192, coarse_size=96, steps=4))
    assert [(lv.width, lv.height, lv.steps) for lv in result.levels] == [(96, 72, 4), (192, 144, 2)]
    assert result.steps == 6 and Image.open(tmp_path / "out.png").size == (192, 144)


def test_the_memory_estimate_grows_with_the_picture_and_the_optimizer():
    small, big = (plan_levels(640, 480, size, 4096, 1) for size in (512, 2048))
    grow = (estimate_memory(big, [], "adam") - estimate_memory(small, [], "adam")) / \
        (estimate_memory(small, [], "adam") - estimate_memory(plan_levels(640, 480, 64, 4096, 1), [], "adam"))
    assert 14 < grow < 17  # 16x the pixels
    assert estimate_memory(big, [], "lbfgs") > estimate_memory(big, [], "adam")


@pytest.mark.parametrize("case", ["missing", "not-an-image", "1x1", "huge-size", "huge-file", "bad-weight",
                                  "bad-output"])
def test_bad_input_is_one_clear_line(data, tmp_path, case):
    out = tmp_path / "out.png"
    content, style, extra = data / "photo.png", data / "noise.png", []
    expected = {"missing": "no such file", "not-an-image": "not an image", "1x1": "1x1 is too small",
                "huge-size": "memory for the optimisation", "huge-file": "too large to decode",
                "bad-weight": "must be a number above 0", "bad-output": "unknown image format"}[case]
    if case == "missing":
        content = tmp_path / "nowhere.jpg"
    elif case == "not-an-image":
        style = data / "text.jpg"
    elif case == "1x1":
        content = data / "tiny.png"
    elif case == "huge-size":
        extra = ["--size", "200000"]
    elif case == "huge-file":
        content = data / "bomb.png"
    elif case == "bad-weight":
        style = f"{style}:-1"
    elif case == "bad-output":
        out = tmp_path / "out.xyz"
    r = run_cli("optimize", content, style, out, "--device", "cpu", "--vgg-weights", data / "vgg.pth", *extra)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("nst-video: error:") and expected in lines[0], r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_a_stop_signal_saves_the_current_image_and_exits_128_plus_n(data, tmp_path, signum):
    out = tmp_path / "out.png"
    proc = subprocess.Popen([sys.executable, "-m", "nst_video", "optimize", str(data / "photo.png"),
                             str(data / "noise.png"), str(out), "--size", "48", "--steps", "100000",
                             "--save-every", "1", "--device", "cpu", "--vgg-weights", str(data / "vgg.pth")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "out.step000002.png").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"saved the current image to {out}" in err and "Traceback" not in err
    assert Image.open(out).size == (48, 36)
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
