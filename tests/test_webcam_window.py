"""The real webcam window under Xvfb, a clip standing in for the camera, keys sent with xdotool."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.webcam_media import close_window, write_clip, xvfb


class Session:
    """`nst-video webcam` in a window; its `webcam: ...` event lines are collected as they come."""

    def __init__(self, display: str, *args):
        self.env = env = dict(os.environ, DISPLAY=display)
        self.proc = subprocess.Popen([sys.executable, "-m", "nst_video", "webcam", *map(str, args)],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines: list[str] = []
        self._seen = 0
        self._ended = False  # the app closed its stderr: no more lines will come
        self._changed = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()
        self.wait_for("webcam: ready", timeout=90)
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "^nst-video$"], env=env,
                               capture_output=True, text=True, timeout=30)
        self.window = int(found.stdout.split()[0])

    def _collect(self):
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, prefix: str, timeout: float = 30) -> str:
        """The next event line starting with `prefix` (lines before it are passed over)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for i in range(self._seen, len(self.lines)):
                    if self.lines[i].startswith(prefix):
                        self._seen = i + 1
                        return self.lines[i]
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    raise AssertionError(f"no '{prefix}' line; the app said:\n" + "\n".join(self.lines))
                self._changed.wait(min(left, 0.5))

    def key(self, name: str) -> None:
        subprocess.run(["xdotool", "key", "--window", str(self.window), name], env=self.env, check=True,
                       capture_output=True, timeout=10)

    def finish(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def display():
    with xvfb() as env:
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
