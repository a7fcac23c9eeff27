"""Test helpers for the webcam mode: clips that stand in for a camera, fake captures, and an X server."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
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


def red_discs(rgb: np.ndarray, min_area: int = 20) -> list[tuple[int, int, int, int]]:
    """The bounding boxes (x, y, w, h) of the red discs of write_clip's pictures, left to right."""
    red = ((rgb[..., 0] > 150) & (rgb[..., 2] < 110)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(red)
    boxes = [tuple(int(v) for v in stats[i, :4]) for i in range(1, count) if stats[i, 4] >= min_area]
    return sorted(boxes)


def assert_round_discs(rgb: np.ndarray, count: int) -> None:
    """`count` red discs, each as wide as it is high: nothing squeezed or stretched."""
    discs = red_discs(rgb)
    assert len(discs) == count, discs
    assert all(abs(w / h - 1) < 0.06 for _, _, w, h in discs), discs


def overlay_band(rgb: np.ndarray) -> tuple[int, int]:
    """The size (w, h) of the overlay's dark band, at the top left, over write_clip's blue background."""
    dark = (rgb[..., 2] < 120) & (rgb[..., 0] < 100) & (rgb[..., 2] > 30)  # darkened blue, not black bars
    rows, cols = np.flatnonzero(dark[:, 0]), np.flatnonzero(dark[0])
    assert rows.size and cols.size, "no overlay band at the top left"
    return int(cols.max()) + 1, int(rows.max()) + 1


class FakeCapture:
    """OpenCV's capture interface: numbered frames (the number in every pixel of the blue channel), then
    `after` says what happens: 'end' (read fails) or 'hang' (read blocks, like an unplugged USB camera)."""

    def __init__(self, frames: int = 10**9, after: str = "end", interval: float = 0.001,
                 size: tuple[int, int] = (32, 24)):
        self.frames, self.after, self.interval, self.size = frames, after, interval, size
        self.count = 0  # frames delivered; the camera publishes each before it asks for the next
        self.exhausted = False  # asked for a frame after the last one
        self.released = False
        self._hang = threading.Event()

    def read(self):
        if self.count >= self.frames:
            self.exhausted = True
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


class Session:
    """`nst-video webcam` in a subprocess, in a window on `display` (None: with --no-window); its
    `webcam: ...` event lines are collected as they come."""

    def __init__(self, display: str | None, *args):
        self.env = env = dict(os.environ, DISPLAY=display) if display else dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, "-m", "nst_video", "webcam", *map(str, args)],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines: list[str] = []
        self._seen = 0
        self._ended = False  # the app closed its stderr: no more lines will come
        self._changed = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()
        self.wait_for("webcam: ready", timeout=90)
        self.window = None
        if display is None:
            return
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


@contextlib.contextmanager
def xvfb(screen: str = "1024x768"):
    """A private X server on a free display number; yields its name, e.g. ':5'."""
    if not shutil.which("Xvfb") or not shutil.which("xdotool"):
        import pytest
        pytest.skip("needs Xvfb and xdotool (apt-get install -y xvfb xdotool)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{screen}x24",
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


def _libx11(why: str):
    name = ctypes.util.find_library("X11")
    if not name:
        import pytest
        pytest.skip(f"needs libX11 {why}")
    x11 = ctypes.cdll.LoadLibrary(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    return x11


def window_pixels(window_id: int, display_name: str) -> np.ndarray:
    """What a window shows on the screen, as RGB (H, W, 3) uint8, read back from the X server (Xvfb keeps
    every window's pixels: it has no compositor)."""

    class XImage(ctypes.Structure):  # the leading fields of Xlib's XImage
        _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int),
                    ("format", ctypes.c_int), ("data", ctypes.c_void_p), ("byte_order", ctypes.c_int),
                    ("bitmap_unit", ctypes.c_int), ("bitmap_bit_order", ctypes.c_int),
                    ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int), ("bytes_per_line", ctypes.c_int),
                    ("bits_per_pixel", ctypes.c_int), ("red_mask", ctypes.c_ulong),
                    ("green_mask", ctypes.c_ulong), ("blue_mask", ctypes.c_ulong)]

    x11 = _libx11("to read the window's pixels")
    c_uint, c_int, ref = ctypes.c_uint, ctypes.c_int, ctypes.byref
    x11.XGetGeometry.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong)] + \
        [ctypes.POINTER(c_int)] * 2 + [ctypes.POINTER(c_uint)] * 4
    x11.XGetImage.restype = ctypes.POINTER(XImage)
    x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, c_int, c_int, c_uint, c_uint, ctypes.c_ulong,
                              c_int]
    x11.XFree.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(display_name.encode())
    assert display, f"cannot connect to {display_name}"
    try:
        root, x, y = ctypes.c_ulong(), c_int(), c_int()
        w, h, border, depth = c_uint(), c_uint(), c_uint(), c_uint()
        assert x11.XGetGeometry(display, window_id, ref(root), ref(x), ref(y), ref(w), ref(h), ref(border),
                                ref(depth))
        image = x11.XGetImage(display, window_id, 0, 0, w.value, h.value, 0xFFFFFFFF, 2)  # 2: ZPixmap
        assert image, "XGetImage failed (is the window mapped?)"
        im = image.contents
        assert im.bits_per_pixel == 32 and im.byte_order == 0, "expected Xvfb's 24-bit BGRX pixels"
        raw = ctypes.string_at(im.data, im.bytes_per_line * im.height)
        pixels = np.frombuffer(raw, np.uint8).reshape(im.height, im.bytes_per_line // 4, 4)
        rgb = pixels[:, :im.width, 2::-1].copy()  # BGRX -> RGB
        x11.XFree(im.data)
        x11.XFree(ctypes.cast(image, ctypes.c_void_p))
        return rgb
    finally:
        x11.XCloseDisplay(display)


def close_window(window_id: int, display_name: str) -> None:
    """Ask a window to close, as a window manager's close button does (WM_DELETE_WINDOW): Xvfb has no
    window manager, and xdotool's windowclose destroys the window behind the toolkit's back instead."""

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                    ("message_type", ctypes.c_ulong), ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    x11 = _libx11("to send the window a close request")
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
