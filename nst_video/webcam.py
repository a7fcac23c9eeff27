"""`nst-video webcam`: the live loop. Camera (newest frame) -> Stylizer -> Temporal -> window / recording.

Every chosen style is loaded onto the device at start, so switching is instant (a 0.3 s cross-fade hides
the cut). Events (style changes, snapshots, recordings) are logged as `webcam: ...` lines on stderr."""
from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

# camera (and so cv2) before anything that imports PyAV: both wheels bundle libxcb-shm under the same name,
# and with PyAV's copy loaded first OpenCV's Qt window hangs forever while connecting to the X server.
from nst_video.camera import Camera, CameraStopped, Frame, open_camera  # isort: skip
from nst_video.errors import NstError
from nst_video.images import save_image
from nst_video.model import TransformerNet
from nst_video.styles import StyleInfo, StyleRegistry
from nst_video.stylizer import Stylizer
from nst_video.temporal import TemporalBlender
from nst_video.video_io import VideoSink
from nst_video.window import Window, draw_text, fit_into, for_display

FADE_SECONDS = 0.3
STRENGTH_STEP = 0.1
TEMPORAL_WEIGHT = 0.5  # what `t` switches temporal blending to when --temporal does not say
HELP = [
    "n / p, arrows\tnext / previous style",
    "1 - 9\tstyle by number",
    "space\toriginal / stylized",
    "s\tside by side",
    "+ / -\tstrength",
    "c\tpreserve colours",
    "t\ttemporal blending",
    "k\tsnapshot (PNG)",
    "r\tstart / stop recording",
    "f\tfullscreen",
    "h\toverlay: keys / off / on",
    "q / Esc\tquit",
]


def log(message: str) -> None:
    print(f"webcam: {message}", file=sys.stderr, flush=True)


@dataclass
class WebcamOptions:
    camera: int | str = 0
    size: tuple[int, int] = (640, 480)
    styles: list[str] | None = None  # None: every installed style
    device: str = "auto"
    fp16: bool = False
    strength: float = 1.0
    preserve_color: bool = False
    temporal: float = 0.0  # 0: off at start (`t` turns it on at TEMPORAL_WEIGHT)
    record: Path | None = None
    snapshot_dir: Path = field(default_factory=Path)
    window: bool = True
    max_frames: int | None = None


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise NstError(f"--size {text}: give it as WIDTHxHEIGHT, e.g. 640x480")
    w, h = int(match[1]), int(match[2])
    if not (16 <= w <= 7680 and 16 <= h <= 4320) or w % 2 or h % 2:
        raise NstError(f"--size {text}: width and height must be even numbers from 16 to 7680x4320 "
                       "(video encoders need even sizes)")
    return w, h


def load_styles(names: list[str] | None, registry: StyleRegistry | None = None
                ) -> list[tuple[StyleInfo, TransformerNet]]:
    registry = registry or StyleRegistry()
    if not names:
        names = registry.names()
        if not names:
            raise NstError("no styles installed; train one with `nst-video train` "
                           "or pass --styles FILE.safetensors")
    return [registry.load(name) for name in names]


def style_label(info: StyleInfo) -> str:
    return Path(info.path).name.removesuffix(".safetensors") if info.path else info.name


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

    def add(self, frame: Frame, network_s: float) -> None:
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
                 snapshot_dir: Path = Path("."), temporal_weight: float = 0.0):
        self.stylizer, self.snapshot_dir = stylizer, Path(snapshot_dir)
        self.styles = []
        for info, model in styles:  # moves every model onto the device once: switching is then instant
            stylizer.set_model(model, info)
            self.styles.append((info, stylizer.model))
        self.temporal_weight = temporal_weight or TEMPORAL_WEIGHT
        self.temporal = TemporalBlender(weight=temporal_weight)
        self.show_original = self.side_by_side = False
        self.overlay = 1  # 0 off, 1 status line, 2 status + keys
        self.recorder: Recorder | None = None
        self.stats = Stats()
        self._last_styled: np.ndarray | None = None
        self._fade_from: np.ndarray | None = None
        self._fade_start = 0.0
        self._view: np.ndarray | None = None
        self.index = -1
        self.select(0, fade=False)

    @property
    def style_name(self) -> str:
        return style_label(self.styles[self.index][0])

    def select(self, index: int, fade: bool = True) -> None:
        index %= len(self.styles)
        if index == self.index:
            return
        if fade and self._last_styled is not None:
            self._fade_from, self._fade_start = self._last_styled, time.monotonic()
        self.index = index
        self.stylizer.set_model(self.styles[index][1], self.styles[index][0])
        self.temporal.reset()  # blending the new style with the old one's history would smear it
        log(f"style {self.style_name} ({index + 1}/{len(self.styles)})")

    def handle_key(self, key: str | None) -> str | None:
        """Act on a key; returns 'quit' or 'fullscreen' for the loop (the window is not the app's)."""
        if key in ("q", "esc"):
            return "quit"
        if key == "f":
            return "fullscreen"
        if key in ("n", "right", "down"):
            self.select(self.index + 1)
        elif key in ("p", "left", "up"):
            self.select(self.index - 1)
        elif key is not None and len(key) == 1 and key in "123456789" and int(key) <= len(self.styles):
            self.select(int(key) - 1)
        elif key == "space":
            self.show_original = not self.show_original
            self.temporal.reset()
            log("showing the original" if self.show_original else "showing the stylized picture")
        elif key == "s":
            self.side_by_side = not self.side_by_side
            log(f"side by side {'on' if self.side_by_side else 'off'}")
        elif key in ("+", "=", "-", "_"):
            step = STRENGTH_STEP if key in ("+", "=") else -STRENGTH_STEP
            self.stylizer.strength = round(min(1.0, max(0.0, self.stylizer.strength + step)), 2)
            log(f"strength {self.stylizer.strength:.1f}")
        elif key == "c":
            self.stylizer.preserve_color = not self.stylizer.preserve_color
            log(f"preserve colours {'on' if self.stylizer.preserve_color else 'off'}")
        elif key == "t":
            self.temporal.weight = 0.0 if self.temporal.weight else self.temporal_weight
            self.temporal.reset()
            log(f"temporal blending {self.temporal.weight:.2f}" if self.temporal.weight
                else "temporal blending off")
        elif key == "k":
            self.snapshot()
        elif key == "r":
            self.toggle_recording()
        elif key == "h":
            self.overlay = (self.overlay + 1) % 3
        return None

    def process(self, frame: Frame) -> tuple[np.ndarray, float]:
        """The view to show and record (no overlay), and the seconds spent in the network."""
        network = 0.0
        styled = None
        if self.side_by_side or not self.show_original:
            start = time.monotonic()
            styled = self.stylizer.stylize([frame.rgb])[0]
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
                 ("  ".join([status, *filter(None, flags)]), white)]
        if self.recorder:
            lines.append(("REC " + self.recorder.path.name, red))
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


def run_webcam(opts: WebcamOptions) -> None:
    """Run the live session until q/Esc, the window closing, --max-frames, or the camera stopping.
    The end of a video file standing in for the camera is a normal end; a lost camera is an error."""
    if opts.record and isinstance(opts.camera, str) and os.path.exists(opts.camera) \
            and os.path.realpath(opts.record) == os.path.realpath(opts.camera):
        raise NstError(f"--record {opts.record} is the camera input; refusing to overwrite it")
    camera = open_camera(opts.camera, opts.size)  # first: a missing camera is reported before slow loading
    window = app = None
    try:
        styles = load_styles(opts.styles)
        stylizer = Stylizer(styles[0][1], device=opts.device, fp16=opts.fp16, strength=opts.strength,
                            preserve_color=opts.preserve_color, batch_size=1, info=styles[0][0])
        app = WebcamApp(stylizer, styles, opts.snapshot_dir, opts.temporal)
        # The first pass is slow (allocation; cuDNN picks its kernels): take it now, not on the first frame.
        stylizer.stylize([np.zeros((opts.size[1], opts.size[0], 3), np.uint8)])
        if opts.window:
            window = Window("nst-video", opts.size)
        if opts.record:
            app.start_recording(Path(opts.record), opts.size)
        log(f"ready: {camera.name} at {opts.size[0]}x{opts.size[1]}, {len(app.styles)} style(s) on "
            f"{stylizer.device}{'; press h for keys' if window else ''}")
        stopped = live_loop(app, camera.start(), window, opts.max_frames)
    finally:
        camera.close()
        if app:
            # However the session ends (an error, Ctrl-C), the frames recorded so far are real footage:
            # finalise the file rather than throw it away.
            app.stop_recording()
            log(f"summary: {app.stats.summary(camera.dropped)}")
        if window:
            window.close()
    if stopped is not None:
        if not stopped.ended:
            raise NstError(str(stopped))
        log(str(stopped))


def live_loop(app: WebcamApp, camera: Camera, window: Window | None,
              max_frames: int | None) -> CameraStopped | None:
    """Run until the user quits, --max-frames, or the camera stops (then return why it stopped).

    With a window, the network runs on a worker thread and this (the GUI) thread only shows frames and reads
    keys: the window stays responsive and no key is lost, even when a frame takes a second on a CPU."""
    stop = threading.Event()
    if window is None:
        return process_frames(app, camera, max_frames, stop)
    keys: queue.SimpleQueue[str] = queue.SimpleQueue()
    shown = Handoff()
    outcome: dict = {}

    def worker():
        try:
            outcome["stopped"] = process_frames(app, camera, max_frames, stop, keys, shown.put)
        except BaseException as e:  # re-raised on the GUI thread
            outcome["error"] = e

    thread = threading.Thread(target=worker, name="stylize", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            image = shown.take()
            if image is not None:
                window.show(image)
            key = window.poll_key(10)
            if key in ("q", "esc"):
                log("quit")
                break
            if key == "f":
                window.toggle_fullscreen()
            elif key is not None:
                keys.put(key)
            if window.closed:
                log("window closed")
                break
    finally:
        stop.set()
        thread.join()  # the worker owns the recording: let it finish its frame before the file is closed
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("stopped")


def process_frames(app: WebcamApp, camera: Camera, max_frames: int | None, stop: threading.Event,
                   keys: queue.SimpleQueue | None = None, show=None) -> CameraStopped | None:
    """Newest camera frame -> stylize -> record -> `show` (with the overlay); keys act between frames."""
    while not stop.is_set():
        while keys is not None and not keys.empty():
            app.handle_key(keys.get())
        try:
            frame = camera.read(timeout=0.05)
        except CameraStopped as e:
            return e
        if frame is None:
            continue
        view, network = app.process(frame)
        app.record(view, frame.captured)
        if show is not None:
            show(draw_text(for_display(view), app.overlay_lines()))
        app.stats.add(frame, network)
        if max_frames and app.stats.frames >= max_frames:
            return None
    return None


class Handoff:
    """The newest image from the worker for the GUI thread; older ones are simply replaced."""

    def __init__(self):
        self._lock = threading.Lock()
        self._image = None

    def put(self, image: np.ndarray) -> None:
        with self._lock:
            self._image = image

    def take(self) -> np.ndarray | None:
        with self._lock:
            image, self._image = self._image, None
        return image
