"""The real webcam window under Xvfb, a clip standing in for the camera, keys sent with xdotool, what the
window shows read back from the X server."""
import signal
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from nst_video import webcam
from tests.conftest import wait_until
from tests.webcam_media import (
    Session,
    assert_round_discs,
    close_window,
    overlay_band,
    red_discs,
    window_pixels,
    write_clip,
    xvfb,
)


@pytest.fixture(scope="module")
def display():
    with xvfb("1600x900") as env:  # wide enough for a side-by-side window of 1280x480
        yield env


@pytest.fixture
def camera_clip(tmp_path) -> Path:
    # A still picture for 60 s: snapshots then differ only by the style.
    return write_clip(tmp_path / "camera.mp4", frames=600, fps=10, size=(64, 48))


def test_keys_switch_style_snapshot_record_and_quit(display, camera_clip, tmp_path):
    shots = tmp_path / "shots"
    app = Session(display, "--camera", camera_clip, "--size", "64x48", "--styles", "randomstyle,otherstyle",
                  "--snapshot-dir", shots)
    try:
        app.key("k")
        first = Path(app.wait_for("webcam: snapshot ").split(" ", 2)[2])
        app.key("n")
        app.wait_for("webcam: style otherstyle (2/2)")
        time.sleep(1.0)  # past the cross-fade, and a new frame shown
        app.key("k")
        second = Path(app.wait_for("webcam: snapshot ").split(" ", 2)[2])
        assert first.parent == second.parent == shots
        assert first.name.endswith("_randomstyle.png") and second.name.endswith("_otherstyle.png")
        a, b = (np.asarray(Image.open(p)).astype(int) for p in (first, second))
        assert a.shape == b.shape == (48, 64, 3) and np.abs(a - b).mean() > 5  # the picture changed style

        app.key("r")
        app.wait_for("webcam: recording started ")
        time.sleep(1.5)
        app.key("r")
        saved = app.wait_for("webcam: recording saved ")
        path = Path(saved.split(" ")[3])
        assert path.parent == shots and path.name.endswith("_otherstyle.mp4")
        with av.open(str(path)) as container:
            frames = [f for f in container.decode(video=0)]
        assert len(frames) >= 2 and (frames[0].width, frames[0].height) == (64, 48)
        assert 0.5 < frames[-1].time < 5  # real timestamps: about the 1.5 s it ran

        app.key("q")
        assert app.finish() == 0
        app.wait_for("webcam: quit")
        app.wait_for("webcam: summary: ")
    finally:
        if app.proc.poll() is None:
            app.proc.kill()


def test_arrow_keys_and_closing_the_window_quits(display, camera_clip, tmp_path):
    app = Session(display, "--camera", camera_clip, "--size", "64x48", "--styles", "randomstyle,otherstyle",
                  "--snapshot-dir", tmp_path)
    try:
        app.key("Right")
        app.wait_for("webcam: style otherstyle")
        app.key("Left")
        app.wait_for("webcam: style randomstyle")
        close_window(app.window, display)
        assert app.finish() == 0
        app.wait_for("webcam: window closed")
    finally:
        if app.proc.poll() is None:
            app.proc.kill()


def test_side_by_side_widens_the_window_keeping_shapes_and_text_size(display, camera_clip, tmp_path):
    """Side by side, each picture keeps its aspect ratio (the window grows twice as wide) and the overlay
    keeps its pixel size: read back from the screen."""
    app = Session(display, "--camera", camera_clip, "--size", "64x48", "--styles", "randomstyle",
                  "--strength", "0", "--snapshot-dir", tmp_path)  # strength 0: the stylized half shows the disc

    def shot(name: str, shows) -> np.ndarray:
        """The window's pixels once `shows(pixels)` holds: the view the keys asked for is on the screen."""
        pixels = None

        def shown():
            nonlocal pixels
            pixels = window_pixels(app.window, display)
            return shows(pixels)
        try:
            wait_until(shown, f"the window to show {name}", timeout=30, poll=0.05)
        finally:
            Image.fromarray(pixels).save(tmp_path / f"{name}.png")  # to look at when it fails
        return pixels

    def band_height(pixels) -> int:
        try:
            return overlay_band(pixels)[1]
        except AssertionError:  # no band drawn yet
            return 0

    try:
        single = shot("single", lambda p: p.shape == (480, 640, 3) and len(red_discs(p)) == 1)
        app.key("h")  # the key list: its widest line is a fixed one, so the band's size is known
        single_keys = shot("single-keys", lambda p: band_height(p) > band_height(single))
        app.key("s")
        app.wait_for("webcam: side by side on")
        both_keys = shot("side-by-side-keys", lambda p: p.shape == (480, 1280, 3) and band_height(p) > 0)
        app.key("h")
        app.key("h")  # the short overlay again: the key list covers part of the left disc
        both = shot("side-by-side", lambda p: p.shape == (480, 1280, 3) and 0 < band_height(p) < band_height(both_keys))
        app.key("q")
        assert app.finish() == 0
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
    assert single.shape == single_keys.shape == (480, 640, 3)
    assert both.shape == both_keys.shape == (480, 1280, 3)
    assert_round_discs(single, 1)
    assert_round_discs(both, 2)
    assert overlay_band(single_keys) == overlay_band(both_keys)
    # 4 status lines (style, status, network, paint size) and the key list, 20 pixels a line, in both views
    assert overlay_band(both_keys)[1] == 20 * (4 + len(webcam.HELP)) + 8


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_in_a_window_finalises_the_recording(display, camera_clip, tmp_path, signum):
    out = tmp_path / "out.mp4"
    app = Session(display, "--camera", camera_clip, "--size", "64x48", "--styles", "randomstyle",
                  "--record", out, "--snapshot-dir", tmp_path)
    try:
        time.sleep(1.5)  # frames recorded meanwhile (none show before the file is finalised: test_webcam.py)
        app.proc.send_signal(signum)
        assert app.finish() == 128 + signum
        app.wait_for(f"webcam: recording saved {out}")
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) >= 3 and (frames[0].width, frames[0].height) == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["camera.mp4", "out.mp4"]
