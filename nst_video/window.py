"""The webcam's on-screen window (OpenCV highgui): showing frames, the text overlay, key codes, fullscreen.
All OpenCV window code lives here; the app in webcam.py only sees RGB frames and key names."""
from __future__ import annotations

import os
import re
import sys

import cv2
import numpy as np

from nst_video.errors import NstError

# waitKeyEx's codes for the arrow keys differ per highgui backend: X11 keysyms (Qt and GTK on Linux),
# Qt key codes (Qt elsewhere), Windows virtual keys shifted by 16 bits, and macOS (Cocoa) function keys.
ARROWS = {
    "left": (0xFF51, 0x1000012, 0x250000, 0xF702),
    "up": (0xFF52, 0x1000013, 0x260000, 0xF700),
    "right": (0xFF53, 0x1000014, 0x270000, 0xF703),
    "down": (0xFF54, 0x1000015, 0x280000, 0xF701),
}
KEY_NAMES = {code: name for name, codes in ARROWS.items() for code in codes}
KEY_NAMES.update({27: "esc", 32: "space", 0xFF1B: "esc", 0xFFAB: "+", 0xFFAD: "-"})  # keypad + and -

MIN_DISPLAY_HEIGHT = 480  # small processing sizes open a larger window (whole-number scale)


def key_name(code: int) -> str | None:
    """waitKeyEx's code -> 'n', '+', 'left', 'esc', ...; None for no key or one we do not know."""
    if code is None or code < 0:
        return None
    if code in KEY_NAMES:
        return KEY_NAMES[code]
    low = code & 0xFFFF  # GTK adds modifier bits above the keysym
    if low in KEY_NAMES:
        return KEY_NAMES[low]
    if 32 < low < 127:
        return chr(low).lower()
    return None


class Window:
    """Shows each view filling the window's picture area with its aspect ratio kept (letterboxed on black),
    and the overlay drawn after that scaling, at its own fixed pixel size. The window takes the view's shape
    when that changes (side by side is twice as wide), keeping its height."""

    def __init__(self, title: str, size: tuple[int, int]):
        _check_display()
        if _pyav_xcb_loaded_first():
            raise NstError("internal: PyAV was imported before OpenCV, so the window would hang; import "
                           "nst_video (it sees to the order) or cv2 before av")
        self.title = title
        self.fullscreen = False
        try:
            # FREERATIO: the backend must not letterbox or rescale by itself; each image is drawn at the size
            # of the window's picture area (see show), so it is shown pixel for pixel.
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_FREERATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as e:
            raise NstError(f"cannot open a window: {e.msg.strip() or e}") from None
        self.size = display_size(size)  # the picture area asked for, (W, H)
        self._shaped_for = tuple(size)  # the view size (W, H) the window's shape was last set for
        cv2.resizeWindow(title, *self.size)

    def show(self, view: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]] = ()) -> None:
        """Show an RGB view with the overlay `lines` (see draw_text) on top."""
        h, w = view.shape[:2]
        size = self.picture_area()
        if (w, h) != self._shaped_for and not self.fullscreen:
            self._shaped_for = (w, h)
            size = max(1, round(size[1] * w / h)), size[1]
            cv2.resizeWindow(self.title, *size)
        self.size = size
        cv2.imshow(self.title, cv2.cvtColor(compose(view, size, lines), cv2.COLOR_RGB2BGR))

    def picture_area(self) -> tuple[int, int]:
        """The size (W, H) of what the window shows now: the user may have resized it, or gone fullscreen."""
        try:
            _, _, w, h = cv2.getWindowImageRect(self.title)
        except cv2.error:  # a backend without it: the size we asked for
            w = h = 0
        return (w, h) if w > 0 and h > 0 else self.size

    def poll_key(self, wait_ms: int = 1) -> str | None:
        """Let the window process its events for `wait_ms` and return the key pressed, if any."""
        return key_name(cv2.waitKeyEx(wait_ms))

    @property
    def closed(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:  # some backends raise once the window is gone
            return True

    def toggle_fullscreen(self) -> None:
        self.fullscreen = not self.fullscreen
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN,
                              cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # lets the backend actually take the window down
        except cv2.error:
            pass


def _check_display() -> None:
    """Qt aborts the whole process when it finds no display; say so on one line instead."""
    if not sys.platform.startswith("linux") or os.environ.get("WAYLAND_DISPLAY"):
        return
    display = os.environ.get("DISPLAY", "")
    hint = "run it in a desktop session, or use --no-window --record out.mp4"
    if not display:
        raise NstError(f"no display to open a window on (DISPLAY is not set); {hint}")
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if local and not os.path.exists(f"/tmp/.X11-unix/X{local[1]}"):
        raise NstError(f"cannot connect to display {display} (no X server there); {hint}")


def _pyav_xcb_loaded_first() -> bool:
    """PyAV's and OpenCV's wheels both bundle libxcb-shm under the same name. If PyAV's copy got loaded
    (PyAV imported before cv2), Qt's X connection waits forever for a reply; better a clear error."""
    try:
        with open("/proc/self/maps") as maps:
            return any("av.libs/libxcb-shm" in line for line in maps)
    except OSError:  # not Linux
        return False


def display_size(size: tuple[int, int]) -> tuple[int, int]:
    """The window size for a processing size: small ones scaled up by a whole factor."""
    w, h = size
    scale = max(1, -(-MIN_DISPLAY_HEIGHT // h))
    return w * scale, h * scale


def compose(view: np.ndarray, size: tuple[int, int],
            lines: list[tuple[str, tuple[int, int, int]]] = ()) -> np.ndarray:
    """The image for a screen area of `size` (W, H): `view` scaled to fit with its aspect ratio kept
    (centred on black), then the overlay drawn on top at its own size, so the text is never scaled with the
    picture and reads the same in every view."""
    return draw_text(fit_into(view, size), list(lines))


def draw_text(rgb: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """Draw (text, RGB colour) lines at the top left, on a dark band so they read on any picture; a tab
    starts a second, aligned column. In place."""
    if not lines:
        return rgb
    font, scale, thickness, line_h = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1, 20

    def width(text: str) -> int:
        return cv2.getTextSize(text, font, scale, thickness)[0][0]

    rows = [(text.split("\t"), colour) for text, colour in lines]
    column = max((width(cells[0]) for cells, _ in rows if len(cells) > 1), default=0) + 16
    total = max(width(cells[0]) if len(cells) == 1 else column + width(cells[1]) for cells, _ in rows)
    band = rgb[:line_h * len(rows) + 8, :total + 16]
    band[:] = (band * 0.4).astype(np.uint8)
    for i, (cells, colour) in enumerate(rows):
        for x, text in zip((8, 8 + column), cells, strict=False):
            cv2.putText(rgb, text, (x, 18 + i * line_h), font, scale, colour, thickness, cv2.LINE_AA)
    return rgb


def fit_into(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to fit inside `size` (W, H) keeping the aspect ratio, centred on black (a recording's frame
    size is fixed, the view's is not: side by side is twice as wide). A new array, even at the same size."""
    w, h = size
    src_h, src_w = rgb.shape[:2]
    if (src_w, src_h) == (w, h):
        return rgb.copy()
    scale = min(w / src_w, h / src_h)
    fw, fh = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    canvas = np.zeros((h, w, 3), np.uint8)
    x0, y0 = (w - fw) // 2, (h - fh) // 2
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas[y0:y0 + fh, x0:x0 + fw] = cv2.resize(rgb, (fw, fh), interpolation=interpolation)
    return canvas
