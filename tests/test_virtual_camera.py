"""`webcam --virtual-camera`: refused in one line, saying what to install, where no virtual camera exists
(everywhere: the lookup is made to find none); a real v4l2loopback device, where one is loaded, shows the
stylized frames to a program reading it as a camera."""
import errno
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nst_video import virtual_camera
from nst_video.cli import main

CLIP = Path(__file__).resolve().parent.parent / "samples" / "clips" / "bunny.mp4"


def webcam(*args):
    # camera 7 does not exist: the virtual camera's error coming first shows it is checked before the camera
    return CliRunner().invoke(main, ["webcam", "--camera", "7", "--no-window", *args])


def test_no_virtual_camera_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(virtual_camera, "loopback_devices", lambda: [])  # Linux: no v4l2loopback device
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # Windows, macOS: the extra not installed
    r = webcam("--virtual-camera")
    assert r.exit_code == 1 and r.stderr.startswith("nst-video: error: --virtual-camera"), r.output
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    if sys.platform.startswith("linux"):
        assert virtual_camera.MODPROBE in r.stderr and "v4l2loopback-dkms" in r.stderr
    else:
        assert "pip install 'nst-video[virtualcam]'" in r.stderr and "OBS" in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2loopback devices are Linux's")
@pytest.mark.parametrize("name, message", [
    ("/dev/null", "not a v4l2loopback device"),          # exists, but is no loopback camera
    ("/dev/video97", "/dev/video97: no such device"),
])
def test_a_device_that_is_not_a_loopback_camera_is_refused(name, message):
    r = webcam("--virtual-camera", name)
    assert r.exit_code == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output


def test_virtual_camera_shows_the_stylized_frames():
    devices = virtual_camera.loopback_devices()
    if not devices:
        pytest.skip("no v4l2loopback device (the kernel module is not loaded, as in CI containers: "
                    f"{virtual_camera.MODPROBE})")
    import av

    from tests.webcam_media import Session

    device = devices[0][0]
    session = Session(None, "--no-window", "--camera", CLIP, "--size", "320x180", "--paint-size", "320x180",
                      "--styles", "mosaic-lite", "--virtual-camera", device, "--max-frames", "200")
    frames = []

    def read():  # as a video-call program opens the camera, once the writer has set its format
        with av.open(device, format="v4l2") as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == 5:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    assert session.finish(120) == 0
    assert len(frames) == 5 and frames[0].shape == (180, 320, 3)
    import cv2
    capture = cv2.VideoCapture(str(CLIP))
    ok, bgr = capture.read()
    original = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert np.abs(frames[-1].astype(int) - original).mean() > 20  # stylized, not the camera's picture
    assert any(line.startswith(f"webcam: virtual camera {device} closed") for line in session.lines)


class FakeDevice:
    """Stands in for the v4l2 writer where no loopback device exists: what the session writes to it."""

    def __init__(self, device, size, fps):
        self.device, self.size, self.frames, self.closed = device, size, [], False
        FakeDevice.last = self

    def write(self, rgb, pts):
        self.frames.append((rgb.copy(), pts))

    def close(self):
        self.closed = True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the v4l2 path is Linux's")
def test_the_session_writes_every_shown_frame_to_the_device_and_releases_it(monkeypatch, capsys):
    from nst_video import webcam_loop
    from nst_video.camera import Camera
    from nst_video.webcam_loop import WebcamOptions, run_webcam
    from tests.webcam_media import FakeCapture

    monkeypatch.setattr(virtual_camera, "loopback_devices", lambda: [("/dev/video9", "nst-video")])
    monkeypatch.setattr(virtual_camera, "_V4L2Writer", FakeDevice)
    monkeypatch.setattr(webcam_loop, "open_camera",
                        lambda spec, size: Camera(FakeCapture(size=size, interval=0.02), size, "camera 0"))
    run_webcam(WebcamOptions(camera=0, size=(32, 24), styles=["randomstyle"], device="cpu", window=False,
                             max_frames=5, virtual_camera="nst-video"))  # chosen by its label
    device = FakeDevice.last
    assert device.device == "/dev/video9" and device.closed
    err = capsys.readouterr().err
    assert "virtual camera on: /dev/video9 (32x24)" in err and "virtual camera /dev/video9 closed" in err
    assert len(device.frames) + int(err.split("frames sent, ")[1].split()[0]) == 5  # written or dropped
    assert all(rgb.shape == (24, 32, 3) for rgb, _ in device.frames)
    pts = [p for _, p in device.frames]
    assert pts == sorted(pts) and pts[0] == 0  # the capture times, from the first frame


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the v4l2 path is Linux's")
@pytest.mark.parametrize("code, message", [
    (errno.EBUSY, "taken by another program"),
    (errno.EACCES, "permission denied (add yourself to the 'video' group"),
])
def test_a_device_taken_or_forbidden_is_one_line(monkeypatch, code, message):
    import av

    monkeypatch.setattr(virtual_camera, "loopback_devices", lambda: [("/dev/video9", "nst-video")])

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(av, "open", refuse)
    r = webcam("--virtual-camera")
    assert r.exit_code == 1 and f"--virtual-camera /dev/video9: {message}" in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
