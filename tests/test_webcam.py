"""`nst-video webcam` without a window: what each key does, recordings with real timestamps, the headless
command, and cameras that cannot be opened or go away (a clip stands in for the camera)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from nst_video import webcam
from nst_video.camera import Camera, Frame
from nst_video.errors import NstError
from nst_video.stylizer import Stylizer
from nst_video.webcam import WebcamApp, WebcamOptions, load_styles, parse_size, run_webcam
from tests.conftest import run_cli
from tests.webcam_media import FakeCapture, write_clip


def decode(path: Path) -> list:
    with av.open(str(path)) as container:
        return [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


@pytest.fixture
def app(tmp_path):
    styles = load_styles(["randomstyle", "otherstyle"])
    stylizer = Stylizer(styles[0][1], device="cpu", batch_size=1, info=styles[0][0])
    return WebcamApp(stylizer, styles, snapshot_dir=tmp_path / "shots")


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return Frame(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), time.monotonic(), 0)


def test_style_keys(app):
    assert app.style_name == "randomstyle"
    for key, expected in [("n", "otherstyle"), ("n", "randomstyle"), ("p", "otherstyle"),
                          ("left", "randomstyle"), ("right", "otherstyle"), ("1", "randomstyle"),
                          ("2", "otherstyle"), ("9", "otherstyle")]:
        app.handle_key(key)
        assert app.style_name == expected, key
    assert app.stylizer.model is app.styles[1][1]  # switching uses the model already on the device


def test_view_keys_and_settings(app, frame):
    styled, _ = app.process(frame)
    assert styled.shape == frame.rgb.shape and np.abs(styled.astype(int) - frame.rgb).mean() > 5
    app.handle_key("space")
    original, network = app.process(frame)
    assert np.array_equal(original, frame.rgb) and network == 0  # no network pass for the original
    app.handle_key("s")
    both, _ = app.process(frame)
    assert both.shape == (24, 64, 3) and np.array_equal(both[:, :32], frame.rgb)
    app.handle_key("-")
    app.handle_key("-")
    assert app.stylizer.strength == pytest.approx(0.8)
    for _ in range(5):
        app.handle_key("+")
    assert app.stylizer.strength == 1.0
    app.handle_key("c")
    assert app.stylizer.preserve_color
    app.handle_key("t")
    assert app.temporal.weight > 0
    app.handle_key("t")
    assert app.temporal.weight == 0
    assert app.handle_key("q") == "quit" and app.handle_key("esc") == "quit"
    assert app.handle_key("f") == "fullscreen"
    assert app.handle_key("h") is None and app.overlay == 2
    assert any("snapshot" in text for text, _ in app.overlay_lines())  # the key list is shown


def test_switching_cross_fades_from_the_old_style(app, frame, monkeypatch):
    old, _ = app.process(frame)
    app.handle_key("n")
    monkeypatch.setattr(webcam, "FADE_SECONDS", 1e-6)  # already over
    new, _ = app.process(frame)
    app.handle_key("p")
    assert np.array_equal(app.process(frame)[0], old)  # the fade is over: exactly the old style again
    app.handle_key("n")
    monkeypatch.setattr(webcam, "FADE_SECONDS", 1000)  # the fade has barely begun
    fading, _ = app.process(frame)
    to_old = np.abs(fading.astype(int) - old).mean()
    to_new = np.abs(fading.astype(int) - new).mean()
    assert np.abs(new.astype(int) - old).mean() > 5 and to_old < 2 < to_new


def test_snapshot_is_the_view_named_with_time_and_style(app, frame):
    view, _ = app.process(frame)
    first, second = app.snapshot(), app.snapshot()
    assert first != second and first.parent == app.snapshot_dir
    assert first.name.startswith("nst-video_") and first.name.endswith("_randomstyle.png")
    assert np.array_equal(np.asarray(Image.open(first)), view)


def test_recording_keeps_the_real_capture_times(app, frame, tmp_path):
    app.process(frame)
    app.handle_key("r")
    assert app.recorder is not None
    t0 = time.monotonic()
    times = [0.0, 0.1, 0.35, 0.4, 1.0]  # an uneven rate, as when the network is slower than the camera
    for t in times:
        view, _ = app.process(frame)
        app.record(view, t0 + t)
    path = app.recorder.path
    app.handle_key("r")
    assert app.recorder is None and path.is_file() and path.name.endswith("_randomstyle.mp4")
    decoded = decode(path)
    assert [round(t, 3) for t, _ in decoded] == times
    assert decoded[0][1].shape == (24, 32, 3)


def test_parse_size():
    assert parse_size("640x480") == (640, 480) and parse_size("160X120") == (160, 120)
    for bad in ("640", "641x480", "8x8", "axb"):
        with pytest.raises(NstError):
            parse_size(bad)


def test_headless_record_with_max_frames(tmp_path):
    clip = write_clip(tmp_path / "cam.mp4", frames=100, fps=10, moving=True)
    out = tmp_path / "out.mp4"
    r = run_cli("webcam", "--camera", clip, "--size", "64x48", "--styles", "randomstyle", "--no-window",
                "--record", out, "--max-frames", "4", timeout=120)
    assert r.returncode == 0, r.stderr
    decoded = decode(out)
    assert len(decoded) == 4 and decoded[0][1].shape == (48, 64, 3)
    assert all(b[0] > a[0] for a, b in zip(decoded, decoded[1:], strict=False))
    assert "summary: 4 frames" in r.stderr and "fps average" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.mp4", "out.mp4"]  # no temporary file left


def test_clip_ending_finishes_cleanly_with_the_recording_playable(tmp_path):
    clip = write_clip(tmp_path / "cam.mp4", frames=6, fps=10, moving=True)
    out = tmp_path / "out.mp4"
    r = run_cli("webcam", "--camera", clip, "--size", "64x48", "--styles", "randomstyle", "--no-window",
                "--record", out, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"end of {clip}" in r.stderr and "recording saved" in r.stderr
    assert len(decode(out)) >= 1


def test_camera_that_cannot_be_opened_is_one_line_and_exit_1():
    start = time.monotonic()
    r = run_cli("webcam", "--camera", "7", "--no-window", "--max-frames", "1", timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("nst-video: error: cannot open camera 7")
    assert time.monotonic() - start < 60


def cli_in_process(*args):
    """The CLI in this process (no interpreter start-up): for bad input, refused before a camera runs."""
    from click.testing import CliRunner

    from nst_video.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("args, message", [
    (["--size", "640"], "--size 640: give it as WIDTHxHEIGHT"),
    (["--styles", "nosuchstyle"], "unknown style 'nosuchstyle'"),
    (["--camera", "missing.mp4"], "camera source not found: missing.mp4"),
    (["--record", "cam.mp4"], "is the camera input; refusing to overwrite it"),
])
def test_bad_input_is_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    clip = write_clip(tmp_path / "cam.mp4", frames=2)
    before = clip.read_bytes()
    r = cli_in_process("webcam", "--camera", "cam.mp4", "--no-window", "--max-frames", "1", *args)
    assert r.exit_code == 1 and r.stderr.startswith("nst-video: error: ") and message in r.stderr, r.stderr
    assert clip.read_bytes() == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the DISPLAY check is for X11/Wayland")
def test_no_display_is_a_clear_error_not_a_crash(tmp_path):
    clip = write_clip(tmp_path / "cam.mp4", frames=2)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    command = [sys.executable, "-m", "nst_video", "webcam", "--camera", str(clip), "--styles", "randomstyle",
               "--size", "32x32", "--record", tmp_path / "out.mp4"]
    r = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "no display to open a window on" in r.stderr and "--no-window" in r.stderr
    r = subprocess.run(command, capture_output=True, text=True, env=dict(env, DISPLAY=":2999"), timeout=60)
    assert r.returncode == 1 and "cannot connect to display :2999" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.mp4"]  # no recording begun


def test_camera_lost_mid_run_is_an_error_with_the_recording_finalised(tmp_path, monkeypatch, capsys):
    """A live camera (not a file) that stops delivering: one message, and what was recorded is kept."""
    monkeypatch.setattr(webcam, "open_camera",
                        lambda spec, size: Camera(FakeCapture(frames=3, size=size), size, "camera 0"))
    out = tmp_path / "lost.mp4"
    opts = WebcamOptions(camera=0, size=(32, 24), styles=["randomstyle"], device="cpu", record=out,
                         window=False)
    with pytest.raises(NstError, match="camera 0 stopped delivering frames"):
        run_webcam(opts)
    assert f"recording saved {out}" in capsys.readouterr().err
    assert 1 <= len(decode(out)) <= 3
