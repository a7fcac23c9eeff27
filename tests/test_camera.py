"""The capture thread: newest-frame handoff, files standing in for cameras, cameras that end, fail or hang.
The tests wait for what the camera did (FakeCapture's counts), never for a fixed time."""
import threading
import time

import numpy as np
import pytest

from nst_video.camera import Camera, CameraStopped, open_camera, parse_camera, to_rgb
from nst_video.errors import NstError
from tests.conftest import wait_until
from tests.webcam_media import FakeCapture, write_clip


def test_to_rgb_centre_crops_to_the_aspect_scales_and_swaps_channels():
    bgr = np.zeros((100, 200, 3), np.uint8)  # 2:1, asked for 1:1 -> only the middle 100 columns remain
    bgr[:, :50] = (255, 0, 0)  # blue, cropped away
    bgr[:, 50:150] = (0, 0, 255)  # red in BGR
    bgr[:, 150:] = (0, 255, 0)  # green, cropped away
    rgb = to_rgb(bgr, (40, 40))
    assert rgb.shape == (40, 40, 3) and rgb.dtype == np.uint8
    assert (rgb == (255, 0, 0)).all()
    grey = to_rgb(np.full((30, 40), 77, np.uint8), (40, 30))
    assert grey.shape == (30, 40, 3) and (grey == 77).all()


def test_parse_camera():
    assert parse_camera("0") == 0 and parse_camera(" 2 ") == 2
    assert parse_camera("clip.mp4") == "clip.mp4" and parse_camera("rtsp://host/x") == "rtsp://host/x"


def test_read_hands_over_the_newest_frame_and_drops_stale_ones():
    capture = FakeCapture(interval=0.002)
    with Camera(capture, (32, 24), "fake") as camera:
        indices = []
        for _ in range(5):
            delivered = capture.count  # frame delivered - 1 is published or being converted
            frame = camera.read(timeout=2)
            assert frame is not None
            indices.append(frame.index)
            assert frame.index >= delivered - 2  # the newest, not one from a queue
            assert frame.rgb[..., 2].max() == frame.index % 256  # the pixels belong to that frame
            # a slow network: the camera runs ahead meanwhile, two frames past this one published
            wait_until(lambda ahead=frame.index + 4: capture.count >= ahead, "the camera to deliver more frames")
    assert indices == sorted(set(indices))
    assert min(np.diff(indices)) > 1 and camera.dropped > 0
    assert capture.released


def test_each_frame_is_handed_over_once():
    with Camera(FakeCapture(frames=1), (32, 24), "fake", is_file=True) as camera:
        assert camera.read(timeout=2).index == 0
        with pytest.raises(CameraStopped):  # not the same frame again: the camera ended
            camera.read(timeout=2)


def test_end_of_file_delivers_the_last_frame_then_stops_as_ended():
    capture = FakeCapture(frames=3, interval=0)
    with Camera(capture, (32, 24), "clip.mp4", is_file=True) as camera:
        wait_until(lambda: capture.exhausted, "the clip to end")  # its three frames are published by then
        assert camera.read(timeout=2).index == 2
        with pytest.raises(CameraStopped) as stopped:
            camera.read(timeout=2)
    assert stopped.value.ended and "end of clip.mp4" in str(stopped.value)


def test_live_camera_failing_is_an_error_not_an_end():
    with Camera(FakeCapture(frames=2), (32, 24), "camera 0") as camera:
        with pytest.raises(CameraStopped) as stopped:
            while True:
                camera.read(timeout=2)
    assert not stopped.value.ended and "camera 0 stopped delivering frames" in str(stopped.value)


def test_a_hanging_camera_is_reported_and_close_does_not_hang():
    capture = FakeCapture(frames=2, after="hang")
    camera = Camera(capture, (32, 24), "camera 0", stall_timeout=0.3).start()
    with pytest.raises(CameraStopped) as stopped:
        while True:  # read() raises once nothing came for stall_timeout
            camera.read(timeout=0.05)
    assert not stopped.value.ended and "none for" in str(stopped.value)
    closing = threading.Thread(target=camera.close)
    closing.start()
    closing.join(timeout=60)  # close() gives the blocked thread up (a second): a hang would stay here
    assert not closing.is_alive()
    assert not capture.released  # never released under a thread still blocked in it


def test_a_camera_that_never_delivers_is_reported():
    capture = FakeCapture(frames=0, after="hang")
    camera = Camera(capture, (32, 24), "camera 3", first_frame_timeout=0.3).start()
    with pytest.raises(CameraStopped, match="camera 3 delivered no frame"):
        while True:
            camera.read(timeout=0.05)
    camera.close()


def test_a_file_stands_in_for_a_camera_at_its_own_frame_rate(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=8, fps=20, size=(96, 64))
    camera = open_camera(str(clip), (48, 48))
    assert camera.is_file and camera.paced_fps == pytest.approx(20)
    opened = time.monotonic()
    frames = []
    with camera:
        with pytest.raises(CameraStopped) as stopped:
            while True:
                frame = camera.read(timeout=2)
                if frame is not None:
                    frames.append(frame)
    assert stopped.value.ended
    # played like a live camera, not as fast as it decodes: frame 7 is not delivered before its time, 7/20 s in
    # (a lower bound: a busy machine only makes it later)
    assert frames[-1].captured - opened >= 7 / 20 * 0.9
    assert frames and all(f.rgb.shape == (48, 48, 3) for f in frames)
    assert frames[-1].index == 7  # the newest frame is always delivered, including the last one
    centre = frames[0].rgb[24, 24].astype(int)
    assert centre[0] > 150 and centre[2] < 100  # the red disc: channels are RGB


def test_open_camera_errors(tmp_path):
    with pytest.raises(NstError, match="cannot open camera 97"):
        open_camera(97, (64, 48))
    with pytest.raises(NstError, match="camera source not found"):
        open_camera(str(tmp_path / "missing.mp4"), (64, 48))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(NstError, match="cannot open .*junk.mp4 as a camera"):
        open_camera(str(junk), (64, 48))
