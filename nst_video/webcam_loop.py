"""`nst-video webcam`, the live loop: camera (newest frame) -> WebcamApp (stylize, record) -> window.

The session's state and what each key does are webcam.py's; this runs it: opening the camera and the
window, the worker thread, and ending (q/Esc, the window closing, --max-frames, the camera stopping, or a
stop signal), with the recording finalised however it ends."""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nst_video import signals
from nst_video.camera import Camera, CameraStopped, open_camera
from nst_video.errors import NstError
from nst_video.paint_size import PaintSizeController, network_keeps_up, parse_wxh
from nst_video.styles import FAST_SUFFIX, LITE_SUFFIX
from nst_video.stylizer import Stylizer, pick_device
from nst_video.webcam import WebcamApp, choose_styles, command_for, installed_styles, load_styles, log
from nst_video.window import Window

MAX_TARGET_FPS = 30.0  # what the paint size aims for by default, at most: beyond it a bigger paint pays more


@dataclass
class WebcamOptions:
    camera: int | str = 0
    size: tuple[int, int] = (640, 480)
    styles: list[str] | None = None  # to cycle through; None: every installed style
    style: str | None = None  # the one to begin with (put first if not among `styles`); None: the first
    device: str = "auto"
    fp16: bool = False
    backend: str = "auto"
    threads: int | None = None
    full: bool = False  # full networks even on a CPU (default there: the lite ones, where installed)
    strength: float = 1.0
    preserve_color: bool = False
    temporal: float = 0.0  # 0: off at start (`t` turns it on at TEMPORAL_WEIGHT)
    record: Path | None = None
    snapshot_dir: Path = field(default_factory=Path)
    window: bool = True
    max_frames: int | None = None
    precision: str = "auto"
    fps: float | None = None  # the frame rate the paint size is chosen to hold; None: the camera's, at most 30
    paint_size: tuple[int, int] | None = None  # pins the network's paint size (W, H); None: adaptive
    stream: str | None = None  # --stream URL: the shown frames as a live stream (stream_out.py)
    virtual_camera: str | None = None  # --virtual-camera: "auto" or a device (virtual_camera.py)


def parse_size(text: str) -> tuple[int, int]:
    w, h = parse_wxh(text, "--size", "640x480")
    if not (16 <= w <= 7680 and 16 <= h <= 4320) or w % 2 or h % 2:
        raise NstError(f"--size {text}: width and height must be even numbers from 16 to 7680x4320 "
                       "(video encoders need even sizes)")
    return w, h


def run_webcam(opts: WebcamOptions) -> None:
    """Run the live session until q/Esc, the window closing, --max-frames, or the camera stopping.
    The end of a video file standing in for the camera is a normal end; a lost camera is an error.

    A stop signal (Ctrl-C, SIGTERM, SIGHUP) once the session runs ends it between two frames as q does, the
    recording finalised, and is then raised as signals.Interrupted (exit status 128 + the signal); a second
    one stops at once. While starting (loading styles) a signal stops at once: there is nothing to keep."""
    if opts.record and isinstance(opts.camera, str) and os.path.exists(opts.camera) \
            and os.path.realpath(opts.record) == os.path.realpath(opts.camera):
        raise NstError(f"--record {opts.record} is the camera input; refusing to overwrite it")
    outputs = open_outputs(opts)  # before the camera: a bad --stream URL or server is reported first
    try:
        camera = open_camera(opts.camera, opts.size)  # first: a missing camera is reported before slow loading
    except BaseException:
        close_outputs(outputs)
        raise
    try:
        app, window = start_session(opts, camera_fps=camera.rate)
    except BaseException:
        camera.close()
        close_outputs(outputs)
        raise
    stop = threading.Event()
    with signals.StopFlag(on_request=lambda signum: stop.set()) as stop_signal:
        try:
            if opts.record:
                app.start_recording(Path(opts.record), opts.size)
            app.outputs = outputs
            log(f"ready: {camera.name} at {opts.size[0]}x{opts.size[1]}, {len(app.styles)} style(s) on "
                f"{app.stylizer.backend}; {app.paint.describe()}{'; press h for keys' if window else ''}")
            stopped = live_loop(app, camera.start(), window, opts.max_frames, stop)
        finally:  # still under the StopFlag: a first stop signal now cannot cut the recording short
            camera.close()
            # However the session ends (an error, a stop signal), the frames recorded so far are real
            # footage: finalise the file rather than throw it away.
            app.stop_recording()
            close_outputs(outputs)  # the stream ended properly, the device released
            log(f"summary: {app.stats.summary(camera.dropped)}; {app.paint.describe()}")
            if window:
                window.close()
    if stop_signal:
        raise signals.Interrupted(stop_signal.requested)
    if stopped is not None:
        if not stopped.ended:
            raise NstError(str(stopped))
        log(str(stopped))


def open_outputs(opts: WebcamOptions) -> list:
    """The live outputs (--virtual-camera, --stream), open and ready for frames; NstError where one cannot be."""
    outputs = []
    try:
        if opts.virtual_camera:
            from nst_video.virtual_camera import open_virtual_camera
            outputs.append(open_virtual_camera(opts.virtual_camera, opts.size, fps=opts.fps or 30.0, on_event=log))
        if opts.stream:
            from nst_video.stream_out import StreamOutput, check_stream_url
            outputs.append(StreamOutput(check_stream_url(opts.stream), opts.size, on_event=log))
    except BaseException:
        close_outputs(outputs)
        raise
    return outputs


def close_outputs(outputs: list) -> None:
    for output in outputs:
        log(output.close())


def start_session(opts: WebcamOptions, camera_fps: float | None = None) -> tuple[WebcamApp, Window | None]:
    """Every style loaded onto the device, the network warmed up, and the window (if any) open."""
    target_fps = opts.fps or min(MAX_TARGET_FPS, camera_fps or MAX_TARGET_FPS)
    paint = PaintSizeController(opts.size, target_fps, pinned=opts.paint_size)
    # On a CPU the distilled networks are the default (the full ones are a slide show there): the lite ones
    # where they keep the frame rate at the full size, else the fast ones (a quarter of lite's work; on a CPU
    # without AMX/AVX512-BF16, or a slow one), the paint size doing the rest (docs/webcam.md).
    cpu = not opts.full and pick_device(opts.device).type == "cpu"
    lite: tuple[str, ...] = (LITE_SUFFIX,) if cpu else ()
    names, start = choose_styles(opts.styles, opts.style, lite=lite)
    styles = load_styles(names, lite=lite)
    stylizer = Stylizer(styles[start][1], device=opts.device, fp16=opts.fp16, strength=opts.strength,
                        preserve_color=opts.preserve_color, batch_size=1, backend=opts.backend,
                        threads=opts.threads, precision=opts.precision)
    fastest = (FAST_SUFFIX, LITE_SUFFIX)
    if cpu and opts.styles is None and installed_styles(fastest) != installed_styles(lite) \
            and too_slow(stylizer, styles[start], opts.size, target_fps):
        names, start = choose_styles(installed_styles(fastest), opts.style, lite=fastest)
        styles = load_styles(names, lite=fastest)
        stylizer.set_model(styles[start][1])
    app = WebcamApp(stylizer, styles, opts.snapshot_dir, opts.temporal, start=start, paint=paint)
    # The first pass at each size is slow (allocation; cuDNN picks its kernels): take them now, not live.
    black = np.zeros((opts.size[1], opts.size[0], 3), np.uint8)
    for w, h in paint.sizes:
        stylizer.stylize_at(black, (h, w))
    return app, Window("nst-video", opts.size) if opts.window else None


def too_slow(stylizer: Stylizer, style, size: tuple[int, int], fps: float, frames: int = 3) -> bool:
    """Whether `style`'s network does not keep up (paint_size.network_keeps_up) at the full `size` (timed after a
    warm-up pass; said in one line where it does not)."""
    info, model = style
    stylizer.set_model(model)
    black = np.zeros((size[1], size[0], 3), np.uint8)
    stylizer.stylize([black])
    started = time.monotonic()
    for _ in range(frames):
        stylizer.stylize([black])
    seconds = (time.monotonic() - started) / frames
    if network_keeps_up(seconds, fps):
        return False
    log(f"{info.key} takes {1000 * seconds:.0f} ms a {size[0]}x{size[1]} frame on {stylizer.backend}, more than "
        f"{fps:g} fps allows: the fast networks where installed")
    return True


def live_loop(app: WebcamApp, camera: Camera, window: Window | None, max_frames: int | None,
              stop: threading.Event) -> CameraStopped | None:
    """Run until the user quits, --max-frames, `stop` is set, or the camera stops (then return why).

    With a window, the network runs on a worker thread and this (the GUI) thread only shows frames and reads
    keys: the window stays responsive and no key is lost, even when a frame takes a second on a CPU. The
    window's own commands (quit, fullscreen) are carried out here at once; the app's go to the worker, which
    owns the app's state, and are carried out between frames."""
    if window is None:
        return process_frames(app, camera, max_frames, stop)
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()
    shown = Handoff()
    outcome: dict = {}

    def worker():
        try:
            outcome["stopped"] = process_frames(app, camera, max_frames, stop, commands, shown.put)
        except BaseException as e:  # re-raised on the GUI thread
            outcome["error"] = e

    thread = threading.Thread(target=worker, name="stylize", daemon=True)
    thread.start()
    try:
        while thread.is_alive() and not stop.is_set():
            picture = shown.take()
            if picture is not None:
                window.show(*picture)
            command = command_for(window.poll_key(10))
            if command == "quit":
                log("quit")
                break
            if command == "fullscreen":
                window.toggle_fullscreen()
            elif command is not None:
                commands.put(command)
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
                   commands: queue.SimpleQueue | None = None, show=None) -> CameraStopped | None:
    """Newest camera frame -> stylize -> record -> `show((view, overlay lines))`; commands act between
    frames."""
    while not stop.is_set():
        while commands is not None and not commands.empty():
            app.apply(commands.get())
        try:
            frame = camera.read(timeout=0.05)
        except CameraStopped as e:
            return e
        if frame is None:
            continue
        started = time.monotonic()
        view, network = app.process(frame)
        app.record(view, frame.captured)
        for output in app.outputs if app.outputs_on else ():  # never waits (a stalled receiver drops frames)
            output.send(view, frame.captured)
        if show is not None:
            show((view, app.overlay_lines()))
        app.stats.add(frame, network)
        app.frame_done(time.monotonic() - started)
        if max_frames and app.stats.frames >= max_frames:
            return None
    return None


class Handoff:
    """The newest picture from the worker for the GUI thread; older ones are simply replaced."""

    def __init__(self):
        self._lock = threading.Lock()
        self._item = None

    def put(self, item) -> None:
        with self._lock:
            self._item = item

    def take(self):
        with self._lock:
            item, self._item = self._item, None
        return item
