"""Test helpers for the webcam mode: clips that stand in for a camera, fake captures, and an X server."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np


def write_clip(path: Path, frames: int, fps: float = 10, size: tuple[int, int] = (160, 120),
               moving: bool = False) -> Path:
    """A small MPEG-4 clip: a red disc on blue; with `moving` the disc slides so frames differ."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(frames):
        bgr = np.full((h, w, 3), (180, 60, 20), np.uint8)
        x = (w // 4 + 3 * i) % w if moving else w // 2
        cv2.circle(bgr, (x, h // 2), h // 4, (30, 30, 220), -1)
        writer.write(bgr)
    writer.release()
    return path


class FakeCapture:
    """OpenCV's capture interface: numbered frames (the number in every pixel of the blue channel), then
    `after` says what happens: 'end' (read fails) or 'hang' (read blocks, like an unplugged USB camera)."""

    def __init__(self, frames: int = 10**9, after: str = "end", interval: float = 0.001,
                 size: tuple[int, int] = (32, 24)):
        self.frames, self.after, self.interval, self.size = frames, after, interval, size
        self.count = 0
        self.released = False
        self._hang = threading.Event()

    def read(self):
        if self.count >= self.frames:
            if self.after == "hang":
                self._hang.wait(60)
            return False, None
        time.sleep(self.interval)
        bgr = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        bgr[..., 0] = self.count % 256
        self.count += 1
        return True, bgr

    def release(self):
        self.released = True


@contextlib.contextmanager
def xvfb():
    """A private X server on a free display number; yields its name, e.g. ':5'."""
    if not shutil.which("Xvfb") or not shutil.which("xdotool"):
        import pytest
        pytest.skip("needs Xvfb and xdotool (apt-get install -y xvfb xdotool)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24",
                               "-nolisten", "tcp"], pass_fds=(write_fd,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:  # Xvfb writes the display number it took once it is ready
            display = pipe.readline().strip()
        assert display, "Xvfb did not start"
        yield f":{display}"
    finally:
        server.terminate()
        server.wait(10)


def close_window(window_id: int, display_name: str) -> None:
    """Ask a window to close, as a window manager's close button does (WM_DELETE_WINDOW): Xvfb has no
    window manager, and xdotool's windowclose destroys the window behind the toolkit's back instead."""

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                    ("message_type", ctypes.c_ulong), ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    name = ctypes.util.find_library("X11")
    if not name:
        import pytest
        pytest.skip("needs libX11 to send the window a close request")
    x11 = ctypes.cdll.LoadLibrary(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(XEvent)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(display_name.encode())
    assert display, f"cannot connect to {display_name}"
    event = XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = window_id
    event.xclient.message_type = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
    event.xclient.format = 32
    event.xclient.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    x11.XSendEvent(display, window_id, 0, 0, ctypes.byref(event))
    x11.XFlush(display)
    x11.XCloseDisplay(display)
