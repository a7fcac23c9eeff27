"""`nst-video webcam` without a window: what each key does, recordings with real timestamps, the headless
command, and cameras that cannot be opened or go away (a clip stands in for the camera)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from nst_video import paint_size, webcam, webcam_loop
from nst_video.camera import Camera, CapturedFrame
from nst_video.errors import NstError
from nst_video.paint_size import PaintSizeController
from nst_video.styles import StyleRegistry
from nst_video.stylizer import Stylizer
from nst_video.webcam import KEYS, LOOP_COMMANDS, WebcamApp, choose_styles, load_styles
from nst_video.webcam_loop import WebcamOptions, parse_size, run_webcam
from nst_video.window import compose, display_size, fit_into
from tests.conftest import run_cli
from tests.webcam_media import FakeCapture, Session, assert_round_discs, write_clip


def decode(path: Path) -> list:
    with av.open(str(path)) as container:
        return [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


@pytest.fixture
def app(tmp_path):
    styles = load_styles(["randomstyle", "otherstyle"])
    stylizer = Stylizer(styles[0][1], device="cpu", batch_size=1)
    return WebcamApp(stylizer, styles, snapshot_dir=tmp_path / "shots")


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return CapturedFrame(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), time.monotonic(), 0)


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


def test_every_key_is_carried_out_in_one_place(app, frame):
    """KEYS is the one table: the app carries out every command but the loop's own (quit, fullscreen),
    which it hands back."""
    app.process(frame)
    for key, command in KEYS.items():
        assert app.handle_key(key) == (command if command in LOOP_COMMANDS else None), key
    assert app.handle_key("x") is None and app.handle_key(None) is None
    with pytest.raises(ValueError, match="unknown webcam command"):
        app.apply("nonsense")
    app.stop_recording()  # `r` started one


def disc_frame(size=(64, 48)) -> CapturedFrame:
    """write_clip's picture: a red disc on blue."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (20, 60, 180)
    rgb[(xx - w / 2 + 0.5) ** 2 + (yy - h / 2 + 0.5) ** 2 <= (h / 4) ** 2] = (220, 30, 30)
    return CapturedFrame(rgb, time.monotonic(), 0)


def test_side_by_side_keeps_each_pictures_aspect_and_the_overlay_its_size(app):
    """What the window shows: the view scaled into the window's picture area, then the overlay on top. A
    circle stays a circle in every view and window shape, and the text keeps its pixel size."""
    frame = disc_frame()
    app.stylizer.strength = 0.0  # the stylized half is the original too: two discs to measure
    single, _ = app.process(frame)
    app.handle_key("s")
    both, _ = app.process(frame)
    assert both.shape == (48, 128, 3)
    lines = app.overlay_lines()
    window = display_size((64, 48))
    shown = {"single": compose(single, window, lines),
             "side by side, window widened": compose(both, (2 * window[0], window[1]), lines),
             "side by side, window not widened (letterboxed)": compose(both, window, lines)}
    text_sizes = {}
    for name, image in shown.items():
        assert_round_discs(image, 1 if name == "single" else 2)
        text = np.argwhere(np.all(image > 200, axis=2))  # the overlay's white letters (nothing else is white)
        text_sizes[name] = tuple(text.max(axis=0) - text.min(axis=0))
    assert len(set(text_sizes.values())) == 1, text_sizes  # the same text at the same size everywhere
    assert_round_discs(fit_into(both, (64, 48)), 2)  # a recording letterboxes side by side, too


def test_style_picks_the_style_to_begin_with():
    assert choose_styles(None, None) == (None, 0)
    assert choose_styles(["randomstyle", "otherstyle"], None) == (["randomstyle", "otherstyle"], 0)
    assert choose_styles(["randomstyle", "otherstyle"], "otherstyle") == (["randomstyle", "otherstyle"], 1)
    assert choose_styles(["randomstyle"], "otherstyle") == (["otherstyle", "randomstyle"], 0)
    as_file = str(StyleRegistry().resolve("otherstyle"))  # a file and a name of the same style are one style
    assert choose_styles(["randomstyle", "otherstyle"], as_file) == (["randomstyle", "otherstyle"], 1)
    names, start = choose_styles(None, "otherstyle")  # no --styles: every installed one
    assert names == webcam.installed_styles(lite=False) and names[start] == "otherstyle"  # full networks
    with pytest.raises(NstError, match="unknown style 'nosuchstyle'"):
        choose_styles(["randomstyle"], "nosuchstyle")


def test_style_option_begins_with_that_style(tmp_path):
    clip = write_clip(tmp_path / "cam.mp4", frames=20, fps=10)
    r = cli_in_process("webcam", "--camera", clip, "--size", "32x24", "--style", "otherstyle", "--styles",
                       "randomstyle", "--no-window", "--max-frames", "1")
    assert r.exit_code == 0, r.stderr
    assert "webcam: style otherstyle (1/2)" in r.stderr and "style(s)" in r.stderr


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
    r = run_cli("webcam", "--camera", "7", "--no-window", "--max-frames", "1", timeout=60)  # a hang: TimeoutExpired
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("nst-video: error: cannot open camera 7")


def cli_in_process(*args):
    """The CLI in this process (no interpreter start-up): for bad input, refused before a camera runs."""
    from click.testing import CliRunner

    from nst_video.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("args, message", [
    (["--size", "640"], "--size 640: give it as WIDTHxHEIGHT"),
    (["--styles", "nosuchstyle"], "unknown style 'nosuchstyle'"),
    (["--style", "nosuchstyle"], "unknown style 'nosuchstyle'"),
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
    monkeypatch.setattr(webcam_loop, "open_camera",
                        lambda spec, size: Camera(FakeCapture(frames=3, size=size), size, "camera 0"))
    out = tmp_path / "lost.mp4"
    opts = WebcamOptions(camera=0, size=(32, 24), styles=["randomstyle"], device="cpu", record=out,
                         window=False)
    with pytest.raises(NstError, match="camera 0 stopped delivering frames"):
        run_webcam(opts)
    assert f"recording saved {out}" in capsys.readouterr().err
    assert 1 <= len(decode(out)) <= 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_finalises_the_recording_and_exits_128_plus_signal(tmp_path, signum):
    """kill, a timeout, systemd (SIGTERM) or the terminal going away (SIGHUP) end a session as q does."""
    clip = write_clip(tmp_path / "cam.mp4", frames=600, fps=10, moving=True)
    out = tmp_path / "out.mp4"
    app = Session(None, "--camera", clip, "--size", "64x48", "--styles", "randomstyle", "--no-window",
                  "--record", out)
    try:
        # Time for frames to be recorded: nothing shows how many until the file is finalised (the muxer
        # buffers 32 KB before it writes, many seconds of frames this small), and the test needs some.
        time.sleep(1.5)  # about 15 frames recorded
        app.proc.send_signal(signum)
        assert app.finish() == 128 + signum
        app.wait_for(f"webcam: recording saved {out}")
        app.wait_for("webcam: summary: ")
        app.wait_for(f"nst-video: interrupted ({signal.Signals(signum).name})")
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
    decoded = decode(out)
    assert len(decoded) >= 3 and decoded[0][1].shape == (48, 64, 3)
    assert all(b[0] > a[0] for a, b in zip(decoded, decoded[1:], strict=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.mp4", "out.mp4"]  # no temporary file left


@pytest.fixture
def lite_registry(tmp_path):
    """Two styles, one with a lite network (NAME-lite), one without."""
    from nst_video.model import build_network
    from nst_video.styles import StyleInfo, StyleRegistry, save_style
    folder = tmp_path / "lite_styles"
    for name, architecture in [("alpha", "johnson"), ("alpha-lite", "lite"), ("beta", "johnson")]:
        torch.manual_seed(len(name))
        save_style(folder / f"{name}.safetensors", build_network(architecture).state_dict(),
                   StyleInfo(name=name, architecture=architecture))
    return StyleRegistry([folder])


def test_lite_networks_are_the_default_list_on_a_cpu(lite_registry):
    from nst_video.webcam import installed_styles
    assert installed_styles(lite=True, registry=lite_registry) == ["alpha-lite", "beta"]
    assert installed_styles(lite=False, registry=lite_registry) == ["alpha", "beta"]
    # An explicit --style wins for its slot: `--style alpha` in lite mode gives alpha, not alpha-lite.
    assert choose_styles(None, "alpha", registry=lite_registry, lite=True) == (["alpha", "beta"], 0)


def test_fast_networks_first_where_the_cpu_computes_in_fp32(lite_registry, tmp_path):
    from nst_video.model import build_network
    from nst_video.styles import StyleInfo, StyleRegistry, next_network, save_style
    from nst_video.webcam import installed_styles
    folder = lite_registry.folders[0]
    save_style(folder / "beta-fast.safetensors", build_network("fast").state_dict(),
               StyleInfo(name="beta-fast", architecture="fast"))
    registry = StyleRegistry([folder])
    fp32 = ("-fast", "-lite")
    # beta has a fast network, alpha only a lite one: each style once, the fastest network it has
    assert installed_styles(lite=fp32, registry=registry) == ["alpha-lite", "beta-fast"]
    assert installed_styles(lite=("-lite",), registry=registry) == ["alpha-lite", "beta"]
    assert choose_styles(None, "beta", registry=registry, lite=fp32) == (["alpha-lite", "beta"], 1)
    names = registry.names()
    assert [next_network(n, names) for n in ("beta", "beta-fast", "alpha", "alpha-lite")] == \
        ["beta-fast", "beta", "alpha-lite", "alpha"]


def test_l_switches_between_the_lite_and_the_full_network(lite_registry, tmp_path, monkeypatch):
    monkeypatch.setattr(webcam, "FADE_SECONDS", 1e-6)  # compare the networks, not the cross-fade between them
    styles = load_styles(None, registry=lite_registry, lite=True)
    app = WebcamApp(Stylizer(styles[0][1], device="cpu", backend="torch"), styles, tmp_path, registry=lite_registry)
    frame = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    picture = CapturedFrame(frame, time.monotonic(), 0)
    assert app.style_name == "alpha-lite" and app.styles[0][0].architecture == "lite"
    lite_view = app.process(picture)[0]
    app.handle_key("l")
    assert app.style_name == "alpha" and app.styles[0][0].architecture == "johnson"
    full_view = app.process(picture)[0]
    assert np.abs(full_view.astype(int) - lite_view).mean() > 1  # another network paints it
    assert any("johnson network" in text for text, _ in app.overlay_lines())
    app.handle_key("l")
    assert app.style_name == "alpha-lite"
    app.handle_key("n")
    app.handle_key("l")  # beta has no lite network: it stays, with a message
    assert app.style_name == "beta"


def test_the_keys_overlay_names_a_key_for_every_command():
    # The overlay's list (webcam.HELP, what `h` shows) is written beside the KEYS table: a command added to
    # KEYS without a line there would be a key nobody can find.
    shown = set()
    for line in webcam.HELP:
        shown |= {key.strip().lower() for key in line.split("\t")[0].replace(",", "/").split("/")}
    for command in set(KEYS.values()) - {f"style {i}" for i in range(1, 10)}:
        assert any(key in shown for key, c in KEYS.items() if c == command), f"no key shown for {command!r}"
    assert "1 - 9" in shown  # the style numbers


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_frames(paint, seconds_at, frames, clock, interval=1 / 30):
    """Feed `frames` frames whose time depends on the current paint size; the sizes painted, in order."""
    sizes = []
    for _ in range(frames):
        sizes.append(paint.size)
        clock.now += interval
        paint.update(seconds_at(paint.size))
    return sizes


def area_cost(ms_at_full):
    """A network whose time grows with the painted area: ms_at_full at 640x480."""
    return lambda size: ms_at_full / 1000 * size[0] * size[1] / (640 * 480)


def test_paint_size_steps_down_to_hold_the_frame_rate_and_stays():
    clock = FakeClock()
    paint = PaintSizeController((640, 480), 30, clock=clock)
    assert paint.sizes == [(640, 480), (480, 360), (320, 240), (240, 180)]
    sizes = run_frames(paint, area_cost(100), 30 * 20, clock)  # 100 ms at 640x480: 320x240 takes 25 ms
    assert sizes[0] == (640, 480) and sizes[-1] == (320, 240)
    changes = [i for i in range(1, len(sizes)) if sizes[i] != sizes[i - 1]]
    assert len(changes) == 2  # down twice, then no pumping between 320x240 and 480x360 (56 ms there)
    assert all(b - a >= 2.0 * 30 for a, b in zip(changes, changes[1:], strict=False))  # one change in 2 s at most


def test_paint_size_comes_back_up_when_the_machine_is_free_again():
    clock = FakeClock()
    paint = PaintSizeController((640, 480), 30, clock=clock)
    run_frames(paint, area_cost(100), 30 * 10, clock)
    assert paint.size == (320, 240)
    run_frames(paint, area_cost(20), 30 * 60, clock)  # the other program ended: 640x480 now takes 20 ms
    assert paint.size == (640, 480)


def test_paint_size_is_full_where_the_network_keeps_up_and_pinned_where_asked():
    clock = FakeClock()
    paint = PaintSizeController((640, 480), 30, clock=clock)
    assert set(run_frames(paint, area_cost(20), 30 * 10, clock)) == {(640, 480)}
    # A network a little slower than the target (36 ms a frame: 28 fps) keeps painting at the full size
    paint = PaintSizeController((640, 480), 30, clock=clock)
    assert set(run_frames(paint, area_cost(36), 30 * 10, clock)) == {(640, 480)}
    pinned = PaintSizeController((640, 480), 30, pinned=(320, 240), clock=clock)
    assert set(run_frames(pinned, area_cost(500), 30 * 10, clock)) == {(320, 240)}
    assert pinned.describe() == "paint 320x240 -> 640x480 (pinned)"


def test_painting_smaller_keeps_the_window_size_and_the_frames_detail(app):
    rng = np.random.default_rng(1)
    rgb = np.kron(rng.integers(0, 256, (30, 40, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 320x240, sharp edges
    frame = CapturedFrame(rgb, time.monotonic(), 0)
    full, _ = app.process(frame)
    app.paint = PaintSizeController((320, 240), 30, pinned=(160, 120))
    half, _ = app.process(frame)
    assert half.shape == full.shape == rgb.shape
    assert "paint 160x120 -> 320x240" in " ".join(text for text, _ in app.overlay_lines())
    # brought back up with the frame's own edges, not a blurred small painting
    plain = np.asarray(Image.fromarray(np.asarray(Image.fromarray(half).resize((160, 120)))).resize((320, 240)))
    edges = np.abs(np.diff(rgb.astype(float).mean(2), axis=1)) > 60
    sharpness = [np.abs(np.diff(x.astype(float).mean(2), axis=1))[edges].mean() for x in (half, plain)]
    assert sharpness[0] > 1.3 * sharpness[1], sharpness


def test_the_webcam_paints_smaller_where_it_cannot_hold_the_frame_rate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "cam.mp4", frames=40)
    monkeypatch.setattr(paint_size, "CHANGE_EVERY_S", 0.0)
    monkeypatch.setattr(paint_size, "SETTLE_FRAMES", 1)
    monkeypatch.setattr(paint_size, "SLOWER", 0.0)  # every frame too slow, whatever this CPU's speed
    monkeypatch.setattr(paint_size, "UP_ROOM", 0.0)  # and no larger size ever fits
    r = cli_in_process("webcam", "--camera", "cam.mp4", "--styles", "randomstyle", "--no-window",
                       "--size", "400x300", "--max-frames", "12", "--fps", "25")
    assert r.exit_code == 0, r.output
    changes = [line for line in r.stderr.splitlines() if line.startswith("webcam: paint ")]
    assert changes[-1] == "webcam: paint 150x112 -> 400x300 (for 25 fps)", r.stderr
    assert "webcam: summary: " in r.stderr and "slow:" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--paint-size", "800x600"], "up to the window's size, --size 640x480"),
    (["--paint-size", "big"], "give it as WIDTHxHEIGHT"),
    (["--fps", "0"], "--fps"),
    (["--fps", "-5"], "--fps"),
    (["--fps", "fast"], "--fps"),
    (["--fps", "nan"], "--fps"),
    (["--precision", "int4"], "--precision"),
])
def test_bad_speed_options_are_usage_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "cam.mp4", frames=2)
    r = cli_in_process("webcam", "--camera", "cam.mp4", "--no-window", "--max-frames", "1", *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output


def test_the_webcam_starts_on_the_fast_networks_where_the_lite_ones_are_too_slow(tmp_path, monkeypatch):
    from nst_video.styles import StyleRegistry
    if "mosaic-fast" not in StyleRegistry().names():
        pytest.skip("no bundled fast network")
    stylizer = Stylizer(StyleRegistry().load("mosaic-lite")[1], device="cpu", backend="torch", batch_size=1)
    style = StyleRegistry().load("mosaic-lite")
    assert webcam_loop.too_slow(stylizer, style, (64, 48), fps=1e6)  # no network paints a frame in a microsecond
    assert not webcam_loop.too_slow(stylizer, style, (64, 48), fps=1e-3)  # nor takes 15 minutes
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "cam.mp4", frames=3)
    loaded = []
    real_load = webcam_loop.load_styles
    monkeypatch.setattr(webcam_loop, "load_styles", lambda names, **kw: loaded.append(
        [info.key for info, _ in real_load(names, **kw)]) or real_load(names, **kw))
    for too_slow, network in [(False, "mosaic-lite"), (True, "mosaic-fast")]:
        monkeypatch.setattr(webcam_loop, "too_slow", lambda *args, answer=too_slow: answer)  # this CPU aside
        loaded.clear()
        r = cli_in_process("webcam", "--camera", "cam.mp4", "--no-window", "--size", "64x48", "--max-frames", "1",
                           "--device", "cpu")
        assert r.exit_code == 0, r.output
        assert network in loaded[-1] and "mosaic" not in loaded[-1], loaded
