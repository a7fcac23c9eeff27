"""Training: exact resume, the NaN guard, bad content images, VGG errors, Ctrl-C, diagnose, and (with the
shared data) a short real run whose style file the app then uses."""
import json
import os
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
from nst_video.styles import load_style, read_info
from nst_video.training.train import TrainConfig, checkpoint_weights, moved_by, random_motion, train
from tests.conftest import ROOT, needs_shared_data, run_cli


def _cfg(data: Path, run: Path, **kw) -> TrainConfig:
    base = dict(content_dir=str(data / "content"), style_image=str(data / "style.png"), name="t",
                output=str(run / "t.safetensors"), vgg_weights=str(data / "vgg.pth"), checkpoint_dir=str(run / "ck"),
                batch_size=2, image_size=32, style_size=64, max_steps=4, checkpoint_interval=2, sample_interval=100,
                log_interval=1, device="cpu", seed=7)
    base.update(kw)
    return TrainConfig(**base)


def _weights(path: Path) -> dict:
    return load_style(path)[1]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "ck" / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resume_continues_exactly(tiny_data, tmp_path):
    straight = train(_cfg(tiny_data, tmp_path / "a"))
    train(_cfg(tiny_data, tmp_path / "b", max_steps=2))
    resumed = train(_cfg(tiny_data, tmp_path / "b", max_steps=4, resume=True))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = {r["step"]: r["total"] for r in _log(tmp_path / "a") if "total" in r}
    resumed_losses = {r["step"]: r["total"] for r in _log(tmp_path / "b") if "total" in r}
    assert losses[3] == resumed_losses[3] and losses[4] == resumed_losses[4]


@pytest.mark.slow
def test_motion_term_moves_pictures_like_a_camera_and_resumes_exactly(tiny_data, tmp_path):
    # The synthetic camera motion: with no turn or zoom, a shift of whole pixels moves the picture by them.
    torch.manual_seed(3)
    images = torch.rand(2, 3, 24, 32)
    grid, inside = random_motion(images, max_shift=0.0, max_turn_degrees=0.0, max_scale=0.0)
    assert torch.allclose(moved_by(images, grid), images, atol=1e-5) and bool(inside.all())
    grid, inside = random_motion(images, max_shift=3.0)
    assert 0.5 < float(inside.mean()) < 1.0  # some pixels come from outside the picture: not compared
    two_right = torch.nn.functional.affine_grid(torch.tensor([[[1.0, 0, 2 * 2 / 32], [0, 1, 0]]] * 2),
                                                [2, 1, 24, 32], align_corners=False)  # 2 px in [-1, 1] units
    assert torch.allclose(moved_by(images, two_right)[..., :-2], images[..., 2:], atol=1e-5)
    # A pure shift moves every pixel by the same amount, at most max_shift pixels.
    still, _ = random_motion(images, max_shift=0.0, max_turn_degrees=0.0, max_scale=0.0)
    shifted, _ = random_motion(images, max_shift=3.0, max_turn_degrees=0.0, max_scale=0.0, seed=5)
    pixels = (shifted - still) * torch.tensor([32 / 2, 24 / 2])
    assert torch.allclose(pixels, pixels[:, :1, :1], atol=1e-4) and 0 < float(pixels.abs().max()) <= 3.0
    # In training: logged as its own term, and a resumed run draws the same motions as a straight one.
    straight = train(_cfg(tiny_data, tmp_path / "a", motion_weight=50.0))
    train(_cfg(tiny_data, tmp_path / "b", max_steps=2, motion_weight=50.0))
    resumed = train(_cfg(tiny_data, tmp_path / "b", max_steps=4, resume=True, motion_weight=50.0))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    motion = [r["motion"] for r in _log(tmp_path / "a") if "motion" in r]
    assert len(motion) == 4 and all(m > 0 for m in motion)


def test_existing_checkpoint_is_not_overwritten_without_resume(tiny_data, tmp_path):
    train(_cfg(tiny_data, tmp_path, max_steps=2))
    (tmp_path / "t.safetensors").unlink()  # (an existing style is refused first: see the test below)
    with pytest.raises(NstError, match="--resume"):
        train(_cfg(tiny_data, tmp_path, max_steps=4))


def test_train_follows_the_one_rule_for_names_an_existing_style_a_bundled_name(tiny_data, tmp_path):
    """As `distill`: an existing style is not replaced without --force (or continued with --resume), and a
    bundled style's name is refused in the user styles folder, where the bundled one would hide it."""
    user = tmp_path / "user-styles"

    def train_cli(name, *extra):
        return run_cli("train", "--content-dir", tiny_data / "content", "--style-image", tiny_data / "style.png",
                       "--name", name, "--vgg-weights", tiny_data / "vgg.pth", "--checkpoint-dir", tmp_path / name,
                       "--image-size", "32", "--batch-size", "2", "--style-size", "64", "--device", "cpu", *extra,
                       env_extra={"NST_VIDEO_STYLES": str(user)})

    assert train_cli("mine", "--max-steps", "1").returncode == 0
    again = train_cli("mine", "--max-steps", "2")
    assert again.returncode == 1 and "style 'mine' exists" in again.stderr and "--force" in again.stderr, again.stderr
    assert load_style(user / "mine.safetensors")[0].training["steps"] == 1  # untouched
    forced = train_cli("mine", "--max-steps", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_style(user / "mine.safetensors")[0].training["steps"] == 2  # afresh: 2 steps, not 1 + 1

    for extra in ((), ("--force",)):
        bundled = train_cli("mosaic", "--max-steps", "1", *extra)
        assert bundled.returncode == 1 and "'mosaic' is the name of a bundled style" in bundled.stderr, bundled.stderr
    assert not (user / "mosaic.safetensors").exists() and not (tmp_path / "mosaic").exists()


def test_injected_nan_never_reaches_the_weights(tiny_data, tmp_path):
    # Steps 0 and 1 are good, step 2's loss is NaN: the weights after 3 steps must equal those after 2.
    two = _weights(train(_cfg(tiny_data, tmp_path / "two", max_steps=2)))
    nan = _weights(train(_cfg(tiny_data, tmp_path / "nan", max_steps=3), poison_steps=[2]))
    assert all(torch.isfinite(v).all() for v in nan.values())
    assert all(torch.equal(two[k], nan[k]) for k in two)
    assert any(r.get("event") == "non-finite loss" and r["step"] == 2 for r in _log(tmp_path / "nan"))


def test_ema_writes_the_moving_average_of_the_steps_and_resumes_it_exactly(tiny_data, tmp_path):
    def checkpoint(run: str) -> dict:
        return torch.load(tmp_path / run / "ck" / "last.pt", weights_only=True)

    # The weights after steps 1, 2, 3 without the average (a resumed run is the straight one: the test above).
    steps = []
    for k in (1, 2, 3):
        train(_cfg(tiny_data, tmp_path / "raw", max_steps=k, resume=k > 1))
        steps.append(checkpoint("raw")["model"])
    # With --ema-decay 0.5 the average is 0.25 w1 + 0.25 w2 + 0.5 w3 (the first update copies w1) ...
    style_file = _weights(train(_cfg(tiny_data, tmp_path / "ema", max_steps=3, ema_decay=0.5)))
    average = checkpoint_weights(checkpoint("ema"))
    assert average.keys() == steps[2].keys()
    for key in average:
        expected = 0.25 * steps[0][key] + 0.25 * steps[1][key] + 0.5 * steps[2][key]
        assert torch.allclose(average[key], expected, atol=1e-7), key
    # ... and the style file holds it (as float16), not the last step's weights.
    assert all(torch.equal(style_file[k], average[k].half()) for k in average)
    assert any(not torch.equal(style_file[k], steps[2][k].half()) for k in average)
    # The checkpoint carries the average: stopped at step 1 and resumed, the same file.
    train(_cfg(tiny_data, tmp_path / "resumed", max_steps=1, ema_decay=0.5))
    resumed = _weights(train(_cfg(tiny_data, tmp_path / "resumed", max_steps=3, ema_decay=0.5, resume=True)))
    assert all(torch.equal(style_file[k], resumed[k]) for k in style_file)
    # scripts/export_checkpoint.py writes the average too (--raw: the last step's weights).
    for extra, want in (([], average), (["--raw"], steps[2])):
        out = tmp_path / f"export{len(extra)}.safetensors"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "export_checkpoint.py"),
                        str(tmp_path / "resumed" / "ck" / "last.pt"), str(out), "--name", "t", *extra], check=True,
                       capture_output=True)
        exported = _weights(out)
        assert all(torch.equal(exported[k], want[k].half()) for k in want)
        # its metadata says how it was made, as the finished run's does (and whether it is the average)
        training, finished = read_info(out).training, read_info(tmp_path / "resumed" / "t.safetensors").training
        assert training.pop("exported_from_checkpoint") and "max_zoom" in training
        assert all(finished[key] == value for key, value in training.items()), (training, finished)
        assert ("ema_decay" in training) == (not extra)


@pytest.mark.slow
def test_repeated_nan_halves_lr_and_rolls_back(tiny_data, tmp_path):
    out = train(_cfg(tiny_data, tmp_path, max_steps=6, nan_patience=3, lr=1e-3), poison_steps=[3, 4, 5])
    events = [r for r in _log(tmp_path) if "event" in r]
    assert [e["event"] for e in events] == ["non-finite loss"] * 3 + ["rollback"]
    assert events[-1]["step"] == 2 and events[-1]["lr"] == 5e-4
    info, weights = load_style(out)
    assert info.training["final_lr"] == 5e-4 and info.training["steps"] == 6
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_unreadable_content_images_are_skipped_and_counted(tiny_data, tmp_path, capsys):
    content = tmp_path / "content"
    content.mkdir()
    for p in (tiny_data / "content").rglob("*.*"):
        (content / p.name).write_bytes(p.read_bytes())
    good = (content / "p1.jpg").read_bytes()
    (content / "aaa_truncated.jpg").write_bytes(good[: len(good) // 3])
    (content / "aab_not_an_image.jpg").write_text("hello")
    # 8 images, batch 4, 4 steps: every file is drawn at least once per epoch
    out = train(_cfg(tiny_data, tmp_path, content_dir=str(content), batch_size=4, max_steps=4))
    assert out.is_file()
    assert "skipped 2 unreadable image(s)" in capsys.readouterr().err
    assert _log(tmp_path)[-1]["skipped"] == 2


def test_missing_vgg_file_is_a_clear_cli_error(tiny_data, tmp_path):
    r = run_cli("train", "--content-dir", tiny_data / "content", "--style-image", tiny_data / "style.png",
                "--name", "x", "--checkpoint-dir", tmp_path / "ck", "--vgg-weights", tmp_path / "missing.pth",
                "--device", "cpu")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "VGG weights not found" in r.stderr and "missing.pth" in r.stderr


def test_corrupt_vgg_file_is_a_clear_error(tiny_data, tmp_path):
    bad = tmp_path / "vgg.pth"
    state = torch.load(tiny_data / "vgg.pth", weights_only=True)
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, bad)
    with pytest.raises(NstError, match="NaN or Inf"):
        train(_cfg(tiny_data, tmp_path, vgg_weights=str(bad)))
    bad.write_bytes(b"not a torch file")
    with pytest.raises(NstError, match="not a readable VGG16 weights file"):
        train(_cfg(tiny_data, tmp_path, vgg_weights=str(bad)))


def test_a_pickle_that_is_not_weights_is_one_line_naming_the_file(tiny_data, tmp_path):
    bad = tmp_path / "object.pth"
    torch.save({"features.0.weight": Path("x")}, bad)  # a Python object: torch.load(weights_only) refuses it
    r = run_cli("train", "--content-dir", tiny_data / "content", "--style-image", tiny_data / "style.png",
                "--name", "x", "--checkpoint-dir", tmp_path / "ck", "--vgg-weights", bad, "--device", "cpu")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "object.pth" in lines[0] and "VGG16" in lines[0], r.stderr
    assert "file an issue" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("option, value", [("--lr", "-1"), ("--lr", "0"), ("--style-weight", "-5"),
                                           ("--image-size", "8"), ("--log-interval", "0"), ("--batch-size", "0"),
                                           ("--max-steps", "-3"), ("--lr", "abc"), ("--lr", "nan"),
                                           ("--motion-shift", "inf"), ("--max-zoom", "0.5")])
def test_out_of_range_numbers_are_a_usage_error(tiny_data, tmp_path, option, value):
    r = run_cli("train", "--content-dir", tiny_data / "content", "--style-image", tiny_data / "style.png",
                "--name", "x", "--checkpoint-dir", tmp_path / "ck", "--vgg-weights", tiny_data / "vgg.pth",
                option, value)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert option in r.stderr and not (tmp_path / "ck").exists()


def test_config_bounds_are_checked_for_python_callers_too(tiny_data, tmp_path):
    with pytest.raises(NstError, match="--lr -1.*greater than 0"):
        train(_cfg(tiny_data, tmp_path, lr=-1.0))
    with pytest.raises(NstError, match="--lr nan: must be a finite number"):  # nan passes every comparison
        train(_cfg(tiny_data, tmp_path, lr=float("nan")))


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["int", "term", "hup"])
def test_stop_signal_saves_a_checkpoint_and_resume_finishes(tiny_data, tmp_path, signum):
    args = [sys.executable, "-m", "nst_video", "train", "--content-dir", tiny_data / "content", "--style-image",
            tiny_data / "style.png", "--name", "cc", "--output", tmp_path / "cc.safetensors", "--checkpoint-dir",
            tmp_path / "ck", "--vgg-weights", tiny_data / "vgg.pth", "--image-size", "32", "--batch-size", "2",
            "--log-interval", "1", "--device", "cpu"]
    proc = subprocess.Popen([*map(str, args), "--max-steps", "100000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = tmp_path / "ck" / "log.jsonl"
    deadline = time.time() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 3) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "checkpoint saved" in err and "Traceback" not in err
    saved = torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["step"]
    assert saved >= 3 and not (tmp_path / "cc.safetensors").exists()
    r = subprocess.run([*map(str, args), "--max-steps", str(saved + 2), "--resume"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resuming from step {saved}" in r.stderr
    assert load_style(tmp_path / "cc.safetensors")[0].training["steps"] == saved + 2


def test_diagnose_reports_terms_and_advice(tiny_data):
    r = run_cli("diagnose", tiny_data / "content", tiny_data / "style.png", "--vgg-weights", tiny_data / "vgg.pth",
                "--image-size", "32", "--batch-size", "2", "--steps", "3", "--device", "cpu",
                "--style-weight", "1e-9")
    assert r.returncode == 0, r.stderr
    assert "6 readable image(s) of 6" in r.stderr and "all finite" in r.stderr
    assert "grad norm" in r.stderr and "raise --style-weight" in r.stderr


def test_diagnose_prints_folder_names_as_they_are(tiny_data, tmp_path):
    """Once an internal error (rich read '[/]' in the folder's name as markup) and an emoji for ':fire:'."""
    content = tmp_path / "d[" / "]x :fire:"
    content.mkdir(parents=True)
    (content / "p1.jpg").write_bytes((tiny_data / "content" / "p1.jpg").read_bytes())
    r = run_cli("diagnose", content, tiny_data / "style.png", "--vgg-weights", tiny_data / "vgg.pth",
                "--image-size", "32", "--batch-size", "1", "--steps", "1", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert f"content: 1 readable image(s) of 1 in {content}" in r.stderr, r.stderr


@pytest.mark.slow
@pytest.mark.shared_data
def test_short_real_run_lowers_style_loss_and_the_style_works(tmp_path):
    content = needs_shared_data("content", "train256")
    style = needs_shared_data("styles", "starry_night.jpg")
    vgg = needs_shared_data("vgg", "vgg16_to_relu4_3_fp16.pth")
    out = train(TrainConfig(content_dir=str(content), style_image=str(style), name="sn",
                            output=str(tmp_path / "sn.safetensors"),
                            vgg_weights=str(vgg), checkpoint_dir=str(tmp_path / "ck"), batch_size=2, image_size=64,
                            style_size=128, max_steps=60, log_interval=1, sample_interval=60, device="cpu"))
    style_losses = [r["style"] for r in _log(tmp_path) if "style" in r]
    assert np.mean(style_losses[-10:]) < 0.5 * np.mean(style_losses[:5])
    assert (tmp_path / "ck" / "samples" / "step_000060.jpg").is_file()
    photo = tmp_path / "photo.png"
    Image.open(sorted(content.glob("*.jpg"))[0]).save(photo)
    r = run_cli("image", photo, tmp_path / "styled.png", "--style", out)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "styled.png").size == Image.open(photo).size


def test_train_help_lists_the_documented_interface():
    r = run_cli("train", "--help")
    for option in ("--content-dir", "--style-image", "--name", "--output", "--vgg-weights", "--checkpoint-dir",
                   "--resume", "--batch-size", "--image-size", "--lr", "--max-steps", "--num-workers",
                   "--content-weight", "--style-weight", "--tv-weight", "--checkpoint-interval", "--sample-interval",
                   "--log-interval", "--amp", "--device", "--seed", "--stability-weight", "--motion-weight",
                   "--video-dir", "--flow-weight", "--ema-decay"):
        assert option in r.stdout, option
    assert ROOT.is_dir() and os.environ.get("NST_VIDEO_STYLES")


def _panning_texture(i: int, height: int, width: int) -> np.ndarray:
    """Frame i of a camera panning over a smooth random texture, 2 pixels to the left per frame."""
    texture = np.random.default_rng(0).integers(0, 256, (height // 4 + 1, width // 4 + 40, 3)).astype(np.uint8)
    big = np.asarray(Image.fromarray(texture).resize((texture.shape[1] * 4, texture.shape[0] * 4),
                                                     Image.Resampling.BICUBIC))
    return np.ascontiguousarray(big[:height, 2 * i:2 * i + width])


@pytest.mark.slow
def test_flow_term_learns_from_real_video_motion_and_resumes_exactly(tiny_data, tmp_path):
    from nst_video.training.video_pairs import VideoPairs
    from tests.video_media import make_clip

    videos = tmp_path / "videos"
    (videos / "nested").mkdir(parents=True)
    make_clip(videos / "nested" / "pan.mp4", width=96, height=64, frames=10, audio=None, pictures=_panning_texture)
    (videos / "notes.txt").write_text("not a video")
    # The pairs' flow is the clip's motion: frame t-1 moved along it is frame t, where the mask trusts it.
    pairs = VideoPairs(videos, image_size=32, batch_size=4, seed=1, frame_side=96)
    assert len(pairs) == 9 and pairs.clips == ["pan.mp4"]
    prev, cur, grid, mask = pairs.batch(0)
    assert prev.shape == cur.shape == (4, 3, 32, 32) and grid.shape == (4, 32, 32, 2) and mask.shape == (4, 1, 32, 32)
    assert float(mask.mean()) > 0.6
    raw = float(((cur - prev) ** 2 * mask).sum() / mask.sum())
    warped = float(((cur - moved_by(prev, grid)) ** 2 * mask).sum() / mask.sum())
    assert warped < 0.2 * raw
    assert all(torch.equal(a, b) for a, b in zip(pairs.batch(5), pairs.batch(5), strict=True))  # of the step
    # In training: logged as its own term, recorded in the style file, and resumed bit for bit.
    flow = dict(video_dir=str(videos), flow_weight=50.0)
    straight = train(_cfg(tiny_data, tmp_path / "a", **flow))
    train(_cfg(tiny_data, tmp_path / "b", max_steps=2, **flow))
    resumed = train(_cfg(tiny_data, tmp_path / "b", max_steps=4, resume=True, **flow))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["flow"] > 0 for r in _log(tmp_path / "a") if "flow" in r] == [True] * 4
    info = load_style(straight)[0]
    assert info.training["video_clips"] == ["pan.mp4"] and info.training["video_dir"] == "videos"
    assert "video_dir" not in load_style(train(_cfg(tiny_data, tmp_path / "c", max_steps=1)))[0].training
    with pytest.raises(NstError, match="--flow-weight needs --video-dir"):
        train(_cfg(tiny_data, tmp_path / "d", flow_weight=1.0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NstError, match="no videos found"):
        train(_cfg(tiny_data, tmp_path / "e", video_dir=str(tmp_path / "empty"), flow_weight=1.0))


def test_train_bundled_resumes_an_unfinished_run_and_refuses_a_finished_one(tmp_path):
    # scripts/train_bundled.py is run again and again in 10-minute slots: each time it must pick up the last
    # checkpoint, and never "resume" a finished run (that would only write its old weights again).
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from train_bundled import resume_flag
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert resume_flag(tmp_path, 100) == []
    torch.save({"step": 40, "model": {"w": torch.zeros(1000)}}, tmp_path / "last.pt")
    assert resume_flag(tmp_path, 100) == ["--resume"]
    with pytest.raises(SystemExit, match="finished run \\(40 steps\\)"):
        resume_flag(tmp_path, 40)


def test_max_zoom_gives_crops_as_smooth_as_a_patch_of_a_large_picture(tmp_path):
    """--max-zoom: a small, sharp training photo enlarged before the crop, so the network also learns pictures
    whose detail is spread over more pixels (a fixed-norm network otherwise paints them at low contrast)."""
    from nst_video.training.data import ContentImages
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")

    def roughness(max_zoom: float) -> float:
        images = ContentImages(tmp_path, 64, 4, seed=1, max_zoom=max_zoom)
        crops = [images[step, slot][0] for step in range(4) for slot in range(4)]
        assert all(c.shape == (3, 64, 64) for c in crops)
        return float(np.mean([(c[:, :, 1:] - c[:, :, :-1]).abs().mean() for c in crops]))

    assert roughness(4.0) < 0.6 * roughness(1.0)
    # a function of (seed, step, slot): a resumed run's fresh dataset draws the same crop
    assert torch.equal(ContentImages(tmp_path, 64, 4, seed=1, max_zoom=4.0)[3, 1][0],
                       ContentImages(tmp_path, 64, 4, seed=1, max_zoom=4.0)[3, 1][0])
