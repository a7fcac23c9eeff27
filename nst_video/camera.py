"""The camera: a capture thread that keeps only the newest frame, so the app always stylizes what the camera
sees now instead of working through a queue of stale frames when the network is slower than the camera.

All OpenCV capture code lives here. A video file or a URL can stand in for a camera (tests, demos, servers);
a file is played at its own frame rate, as a live camera would deliver it."""
from __future__ import annotations

import contextlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nst_video.errors import NstError

OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000
FIRST_FRAME_TIMEOUT_S = 10.0  # opening a USB camera or a stream can take a few seconds
STALL_TIMEOUT_S = 5.0  # a camera that sends nothing for this long has gone (unplugged, stream dropped)


@dataclass
class CapturedFrame:
    """One picture from the camera, with when it was taken."""

    rgb: np.ndarray  # (H, W, 3) uint8 at the processing size
    captured: float  # time.monotonic() when the camera delivered it
    index: int  # counts every frame the camera delivered: gaps are stale frames that were dropped


class CameraStopped(Exception):
    """The camera delivers no more frames. `ended` is True for the normal end of a video file."""

    def __init__(self, message: str, ended: bool = False):
        super().__init__(message)
        self.ended = ended


def parse_camera(spec: str) -> int | str:
    """`0`, `1`, ... are device indices; anything else is a video file or a URL."""
    spec = str(spec).strip()
    return int(spec) if spec.isdigit() else spec


def is_url(spec: int | str) -> bool:
    return isinstance(spec, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) is not None


def open_camera(spec: int | str, size: tuple[int, int]) -> "Camera":
    """Open a device index, a video file or a URL, or raise NstError saying why not. Not started yet."""
    if isinstance(spec, str) and not is_url(spec) and not Path(spec).exists():  # /dev/video2 is fine too
        raise NstError(f"camera source not found: {spec} "
                       "(give a device index such as 0, a video file or a URL)")
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS,
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
    # OpenCV logs each backend it tries on a missing device; the user gets our one line instead.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        capture = cv2.VideoCapture(spec, cv2.CAP_ANY, params)
        if capture.isOpened() and isinstance(spec, int):
            # A hint only: the camera picks its nearest mode, and Camera crops and scales to `size` anyway.
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        if isinstance(spec, int):
            raise NstError(f"cannot open camera {spec}: no such device, or another program is using it "
                           "(try another --camera index, or a video file or URL)")
        raise NstError(f"cannot open {spec} as a camera: not a readable video file or stream")
    paced_fps = None
    if isinstance(spec, str) and Path(spec).is_file():
        fps = capture.get(cv2.CAP_PROP_FPS)
        paced_fps = fps if 0 < fps <= 240 else 30.0
    name = f"camera {spec}" if isinstance(spec, int) else str(spec)
    return Camera(capture, size, name, paced_fps=paced_fps, is_file=paced_fps is not None)


class Camera:
    """Reads `capture` (anything with OpenCV's read() -> (ok, BGR image) and release()) on a thread.

    `read()` hands over the newest frame not yet handed over; frames the app had no time for are dropped."""

    def __init__(self, capture, size: tuple[int, int], name: str, paced_fps: float | None = None,
                 is_file: bool = False, stall_timeout: float = STALL_TIMEOUT_S,
                 first_frame_timeout: float = FIRST_FRAME_TIMEOUT_S):
        self.capture, self.size, self.name = capture, size, name
        self.paced_fps, self.is_file = paced_fps, is_file
        self.stall_timeout, self.first_frame_timeout = stall_timeout, first_frame_timeout
        self.dropped = 0
        self._latest: CapturedFrame | None = None
        self._last_index = -1
        self._last_arrival: float | None = None
        self._stopped: CameraStopped | None = None
        self._quit = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)

    @property
    def rate(self) -> float | None:
        """Frames a second the camera delivers (a file: its own rate), where it says; None where it does not."""
        if self.paced_fps:
            return self.paced_fps
        try:
            fps = float(self.capture.get(cv2.CAP_PROP_FPS))
        except Exception:  # stand-ins without get(); a driver that cannot tell
            return None
        return fps if 1 <= fps <= 240 else None

    def start(self) -> "Camera":
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __enter__(self) -> "Camera":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, timeout: float = 0.05) -> CapturedFrame | None:
        """The newest frame not yet read, waiting up to `timeout` s for one; None if none came in that time.
        Raises CameraStopped once the camera has ended, failed, or sent nothing for `stall_timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._latest is None:
                if self._stopped is not None:
                    raise self._stopped
                now = time.monotonic()
                self._check_stall(now)
                if now >= deadline:
                    return None
                self._changed.wait(min(deadline - now, 0.1))
            frame, self._latest = self._latest, None
            return frame

    def _check_stall(self, now: float) -> None:
        if self._last_arrival is None:
            if now - self._started > self.first_frame_timeout:
                raise CameraStopped(f"{self.name} delivered no frame in {self.first_frame_timeout:.0f} s")
        elif now - self._last_arrival > self.stall_timeout:
            raise CameraStopped(f"{self.name} stopped delivering frames "
                                f"(none for {self.stall_timeout:.0f} s); was it unplugged?")

    def close(self) -> None:
        self._quit.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=1.0)
        if not self._thread.is_alive():  # never release a capture another thread is blocked in
            with contextlib.suppress(Exception):
                self.capture.release()

    def _run(self) -> None:
        count = 0
        try:
            while not self._quit.is_set():
                ok, bgr = self.capture.read()
                if not ok or bgr is None:
                    if self.is_file:
                        self._stop(CameraStopped(f"end of {self.name}", ended=True))
                    else:
                        self._stop(CameraStopped(f"{self.name} stopped delivering frames; was it unplugged?"))
                    return
                if self.paced_fps:
                    self._quit.wait(self._started + count / self.paced_fps - time.monotonic())
                frame = CapturedFrame(to_rgb(bgr, self.size), time.monotonic(), count)
                count += 1
                with self._changed:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest, self._last_arrival = frame, frame.captured
                    self._changed.notify_all()
        except Exception as e:  # a driver or decoder error ends the stream like an unplugged camera
            self._stop(CameraStopped(f"{self.name} failed: {type(e).__name__}: {e}"))

    def _stop(self, stopped: CameraStopped) -> None:
        with self._changed:
            self._stopped = stopped
            self._changed.notify_all()


def to_rgb(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV's BGR (or grey) image -> RGB uint8 at exactly `size` (W, H): centre-cropped to its aspect
    ratio first, so nothing is stretched."""
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    elif bgr.shape[2] == 4:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_BGRA2BGR)
    w, h = size
    src_h, src_w = bgr.shape[:2]
    if (src_w, src_h) != (w, h):
        if src_w * h > w * src_h:  # too wide: crop the sides
            crop_w = max(1, round(src_h * w / h))
            x0 = (src_w - crop_w) // 2
            bgr = bgr[:, x0:x0 + crop_w]
        elif src_w * h < w * src_h:  # too tall: crop top and bottom
            crop_h = max(1, round(src_w * h / w))
            y0 = (src_h - crop_h) // 2
            bgr = bgr[y0:y0 + crop_h]
        shrinking = bgr.shape[1] > w
        bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
