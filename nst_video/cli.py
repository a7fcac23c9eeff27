"""The `nst-video` command: one click group that only wires Source -> Stylizer -> Temporal -> Sink.

`nst-video IN OUT --style S` with no subcommand picks `image` or `video` from the input's kind."""
from __future__ import annotations

import functools
import math
import os
import re
import sys
from pathlib import Path

import click

from nst_video import __version__
from nst_video.architectures import ARCHITECTURES  # plain data: names the networks
from nst_video.errors import NstError
from nst_video.training.config import DISTILL_STEPS, DISTILL_WEIGHT  # plain data: no training code loads


def guess_mode(arg: str) -> str:
    """Which subcommand a bare `nst-video INPUT ...` means, from the input's kind."""
    from nst_video.images import is_image_path

    path = Path(arg)
    if path.is_dir() or is_image_path(path) or any(c in arg for c in "*?["):
        return "image"
    # Imported here, not at the top: PyAV takes a while to load, and --help and most commands need none of it.
    from nst_video.video_io import VIDEO_SUFFIXES  # the one table of video file types

    if path.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if path.is_file():  # unknown extension: ask Pillow, else let the video reader judge it
        from PIL import Image
        try:
            with Image.open(path):
                return "image"
        except Exception:
            return "video"
    return "image"


class NstGroup(click.Group):
    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [guess_mode(args[0]), *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        from nst_video import report, signals

        try:
            with signals.raise_on_stop_signals():  # SIGTERM and SIGHUP stop every job the way Ctrl-C does
                return super().invoke(ctx)
        except NstError as e:
            report.error(str(e))
            ctx.exit(1)
        except KeyboardInterrupt as e:
            report.say(f"nst-video: interrupted ({signals.signal_name(getattr(e, 'signum', None))})")
            # Everything written has been finalised or removed by now. Leave at once: a runtime's worker
            # threads (OpenVINO, PyAV) stopped mid-call can crash the interpreter's own shutdown (seen: a
            # SIGSEGV after a SIGTERM during the first frame), which would turn 143 into -11.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(signals.exit_code(e))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:  # a bug, not bad input: still one line, the traceback on request
            if os.environ.get("NST_VIDEO_DEBUG"):
                raise
            report.say(f"nst-video: internal error: {type(e).__name__}: {e} "
                       "(run with NST_VIDEO_DEBUG=1 for the traceback, and please report it)")
            ctx.exit(3)


TORCH_HEAVY = frozenset({"train", "distill", "diagnose", "optimize"})  # their work is torch's own operations


@click.group(cls=NstGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nst-video")
@click.pass_context
def main(ctx):
    """Fast neural style transfer for webcam, video files and images.

    \b
      nst-video in.mp4 out.mp4 --style mosaic     (the input's kind picks the mode)
      nst-video photo.jpg out.png --style udnie
      nst-video webcam
      nst-video styles
    """
    if ctx.invoked_subcommand not in TORCH_HEAVY:
        # Where a graph runtime (OpenVINO) paints, torch only converts frames, and its OpenMP workers then spin
        # for a while after each small operation, taking a core from OpenVINO mid-frame: the fast network's
        # 640x480 frame went from 37 to 32 ms on 2 cores with them asleep (docs/webcam.md). Read once, when
        # torch loads, which no command has done yet; torch's own training runs ~5% faster spinning.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _apply(func, options):
    for option in reversed(options):
        func = option(func)
    return func


class FiniteFloat(click.types.FloatParamType):
    """The type of every float option: FINITE_FLOAT, or FiniteFloatRange for bounds. click's float and
    FloatRange take 'nan' and 'inf' (nan fails no comparison), which would fail later, deep in a job, as an
    internal error; here they are a usage error. tests/test_cli_options.py checks every command's options."""

    def convert(self, value, param, ctx):
        number = click.types.FloatParamType.convert(self, value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


class FiniteFloatRange(FiniteFloat, click.FloatRange):
    """click.FloatRange (its bounds shown in --help), finite."""


FINITE_FLOAT = FiniteFloat()


def runtime_options(func):
    """Where and how the network runs: --device, --fp16, --backend, --threads, --precision (every command that
    stylizes)."""
    from nst_video.runtimes import BACKENDS, PRECISIONS

    return _apply(func, [
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps."),
        click.option("--fp16", is_flag=True, help="Half precision on GPU (ignored on CPU, where it is slower)."),
        click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
                     help="What runs the network: auto = torch on a GPU, the fastest installed runtime on the "
                          "CPU (OpenVINO)."),
        # (at most 1024: far past any CPU, and a huge number would fail inside a runtime as an internal error)
        click.option("--threads", type=click.IntRange(1, 1024), help="CPU threads for the network (default: every "
                                                                    "core)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                     help="What the CPU runtime computes in: auto = the CPU's best (bf16 with AMX or AVX512-BF16, "
                          "else fp32); fp32 on such a CPU shows what one without them gets."),
    ])


def network_options(func):
    """The runtime options and the look of the result: --strength, --preserve-color."""
    return _apply(runtime_options(func), [
        click.option("--strength", type=FiniteFloatRange(0, 1), default=1.0, show_default=True,
                     help="Blend with the original: 1 = fully stylized, 0 = original."),
        click.option("--preserve-color", is_flag=True, help="Keep the original colours; transfer only luminance."),
    ])


def stylizer_options(func):
    """--style, the network options and --batch-size, handed to the command as one `make_stylizer()`."""
    @click.option("--style", "-s", default="mosaic", show_default=True,
                  help="Style name (see `nst-video styles`) or path to a .safetensors style file.")
    @network_options
    @click.option("--batch-size", type=click.IntRange(min=1),
                  help="Frames per forward pass (default: 4 on a CUDA GPU, 1 on the CPU, where batches do not pay).")
    @functools.wraps(func)
    def wrapper(*args, style, device, fp16, strength, preserve_color, batch_size, backend, threads, precision,
                **kwargs):
        from nst_video.stylizer import StylizerSettings  # plain data; torch loads with the module, as before

        make_stylizer = StylizerSettings(style, device=device, fp16=fp16, strength=strength,
                                         preserve_color=preserve_color, batch_size=batch_size, backend=backend,
                                         threads=threads, precision=precision)
        return func(*args, make_stylizer=make_stylizer, **kwargs)
    return wrapper


class MemorySize(click.ParamType):
    """A memory size: 2G, 1.5G, 512M, 800MiB, or bytes."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        from nst_video.memory import parse_size
        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class StyleScale(click.ParamType):
    """`auto` or a number >= 1."""

    name = "S|auto"

    def convert(self, value, param, ctx):
        from nst_video.stylizer import check_style_scale
        try:
            return check_style_scale(str(value).strip().lower())
        except NstError as e:
            self.fail(str(e), param, ctx)


def picture_options(default_scale: str):
    """--style-scale and --max-memory (image and video): they reach the Stylizer as its `style_scale` and
    `max_memory`; `make_stylizer` (from stylizer_options, applied after this) sets them."""
    def decorate(func):
        @click.option("--style-scale", type=StyleScale(), default=default_scale, show_default=True,
                      help="Stroke size: stylize at 1/S of the size and bring the result back with the picture's "
                           "detail (1 = the network's strokes at full size; auto: pictures over 1 MP as if they "
                           "were 1 MP).")
        @click.option("--max-memory", type=MemorySize(),
                      help="Most memory to use, e.g. 2G; bigger pictures run in tiles (default: 80% of the free "
                           "memory).")
        @functools.wraps(func)
        def wrapper(*args, style_scale, max_memory, make_stylizer, **kwargs):
            import dataclasses
            return func(*args, make_stylizer=dataclasses.replace(make_stylizer, style_scale=style_scale,
                                                                 max_memory=max_memory), **kwargs)
        return wrapper
    return decorate


CLUSTER_HELP = ("Spread the job over a Ray cluster (pip install 'nst-video[cluster]'): HOST:PORT, ray://HOST:PORT, "
                "auto ($RAY_ADDRESS or the cluster running here) or local:N (N local CPUs). Each task takes "
                "--threads CPUs (default 1). See docs/cluster.md.")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file (one input) or folder. Without it the last INPUT is the output.")
@click.option("--max-size", type=click.IntRange(min=8), help="Cap the long side of each image (pixels).")
@click.option("--format", "out_format", help="Extension for outputs written into a folder (default: the input's).")
@stylizer_options
@picture_options(default_scale="auto")
@click.option("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
def image(inputs, output, max_size, out_format, make_stylizer, cluster):
    """Stylize still images: files, folders (recursive) and glob patterns.

    \b
      nst-video image photo.jpg -o out.png --style udnie
      nst-video image photos/ -o styled/ --style mosaic --max-size 1600
      nst-video image photo.jpg out.png          (like cp: the last argument is the output)
      nst-video image big.jpg out.jpg --style-scale 1 --max-memory 2G   (finest strokes, in tiles)
    """
    from nst_video.image_job import plan_outputs, run_images

    inputs = list(inputs)
    if output is None:
        if len(inputs) < 2:
            raise NstError("no output given: nst-video image INPUT... -o OUTPUT (or INPUT OUTPUT)")
        output = inputs.pop()
    jobs = plan_outputs(inputs, Path(output), out_format)
    if cluster:
        from nst_video.cluster import run_images_on_cluster
        failures = run_images_on_cluster(cluster, jobs, make_stylizer, max_size)
    else:
        failures = run_images(jobs, make_stylizer(), max_size)
    if failures:
        raise NstError(f"{failures} of {len(jobs)} image(s) failed")


@main.command("styles")
def styles_cmd():
    """List the available styles (bundled and your own)."""
    from rich.console import Console
    from rich.table import Table

    from nst_video.styles import BUNDLED_DIR, StyleRegistry, user_styles_dir

    available = StyleRegistry().available(check_weights=False)  # the headers: no torch (weights checked on use)
    if not available:
        click.echo(f"no styles found in {BUNDLED_DIR} or {user_styles_dir()}; train one with `nst-video train`")
        return
    table = Table("name", "title", "network", "credit", "trained", "file", box=None)
    for info in available:
        t = info.training
        trained = ", ".join(f"{k} {t[k]}" for k in ("steps", "image_size", "device") if k in t)
        table.add_row(info.key, info.title, info.architecture, info.credit, trained,
                      str(info.path))
    # names, titles, credits and paths as they are: no markup or emoji codes (a style file's metadata is anyone's)
    Console(width=200 if not sys.stdout.isatty() else None, markup=False, emoji=False).print(table)


@main.command()
@click.option("--style", "-s", default="mosaic", show_default=True, help="Style name or .safetensors file.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "openvino", "torchscript"]), default="onnx",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default: STYLE.onnx / .xml / .pt in the current folder).")
def export(style, fmt, output):
    """Export a style's network as a standalone graph for other programs.

    \b
    In and out: float32 RGB in 0..1, NCHW (batch, 3, height, width), any batch, height and width
    (at least 5 px); input name `image`, output name `stylized`. Checked against PyTorch on three
    sizes before it is written. OpenVINO writes NAME.xml and NAME.bin.
    """
    from nst_video.export_job import default_output, export_style
    from nst_video.report import say
    from nst_video.styles import StyleRegistry

    info, model = StyleRegistry().load(style)
    result = export_style(model, fmt, output or default_output(info.key, fmt))
    checks = ", ".join(f"{w}x{h} {d:.1e}" for (h, w), d in result.max_difference.items())
    say(f"wrote {', '.join(map(str, result.files))} ({fmt}; max difference from PyTorch: {checks})")


# --- video: `nst-video video IN OUT` (the job lives in nst_video/video_job.py) ---


class Seconds(click.ParamType):
    """A time: seconds (90, 1.5) or [h:]m:s (1:30, 1:02:03.5); never negative (with positive=True, above 0)."""

    name = "TIME"
    PATTERN = re.compile(r"(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)")

    def __init__(self, positive: bool = False):
        self.positive = positive

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            value = str(value)
        match = self.PATTERN.fullmatch(value.strip())
        if not match:
            self.fail(f"{value!r} is not a time: give seconds (90, 1.5) or [h:]m:s (1:30); it cannot be negative",
                      param, ctx)
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        if (match.group(2) and secs >= 60) or (match.group(1) and minutes >= 60):
            self.fail(f"{value!r}: minutes and seconds after a ':' must be below 60", param, ctx)
        seconds = hours * 3600 + minutes * 60 + secs
        if not math.isfinite(seconds):  # 400 digits are a float too large to hold
            self.fail(f"{value!r} is not a time: too large", param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"{value!r}: must be more than 0", param, ctx)
        return seconds


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path), required=False)
@click.option("--start", type=Seconds(), default=0.0, help="Begin this far into the input (90, 1.5, 1:30).")
@click.option("--duration", type=Seconds(positive=True), help="Write only this long a segment (seconds or m:s).")
@click.option("--max-size", type=click.IntRange(min=8),
              help="Cap the long side (pixels); the aspect is kept (sizes rounded to even).")
@click.option("--temporal", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Against flicker (0 = off): the network is given the same pixels where only noise "
                   "changed, and the previous output is carried along the optical flow where the motion "
                   "is trusted, until the input under it changes by more than 24 x W grey levels.")
@click.option("--codec", help="Video encoder: libx264 (default; libvpx-vp9 for .webm), libx265, libvpx-vp9, ...")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
              help="Constant quality for x264/x265/VP9/AV1: lower is better and bigger (18 looks lossless).")
@click.option("--preset", default="medium", show_default=True, help="x264/x265 speed preset (ultrafast..veryslow).")
@click.option("--no-audio", is_flag=True, help="Leave the audio out.")
@click.option("--stream", metavar="URL", help="Also (or, without OUTPUT, only) send the frames as a live stream: "
                                              "udp://HOST:PORT or rtmp://HOST[:PORT]/APP/KEY (no audio).")
@click.option("--realtime", is_flag=True, help="With --stream: send each frame at its time in the video, as if "
                                               "it were live (default: as fast as they are made).")
@stylizer_options
@picture_options(default_scale="1")
@click.option("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
def video(input_path, output, start, duration, max_size, temporal, codec, crf, preset, no_audio, stream, realtime,
          make_stylizer, cluster):
    """Stylize a video file; frame rate, timestamps, rotation and audio are kept.

    \b
      nst-video video in.mp4 out.mp4 --style mosaic
      nst-video video in.mkv out.mp4 --style udnie --temporal 0.5 --crf 20
      nst-video video film.mkv preview.mp4 --start 1:30 --duration 3 --max-size 480
      nst-video video 4k.mp4 out.mp4 --style-scale auto --max-memory 4G   (1 MP strokes, in tiles if need be)
      nst-video video in.mp4 --stream udp://127.0.0.1:5000 --realtime      (played live: ffplay that URL)
      nst-video video film.mkv out.mp4 --cluster auto                       (on a Ray cluster: docs/cluster.md)
    Ctrl-C (or SIGTERM, SIGHUP) stops early and keeps a playable file of the frames done so far.
    """
    from nst_video.video_job import check_paths, run_video

    if output is None and not stream:
        raise click.UsageError("no output: give OUTPUT, or --stream URL to send the frames live")
    if realtime and not stream:
        raise click.UsageError("--realtime paces a live stream: give --stream URL with it")
    if cluster and stream:
        raise click.UsageError("--cluster renders to OUTPUT: --stream does not go with it (a live stream is one "
                               "machine's job)")
    check_paths(input_path, output)  # before loading the model: bad paths fail at once
    if cluster:
        from nst_video.cluster import run_video_on_cluster
        result = run_video_on_cluster(cluster, input_path, output, make_stylizer, temporal=temporal, codec=codec,
                                      crf=crf, preset=preset, audio=not no_audio, max_size=max_size, start=start,
                                      duration=duration)
        sys.exit(128 + result.stop_signal if result.stop_signal else 0)
    if stream:
        from nst_video.stream_out import check_stream_url
        check_stream_url(stream)
    result = run_video(input_path, output, make_stylizer(), temporal=temporal, codec=codec, crf=crf,
                       preset=preset, audio=not no_audio, start=start, duration=duration, max_size=max_size,
                       stream=stream, realtime=realtime)
    if result.stop_signal:
        sys.exit(128 + result.stop_signal)


# --- webcam: `nst-video webcam` (the loop lives in nst_video/webcam_loop.py, its state in webcam.py) ---


@main.command()
@click.option("--camera", default="0", show_default=True,
              help="Device index (0, 1, ...), or a video file or URL standing in for a camera.")
@click.option("--size", default="640x480", show_default=True,
              help="Processing size WxH; the camera picture is centre-cropped to its aspect and scaled.")
@click.option("--style", "-s", help="Style (name or file) to begin with; added to --styles if not among them. "
                                   "Default: the first of --styles.")
@click.option("--styles", help="Comma-separated styles (names or files) to switch between; default: all.")
@click.option("--full", is_flag=True, help="Full networks on a CPU too (there the default is each style's lite "
                                           "network, for real time; `l` switches live).")
@network_options
@click.option("--temporal", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Flow-guided smoothing against flicker, as in `video --temporal`; 0 = off at start "
                   "(t toggles it, at 0.5 when not given).")
@click.option("--record", type=click.Path(dir_okay=False), help="Record from the start to this video file.")
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where k (snapshots) and r (recordings) write their files.")
@click.option("--no-window", is_flag=True, help="Run without a window (with --record, and/or --max-frames).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop by itself after this many frames.")
@click.option("--fps", type=FiniteFloatRange(min=1, max=240),
              help="Frame rate to hold: the network paints smaller where it cannot keep it at --size, and the "
                   "picture is brought back up with the frame's detail (default: the camera's rate, at most 30).")
@click.option("--paint-size", metavar="WxH", help="Pin the size the network paints at (at most --size); default: "
                                                  "chosen to hold --fps.")
@click.option("--stream", metavar="URL", help="Also send the stylized frames as a live H.264 stream: "
                                              "udp://HOST:PORT (MPEG-TS) or rtmp://HOST[:PORT]/APP/KEY "
                                              "(docs/video-calls.md).")
@click.option("--virtual-camera", metavar="[NAME]", is_flag=False, flag_value="auto",
              help="Also show the stylized frames as a camera other programs (Zoom, Meet, OBS, ...) can pick: a "
                   "v4l2loopback device on Linux (NAME: /dev/videoN or its label; default the first), OBS's "
                   "Virtual Camera on Windows and macOS (docs/video-calls.md).")
def webcam(camera, size, style, styles, full, no_window, max_frames, snapshot_dir, paint_size, **options):
    """Stylize a live camera in a window; keys switch styles, record, snapshot (h lists them).

    \b
      nst-video webcam                                  (camera 0, all styles)
      nst-video webcam --camera 1 --styles mosaic,udnie --size 1280x720
      nst-video webcam --style udnie                    (all styles, beginning with udnie)
      nst-video webcam --no-window --record out.mp4 --max-frames 300
      nst-video webcam --stream udp://127.0.0.1:5000    (then: ffplay udp://127.0.0.1:5000)
      nst-video webcam --virtual-camera                 (then pick "nst-video" as the camera in a call)
    """
    from nst_video.camera import parse_camera
    from nst_video.paint_size import parse_paint_size
    from nst_video.webcam_loop import WebcamOptions, parse_size, run_webcam

    names = [s.strip() for s in styles.split(",") if s.strip()] if styles else None
    window_size = parse_size(size)
    if paint_size is not None:
        try:
            paint_size = parse_paint_size(paint_size, window_size)
        except NstError as e:
            raise click.BadParameter(str(e).removeprefix(f"--paint-size {paint_size}: "),
                                     param_hint="--paint-size") from None
    run_webcam(WebcamOptions(camera=parse_camera(camera), size=window_size, styles=names, style=style,
                             full=full, window=not no_window, max_frames=max_frames, snapshot_dir=Path(snapshot_dir),
                             paint_size=paint_size, **options))


# --- serve: `nst-video serve` (the web app and HTTP API live in nst_video/web/) ---


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback is reachable by others: a warning says so.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: any free one; the URL printed says which).")
@click.option("--styles", help="Comma-separated styles (names or files) to offer; default: every installed one.")
@runtime_options
@click.option("--token", help="Require this token on every API request (?token=... or 'Authorization: Bearer ...'); "
                              "the URL printed carries it.")
@click.option("--queue", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images and live frames that may wait for the device; more get 503 (busy).")
@click.option("--max-jobs", type=click.IntRange(min=1), default=8, show_default=True,
              help="Video jobs queued or running at once; more get 503 (busy).")
@click.option("--max-side", type=click.IntRange(min=16), default=1600, show_default=True,
              help="Cap on the long side of images and videos (pixels); a request may ask for less.")
@click.option("--max-image-mb", type=FiniteFloatRange(min=0, min_open=True), default=40, show_default=True,
              help="Largest image upload (MB).")
@click.option("--max-video-mb", type=FiniteFloatRange(min=0, min_open=True), default=500, show_default=True,
              help="Largest video upload (MB).")
@click.option("--keep-results", type=FiniteFloatRange(min=0), default=3600, show_default=True,
              help="Seconds a finished video's result is kept for download.")
def serve(host, port, styles, device, fp16, backend, threads, precision, token, queue, max_jobs, max_side,
          max_image_mb, max_video_mb, keep_results):
    """Web app and HTTP API: drop images and videos on a page, or stylize the browser's camera live.

    \b
      nst-video serve                        (then open the URL it prints)
      nst-video serve --port 9000 --styles mosaic,udnie
      curl -F image=@photo.jpg -F style=mosaic http://127.0.0.1:8000/stylize -o out.jpg
    Ctrl-C (or SIGTERM, SIGHUP) stops it; uploads and results are removed.
    """
    from nst_video.web.server import Limits, ServeOptions
    from nst_video.web.server import serve as run_server

    names = [s.strip() for s in styles.split(",") if s.strip()] if styles else None
    limits = Limits(max_image_bytes=int(max_image_mb * 1e6), max_video_bytes=int(max_video_mb * 1e6),
                    max_side=max_side, live_max_side=min(640, max_side))
    run_server(ServeOptions(host=host, port=port, styles=names, device=device, backend=backend, fp16=fp16,
                            threads=threads, precision=precision, token=token, queue=queue, max_jobs=max_jobs,
                            keep_results=keep_results,
                            limits=limits))


# --- training: `nst-video train`, `nst-video diagnose` (the code lives in training/) ---


def dataclass_options(config: type, *names: str):
    """Click options for fields of a config dataclass (TrainConfig, OptimizeConfig), with the defaults, help,
    lower bounds and choices declared there: the one source of truth (the jobs check the same bounds for
    callers from Python)."""
    from dataclasses import MISSING, fields

    declared = {f.name: f for f in fields(config)}

    def option(name: str):
        f = declared[name]
        meta, kind, flag = f.metadata, str(f.type).removesuffix(" | None"), "--" + name.replace("_", "-")
        kwargs = {"help": meta.get("help") or None}
        if f.default is MISSING:
            kwargs["required"] = True
        elif kind == "bool":
            kwargs.update(is_flag=True, default=f.default)
        else:
            kwargs.update(default=f.default, show_default=f.default not in (None, ""))
            if meta.get("choices"):
                kwargs["type"] = click.Choice(meta["choices"])
            elif kind in ("int", "float") and (meta.get("min") is not None or meta.get("max") is not None):
                bounded = click.IntRange if kind == "int" else FiniteFloatRange
                kwargs["type"] = bounded(min=meta.get("min"), max=meta.get("max"),
                                         min_open=meta.get("min_open", False))
            elif kind in ("int", "float"):
                kwargs["type"] = {"int": int, "float": FINITE_FLOAT}[kind]
        return click.option(flag, name, **kwargs)

    def decorate(func):
        for name in reversed(names):
            func = option(name)(func)
        return func
    return decorate


def config_options(*names: str):
    """Options for TrainConfig fields (train, distill, diagnose)."""
    from nst_video.training.config import TrainConfig
    return dataclass_options(TrainConfig, *names)



LOSS_OPTIONS = ("vgg_weights", "batch_size", "image_size", "max_zoom", "style_size", "lr", "content_weight",
                "style_weight", "tv_weight", "device", "seed")

nproc_option = click.option(
    "--nproc", type=click.IntRange(min=1), default=1, show_default=True,
    help="Train in N processes on this machine (one per GPU, or sharing the CPU cores), each on its share of "
         "--batch-size: the same command run under torchrun (`torchrun --nproc-per-node N -m nst_video train ...`).")


def run_training(cfg, nproc: int) -> None:
    """train() in this process, or `--nproc N`: this same command again as N ranks under torchrun, once the
    options and files are checked here (one error line, before N processes start)."""
    from nst_video.training.distributed import launch, stopped_status, without_nproc
    from nst_video.training.train import check_launch
    from nst_video.training.train import train as run

    if nproc > 1:
        check_launch(cfg, nproc)
        sys.exit(launch(nproc, without_nproc(sys.argv[1:])))
    if run(cfg) is None:
        sys.exit(stopped_status())


@main.command()
@config_options("content_dir", "style_image", "name", "output", "title", "credit", "checkpoint_dir", "resume",
                "force", "init_from", "architecture", "max_steps", "num_workers", "stability_weight", "motion_weight",
                "motion_shift", "video_dir", "flow_weight", "ema_decay", "checkpoint_interval", "sample_interval",
                "log_interval", "amp", *LOSS_OPTIONS, "dist_backend")
@nproc_option
def train(nproc, **options):
    """Train a new style (Johnson et al. recipe) and write its style file.

    A stop signal (Ctrl-C, SIGTERM, SIGHUP) finishes the current step, saves a checkpoint and exits;
    the same command with --resume continues from it."""
    from nst_video.styles import StyleRegistry
    from nst_video.training.train import TrainConfig

    if options["init_from"]:
        options["init_from"] = str(StyleRegistry().resolve(options["init_from"]))
    run_training(TrainConfig(**options), nproc)


@main.command()
@click.option("--from", "teacher", required=True, help="The full style to distil (name or file).")
@click.option("--name", required=True, help="The new style's name (e.g. mosaic-lite).")
@click.option("--force", is_flag=True, help="Replace an existing style of that name (and its checkpoint).")
@click.option("--architecture", type=click.Choice(list(ARCHITECTURES)), default="lite", show_default=True,
              help="The student network (nst_video/architectures.py): lite for CPUs with AMX/BF16 and GPUs, fast "
                   "(a quarter of lite's work) for CPUs that compute in fp32.")
@click.option("--distill-weight", type=FiniteFloatRange(min=0), default=DISTILL_WEIGHT, show_default=True,
              help="Weight of the teacher's outputs as targets, beside the perceptual loss against the painting.")
@click.option("--style-weight", type=FiniteFloatRange(min=0), help="Default: the teacher's.")
@click.option("--content-weight", type=FiniteFloatRange(min=0), help="Default: the teacher's.")
@click.option("--image-size", type=click.IntRange(min=16), help="Training crop size; default: the teacher's.")
@click.option("--style-size", type=click.IntRange(min=16), help="Style image size; default: the teacher's.")
@click.option("--max-steps", type=click.IntRange(min=1), default=DISTILL_STEPS, show_default=True)
@click.option("--amp/--no-amp", default=True, show_default=True,
              help="Mixed precision (bfloat16 on a CPU, FP16 on a GPU).")
@config_options("content_dir", "style_image", "output", "title", "credit", "checkpoint_dir", "resume", "init_from",
                "max_zoom", "num_workers", "motion_weight", "motion_shift", "video_dir", "flow_weight", "ema_decay",
                "checkpoint_interval", "sample_interval", "log_interval", "vgg_weights", "batch_size", "lr",
                "tv_weight", "device", "seed", "dist_backend")
@nproc_option
def distill(teacher, name, force, nproc, **options):
    """Train a small, fast style from a full one: the teacher's outputs are the targets, beside the perceptual
    loss against the painting. Resumable and stoppable like `train`.

    \b
      nst-video distill --from mosaic --name mosaic-lite --content-dir photos/ --style-image mosaic.png
    """
    from nst_video.styles import StyleRegistry
    from nst_video.training.distill import distill_config

    if options["init_from"]:
        options["init_from"] = str(StyleRegistry().resolve(options["init_from"]))
    run_training(distill_config(teacher, name, force=force, **options), nproc)


@main.command()
@click.argument("content", type=click.Path())
@click.argument("style", type=click.Path())
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True)
@config_options(*LOSS_OPTIONS)
def diagnose(content, style, steps, **options):
    """Check images, VGG weights, loss magnitudes and gradients before training, and say what to change."""
    from nst_video.training.diagnose import diagnose as run_diagnose
    from nst_video.training.train import TrainConfig

    if not Path(content).exists():
        raise NstError(f"{content}: no such file or folder")
    if not Path(style).is_file():
        raise NstError(f"{style}: no such file")
    run_diagnose(content, style, TrainConfig(content_dir=content, style_image=style, name="diagnose", **options),
                 steps=steps)


# --- optimisation: `nst-video optimize` (the engine lives in training/optimize.py) ---


def optimize_options(*names: str):
    """Options for OptimizeConfig fields."""
    from nst_video.training.config import OptimizeConfig
    return dataclass_options(OptimizeConfig, *names)


@main.command("optimize")
@click.argument("content")
@click.argument("style_image")
@click.argument("output")
@click.option("--style-image", "more_styles", multiple=True, metavar="PATH[:WEIGHT]",
              help="Another style image, mixed in with a relative weight (repeatable).")
@optimize_options("size", "steps", "optimizer", "lr", "content_weight", "style_weight", "tv_weight", "init",
                  "init_noise", "style_scale", "preserve_color", "save_every", "coarse_size", "device", "vgg_weights",
                  "seed")
def optimize_cmd(content, style_image, output, more_styles, **options):
    """Any painting, no training: optimise the picture itself until its VGG features have the photo's content
    and the painting's style (Gatys et al.). Minutes on a CPU, seconds on a GPU.

    \b
      nst-video optimize photo.jpg painting.jpg out.png
      nst-video optimize photo.jpg a.jpg out.png --style-image b.jpg:0.5   (a: 2/3, b: 1/3)
      nst-video optimize photo.jpg painting.jpg big.png --size 2048        (coarse to fine: 512, 1024, 2048)

    STYLE_IMAGE is the first style image; each --style-image adds one. Each may end in :WEIGHT (default 1);
    the weights are relative and their Gram matrices are mixed in that proportion. A stop signal (Ctrl-C,
    SIGTERM, SIGHUP) saves the current image and exits 130/143/129.
    """
    from nst_video.training.optimize import OptimizeConfig, optimize, parse_style_spec

    styles = [parse_style_spec(s) for s in (style_image, *more_styles)]
    if optimize(OptimizeConfig(content=content, styles=styles, output=output, **options)) is None:
        from nst_video.signals import exit_code
        sys.exit(exit_code())
