"""`nst-video webcam`, the session's state: the styles, what each key does, the recording, the statistics.
No camera, window or thread in here (webcam_loop.py runs camera -> WebcamApp -> window / recording), so it
tests alone.

Every chosen style is loaded onto the device at start, so switching is instant (a 0.3 s cross-fade hides
the cut). Events (style changes, snapshots, recordings) are reported as `webcam: ...` lines on stderr."""
from __future__ import annotations

import re
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from nst_video import report
from nst_video.camera import CapturedFrame
from nst_video.errors import NstError
from nst_video.images import save_image
from nst_video.model import TransformerNet
from nst_video.paint_size import PaintSizeController
from nst_video.styles import StyleInfo, StyleRegistry, base_name, next_network, one_per_style
from nst_video.stylizer import Stylizer
from nst_video.temporal import TemporalBlender
from nst_video.video_io import VideoSink
from nst_video.window import fit_into

FADE_SECONDS = 0.3
STRENGTH_STEP = 0.1
TEMPORAL_WEIGHT = 0.5  # what `t` switches temporal blending to when --temporal does not say

# The one table of what each key does: key name (see window.key_name) -> command. The loop carries out
# LOOP_COMMANDS itself (they concern the window); WebcamApp.apply carries out every other one.
KEYS = {
    "n": "next", "right": "next", "down": "next",
    "p": "previous", "left": "previous", "up": "previous",
    **{str(i): f"style {i}" for i in range(1, 10)},
    "space": "original", "s": "side by side",
    "+": "stronger", "=": "stronger", "-": "weaker", "_": "weaker",
    "c": "colours", "t": "temporal", "k": "snapshot", "r": "record", "h": "overlay", "l": "network",
    "v": "live outputs",
    "f": "fullscreen", "q": "quit", "esc": "quit",
}
LOOP_COMMANDS = {"fullscreen", "quit"}
HELP = [
    "n / p, arrows\tnext / previous style",
    "1 - 9\tstyle by number",
    "space\toriginal / stylized",
    "s\tside by side",
    "+ / -\tstrength",
    "c\tpreserve colours",
    "t\ttemporal blending",
    "l\tnetwork: full / lite / fast",
    "k\tsnapshot (PNG)",
    "r\tstart / stop recording",
    "v\tvirtual camera / stream: pause / go on",
    "f\tfullscreen",
    "h\toverlay: keys / off / on",
    "q / Esc\tquit",
]


def command_for(key: str | None) -> str | None:
    return KEYS.get(key) if key is not None else None


def log(message: str) -> None:
    report.event("webcam", message)


def installed_styles(lite: bool | tuple[str, ...], registry: StyleRegistry | None = None) -> list[str]:
    """Every installed style once, as its first network of `lite` that exists (styles.one_per_style), else as
    the full one."""
    return one_per_style((registry or StyleRegistry()).names(), lite)


def load_styles(names: list[str] | None, registry: StyleRegistry | None = None, lite: bool | tuple[str, ...] = False
                ) -> list[tuple[StyleInfo, TransformerNet]]:
    registry = registry or StyleRegistry()
    if not names:
        names = installed_styles(lite, registry)
        if not names:
            raise NstError("no styles installed; train one with `nst-video train` "
                           "or pass --styles FILE.safetensors")
    return [registry.load(name) for name in names]


def choose_styles(names: list[str] | None, start: str | None, registry: StyleRegistry | None = None,
                  lite: bool | tuple[str, ...] = False) -> tuple[list[str] | None, int]:
    """The styles to cycle through (None: every installed one) and the index of the one to begin with:
    `--style` (`start`) is found in `--styles`, or put first where it is not among them."""
    if start is None:
        return names, 0
    registry = registry or StyleRegistry()
    names = list(names) if names else installed_styles(lite, registry)
    wanted = registry.resolve(start).resolve()  # an unknown --style is an error here, before any loading
    for i, name in enumerate(names):
        if registry.resolve(name).resolve() == wanted:
            return names, i
    same = [i for i, name in enumerate(names) if base_name(name) == base_name(start)]
    if same:  # `--style mosaic` where the list holds mosaic-lite: the user's choice wins
        i = same[0]
        return [*names[:i], start, *names[i + 1:]], i
    return [start, *names], 0


def timestamped(folder: Path, style: str, suffix: str) -> Path:
    """e.g. nst-video_20250101-120000-123_mosaic.png: sorts by time, says which style, never overwrites."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    safe_style = re.sub(r"[^\w.-]+", "-", style)
    path = folder / f"nst-video_{stamp}_{safe_style}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"nst-video_{stamp}_{safe_style}-{n}{suffix}"
    return path


class Recorder:
    """One recording: frames stamped with their real capture times (ms ticks, variable frame rate, so the
    file plays at the speed it was filmed however fast the network ran). The view can change size while
    recording (side by side); frames are fitted into the size of the first one."""

    def __init__(self, path: Path, size: tuple[int, int]):
        self.path, self.size = Path(path), size
        # veryfast: the encoder runs in the live loop and must not slow it down
        self.sink = VideoSink(self.path, size[0], size[1], time_base=Fraction(1, 1000), preset="veryfast")
        self.start: float | None = None

    def write(self, rgb: np.ndarray, captured: float) -> None:
        if self.start is None:
            self.start = captured
        if rgb.shape[1::-1] != self.size:
            rgb = fit_into(rgb, self.size)
        self.sink.write(rgb, round((captured - self.start) * 1000))  # the sink moves a repeated pts on by 1

    def close(self) -> str:
        """Finalise the file; says what was saved (a recording without frames is not kept)."""
        self.sink.close()
        if not self.sink.frames_written:
            return f"recording discarded (no frames): {self.path}"
        return (f"recording saved {self.path} ({self.sink.frames_written} frames, "
                f"{self.sink.end_pts / 1000:.1f} s)")


class Stats:
    """FPS and latency (camera capture -> frame shown or recorded): smoothed for the overlay, averaged for
    the summary."""

    def __init__(self):
        self.frames = 0
        self.first_done: float | None = None
        self.last_done = 0.0
        self.latency_sum = self.network_sum = 0.0
        self.fps = self.latency_ms = 0.0

    def add(self, frame: CapturedFrame, network_s: float) -> None:
        done = time.monotonic()
        latency = done - frame.captured
        if self.frames:
            rate = 1.0 / max(done - self.last_done, 1e-6)
            self.fps = rate if self.frames == 1 else 0.9 * self.fps + 0.1 * rate
            self.latency_ms = 0.9 * self.latency_ms + 100 * latency
        else:
            self.first_done, self.latency_ms = done, 1000 * latency
        self.frames += 1
        self.last_done = done
        self.latency_sum += latency
        self.network_sum += network_s

    def summary(self, dropped: int) -> str:
        if not self.frames:
            return "no frames processed"
        span = self.last_done - self.first_done
        fps = f"{(self.frames - 1) / span:.2f} fps" if self.frames > 1 and span > 0 else "fps n/a"
        latency, network = 1000 * self.latency_sum / self.frames, 1000 * self.network_sum / self.frames
        return (f"{self.frames} frames, {fps} average, latency {latency:.0f} ms (camera to screen or file), "
                f"network {network:.0f} ms/frame, {dropped} stale camera frames dropped")


class WebcamApp:
    """The live session's state and what each key does; no window or camera in here, so it tests alone."""

    def __init__(self, stylizer: Stylizer, styles: list[tuple[StyleInfo, TransformerNet]],
                 snapshot_dir: Path = Path("."), temporal_weight: float = 0.0, start: int = 0,
                 registry: StyleRegistry | None = None, paint: PaintSizeController | None = None):
        self.stylizer, self.snapshot_dir = stylizer, Path(snapshot_dir)
        self.paint = paint  # None: the network paints at the frame's own size
        self.registry = registry or StyleRegistry()
        self._other_networks: dict[str, tuple[StyleInfo, TransformerNet]] = {}  # loaded by `l`, kept
        self.styles = []
        for info, model in styles:  # moves every model onto the device once: switching is then instant
            stylizer.set_model(model)
            self.styles.append((info, stylizer.model))
        self.temporal_weight = temporal_weight or TEMPORAL_WEIGHT
        self.temporal = TemporalBlender(weight=temporal_weight)
        self.show_original = self.side_by_side = False
        self.overlay = 1  # 0 off, 1 status line, 2 status + keys
        self.recorder: Recorder | None = None
        self.outputs: list = []  # live outputs (--stream, --virtual-camera): send(view, captured), close()
        self.outputs_on = True  # `v` pauses them (the call keeps the last frame) and lets them go on
        self.stats = Stats()
        self._last_styled: np.ndarray | None = None
        self._fade_from: np.ndarray | None = None
        self._fade_start = 0.0
        self._view: np.ndarray | None = None
        self.index = -1
        self.select(start, fade=False)

    @property
    def style_name(self) -> str:
        return self.styles[self.index][0].key

    def select(self, index: int, fade: bool = True) -> None:
        index %= len(self.styles)
        if index == self.index:
            return
        if fade and self._last_styled is not None:
            self._fade_from, self._fade_start = self._last_styled, time.monotonic()
        self.index = index
        self.stylizer.set_model(self.styles[index][1])
        self.temporal.reset()  # blending the new style with the old one's history would smear it
        log(f"style {self.style_name} ({index + 1}/{len(self.styles)})")

    def switch_network(self) -> None:
        """The current style's next installed network (full -> lite -> fast -> full: styles.next_network),
        loaded the first time it is asked for (a short pause, once), then kept."""
        name = next_network(self.style_name, self.registry.names())
        if name is None:
            log(f"no other network is installed for {self.style_name}")
            return
        if name not in self._other_networks:
            info, model = self.registry.load(name)
            self.stylizer.set_model(model)
            self._other_networks[name] = (info, self.stylizer.model)
        self._other_networks[self.style_name] = self.styles[self.index]
        self.styles[self.index] = self._other_networks[name]
        current, self.index = self.index, -1  # select() applies a style only when the index changes
        self.select(current)

    def handle_key(self, key: str | None) -> str | None:
        """Act on a key (see KEYS); returns the command if it is the loop's ('quit', 'fullscreen')."""
        return self.apply(command_for(key))

    def apply(self, command: str | None) -> str | None:
        """Carry out a command from KEYS; the loop's own (LOOP_COMMANDS) are returned for it to carry out."""
        if command is None or command in LOOP_COMMANDS:
            return command
        if command == "next":
            self.select(self.index + 1)
        elif command == "previous":
            self.select(self.index - 1)
        elif command.startswith("style "):
            number = int(command.removeprefix("style "))
            if number <= len(self.styles):
                self.select(number - 1)
        elif command == "original":
            self.show_original = not self.show_original
            self.temporal.reset()
            log("showing the original" if self.show_original else "showing the stylized picture")
        elif command == "side by side":
            self.side_by_side = not self.side_by_side
            log(f"side by side {'on' if self.side_by_side else 'off'}")
        elif command in ("stronger", "weaker"):
            step = STRENGTH_STEP if command == "stronger" else -STRENGTH_STEP
            self.stylizer.strength = round(min(1.0, max(0.0, self.stylizer.strength + step)), 2)
            log(f"strength {self.stylizer.strength:.1f}")
        elif command == "colours":
            self.stylizer.preserve_color = not self.stylizer.preserve_color
            log(f"preserve colours {'on' if self.stylizer.preserve_color else 'off'}")
        elif command == "temporal":
            self.temporal.weight = 0.0 if self.temporal.weight else self.temporal_weight
            self.temporal.reset()
            log(f"temporal blending {self.temporal.weight:.2f}" if self.temporal.weight
                else "temporal blending off")
        elif command == "snapshot":
            self.snapshot()
        elif command == "record":
            self.toggle_recording()
        elif command == "overlay":
            self.overlay = (self.overlay + 1) % 3
        elif command == "live outputs":
            if not self.outputs:
                log("no live outputs: start with --virtual-camera or --stream URL")
            else:
                self.outputs_on = not self.outputs_on
                log(f"virtual camera / stream {'on' if self.outputs_on else 'paused'}")
        elif command == "network":
            self.switch_network()
        else:
            raise ValueError(f"unknown webcam command {command!r}")
        return None

    def process(self, frame: CapturedFrame) -> tuple[np.ndarray, float]:
        """The view to show and record (no overlay), and the seconds spent in the network."""
        network = 0.0
        styled = None
        if self.side_by_side or not self.show_original:
            self.temporal.prepare(frame.rgb)  # its optical flow, on the blender's thread, while the network works
            start = time.monotonic()
            paint = self.paint.size[::-1] if self.paint else frame.rgb.shape[:2]  # (h, w)
            styled = self.stylizer.stylize_at(self.temporal.stabilize(frame.rgb), paint)
            network = time.monotonic() - start
            styled = self.temporal(frame.rgb, styled)
            self._last_styled = styled
            styled = self._cross_fade(styled)
        if self.side_by_side:
            view = np.concatenate([frame.rgb, styled], axis=1)
        else:
            view = frame.rgb if self.show_original else styled
        self._view = view
        return view, network

    def frame_done(self, seconds: float) -> None:
        """The time a frame took from the camera to the window: the paint size follows it."""
        if self.paint and self.paint.update(seconds):
            log(self.paint.describe())

    def _cross_fade(self, styled: np.ndarray) -> np.ndarray:
        if self._fade_from is None:
            return styled
        done = (time.monotonic() - self._fade_start) / FADE_SECONDS
        if done >= 1.0 or self._fade_from.shape != styled.shape:
            self._fade_from = None
            return styled
        mixed = self._fade_from.astype(np.float32) * (1.0 - done) + styled.astype(np.float32) * done
        return mixed.round().astype(np.uint8)

    def overlay_lines(self) -> list[tuple[str, tuple[int, int, int]]]:
        if self.overlay == 0:
            return []
        white, red = (255, 255, 255), (255, 60, 60)
        info = self.styles[self.index][0]
        title = info.title or info.name
        status = f"{self.stats.fps:.1f} fps  {self.stats.latency_ms:.0f} ms"
        flags = [f"strength {self.stylizer.strength:.1f}" if self.stylizer.strength < 1 else "",
                 "colours kept" if self.stylizer.preserve_color else "",
                 f"temporal {self.temporal.weight:.2f}" if self.temporal.weight else "",
                 "ORIGINAL" if self.show_original and not self.side_by_side else ""]
        lines = [(f"{self.index + 1}/{len(self.styles)} {title}", white),
                 ("  ".join([status, *filter(None, flags)]), white),
                 (f"{info.architecture} network on {self.stylizer.backend}", white)]
        if self.paint:
            lines.append((self.paint.describe(), white))
        if self.recorder:
            lines.append(("REC " + self.recorder.path.name, red))
        if self.outputs:  # what other programs see: on, or paused by `v`
            names = ", ".join(output.name.split("?")[0] for output in self.outputs)
            lines.append((f"LIVE {names}" if self.outputs_on else f"LIVE paused (v): {names}", red))
        lines += [(text, white) for text in HELP] if self.overlay == 2 else [("h: keys", white)]
        return lines

    def snapshot(self) -> Path | None:
        if self._view is None:
            log("snapshot: no frame yet")
            return None
        try:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            path = timestamped(self.snapshot_dir, self.style_name, ".png")
            save_image(path, self._view)
        except (NstError, OSError) as e:  # a failed snapshot must not end the live session
            log(f"snapshot failed: {e}")
            return None
        log(f"snapshot {path}")
        return path

    def toggle_recording(self) -> None:
        try:
            if self.recorder:
                self.stop_recording()
                return
            if self._view is None:
                raise NstError("no frame yet")
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            self.start_recording(timestamped(self.snapshot_dir, self.style_name, ".mp4"),
                                 self._view.shape[1::-1])
        except (NstError, OSError) as e:  # like a snapshot: report it, keep the session running
            log(f"recording failed: {e}")

    def start_recording(self, path: Path, size: tuple[int, int]) -> None:
        self.recorder = Recorder(path, size)
        log(f"recording started {path}")

    def record(self, view: np.ndarray, captured: float) -> None:
        if self.recorder:
            self.recorder.write(view, captured)

    def stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        log(recorder.close())
