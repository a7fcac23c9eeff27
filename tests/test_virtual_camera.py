"""`webcam --virtual-camera`: refused in one line, saying what to install, where no virtual camera exists
(everywhere: the lookup is made to find none); a real v4l2loopback device, where one is loaded, shows the
stylized frames to a program reading it as a camera."""
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
