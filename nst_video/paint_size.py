"""The webcam's paint size: the network paints at a size from a ladder of fractions of the window's size,
chosen to hold a target frame rate, the way a video call lowers its resolution instead of freezing. The
painting is brought back to the window's size with the frame's own detail (Stylizer.stylize_at, guided.py).

Hysteresis, so the picture does not pump between sizes: a step down when the frames have been clearly slower
than the target for a while (below 80% of it), a step up only when the larger size is expected to fit with room
to spare (by its own recent measurement where there is one, else by its area, which overestimates: a network's
fixed costs do not grow with the area), and never two changes within CHANGE_EVERY_S."""
from __future__ import annotations

import re
import time
from typing import Callable

from nst_video.errors import NstError

LADDER = (1.0, 3 / 4, 1 / 2, 3 / 8)  # fractions of the window's width and height
CHANGE_EVERY_S = 2.0   # at most one change in this time
SETTLE_FRAMES = 4      # frames measured at a size before it is judged (the first after a change is slower)
# Step down only when frames take longer than this share of the frame time the target allows: 25-29 fps at
# the full size looks better than 30 at 3/4 of it (the strokes grow with the painting's scale: a 9.9x style
# distance at 3/4 in benchmarks/results/cpu_webcam_adaptive.txt), and a few fps short of 30 is still fluid.
SLOWER = 1.25
UP_ROOM = 0.80         # step up when the larger size is expected to take less than this share
MEMORY_S = 30.0        # a size's own measurement is trusted this long (the machine's load changes)
SMOOTHING = 0.25       # weight of each new frame in the running average of a size's frame time
# A network keeps up at a size when it alone takes at most this share of the frame time (the camera, the
# guided upsampling and the window take the rest): the webcam's and the web page's choice of lite or fast at start.
NETWORK_SHARE = 0.80


def network_keeps_up(network_seconds: float, target_fps: float) -> bool:
    return network_seconds <= NETWORK_SHARE / target_fps


def ladder_sizes(size: tuple[int, int], ladder: tuple[float, ...] = LADDER) -> list[tuple[int, int]]:
    """(W, H) for each rung, even numbers (the network pads to its multiple anyway), largest first."""
    w, h = size
    sizes: list[tuple[int, int]] = []
    for fraction in ladder:
        rung = (max(16, round(w * fraction / 2) * 2), max(16, round(h * fraction / 2) * 2))
        if rung not in sizes:
            sizes.append(rung)
    return sizes


def parse_wxh(text: str, option: str, example: str) -> tuple[int, int]:
    """WIDTHxHEIGHT as two integers (--size, --paint-size), or an NstError naming the option."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise NstError(f"{option} {text}: give it as WIDTHxHEIGHT, e.g. {example}")
    return int(match[1]), int(match[2])


def parse_paint_size(text: str, window: tuple[int, int]) -> tuple[int, int]:
    """--paint-size WxH: at least 16x16 and no larger than the window (--size)."""
    w, h = parse_wxh(text, "--paint-size", "320x240")
    if w < 16 or h < 16 or w > window[0] or h > window[1]:
        raise NstError(f"--paint-size {text}: must be from 16x16 up to the window's size, --size "
                       f"{window[0]}x{window[1]}")
    return w, h


class PaintSizeController:
    """Which size the network paints at, from the measured time of each frame (`update`)."""

    def __init__(self, size: tuple[int, int], target_fps: float, pinned: tuple[int, int] | None = None,
                 ladder: tuple[float, ...] = LADDER, clock: Callable[[], float] = time.monotonic):
        self.window = size
        self.target_fps = target_fps
        self.pinned = pinned
        self.sizes = [pinned] if pinned else ladder_sizes(size, ladder)
        self.rung = 0
        self.clock = clock
        self._changed_at = clock()
        self._frames = 0
        self._seconds: dict[int, tuple[float, float]] = {}  # rung -> (running average frame time, when)

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) the network paints at now."""
        return self.sizes[self.rung]

    def describe(self) -> str:
        w, h = self.size
        how = "pinned" if self.pinned else f"for {self.target_fps:g} fps"
        return f"paint {w}x{h} -> {self.window[0]}x{self.window[1]} ({how})"

    def update(self, frame_seconds: float) -> bool:
        """Take the time one frame took at the current size; True where the size changed for the next frame."""
        now = self.clock()
        self._frames += 1
        if self._frames == 1:  # the first frame at a size pays for its allocations: not a measure of it
            return False
        average, _ = self._seconds.get(self.rung, (frame_seconds, now))
        average = frame_seconds if self._frames == 2 else average + SMOOTHING * (frame_seconds - average)
        self._seconds[self.rung] = (average, now)
        if len(self.sizes) == 1 or self._frames <= SETTLE_FRAMES or now - self._changed_at < CHANGE_EVERY_S:
            return False
        budget = 1.0 / self.target_fps
        if average > SLOWER * budget and self.rung + 1 < len(self.sizes):
            return self._move(self.rung + 1, now)
        if self.rung > 0 and self._expected(self.rung - 1, average, now) < UP_ROOM * budget:
            return self._move(self.rung - 1, now)
        return False

    def _expected(self, rung: int, average: float, now: float) -> float:
        """A frame's time at `rung`: its own recent measurement, else this size's scaled by the area."""
        seconds, when = self._seconds.get(rung, (None, 0.0))
        if seconds is not None and now - when < MEMORY_S:
            return seconds
        (w0, h0), (w1, h1) = self.sizes[self.rung], self.sizes[rung]
        return average * (w1 * h1) / (w0 * h0)

    def _move(self, rung: int, now: float) -> bool:
        self.rung, self._changed_at, self._frames = rung, now, 0
        return True
