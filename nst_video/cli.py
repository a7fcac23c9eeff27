"""The `nst-video` command: one click group that only wires Source -> Stylizer -> Temporal -> Sink.

`nst-video IN OUT --style S` with no subcommand picks `image` or `video` from the input's kind."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from nst_video import __version__
from nst_video.errors import NstError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".3gp", ".3g2", ".flv", ".wmv", ".mpg",
                  ".mpeg", ".ts", ".mts", ".m2ts", ".ogv", ".gifv", ".vob", ".asf"}


def guess_mode(arg: str) -> str:
    """Which subcommand a bare `nst-video INPUT ...` means, from the input's kind."""
    from nst_video.images import is_image_path

    path = Path(arg)
    if path.is_dir() or is_image_path(path) or any(c in arg for c in "*?["):
        return "image"
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
            ctx.exit(signals.exit_code(e))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:  # a bug, not bad input: still one line, the traceback on request
            if os.environ.get("NST_VIDEO_DEBUG"):
                raise
            report.say(f"nst-video: internal error: {type(e).__name__}: {e} "
                       "(run with NST_VIDEO_DEBUG=1 for the traceback, and please report it)")
            ctx.exit(3)


@click.group(cls=NstGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nst-video")
def main():
    """Fast neural style transfer for webcam, video files and images.

    \b
      nst-video in.mp4 out.mp4 --style mosaic     (the input's kind picks the mode)
      nst-video photo.jpg out.png --style udnie
      nst-video webcam
      nst-video styles
    """


def stylizer_options(func):
    """Options shared by every mode that runs the network."""
    @click.option("--style", "-s", default="mosaic", show_default=True,
                  help="Style name (see `nst-video styles`) or path to a .safetensors style file.")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
    @click.option("--fp16", is_flag=True, help="Half precision on GPU (ignored on CPU, where it is slower).")
    @click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
                  help="Blend with the original: 1 = fully stylized, 0 = original.")
    @click.option("--preserve-color", is_flag=True, help="Keep the original colours; transfer only luminance.")
    @click.option("--batch-size", type=click.IntRange(min=1),
                  help="Frames per forward pass (default: 4 on a CUDA GPU, 1 on the CPU, where batches do not pay).")
    @functools.wraps(func)
    def wrapper(*args, style, device, fp16, strength, preserve_color, batch_size, **kwargs):
        def make_stylizer():
            from nst_video.stylizer import Stylizer
            return Stylizer.from_style(style, device=device, fp16=fp16, strength=strength,
                                       preserve_color=preserve_color, batch_size=batch_size)
        return func(*args, make_stylizer=make_stylizer, **kwargs)
    return wrapper


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file (one input) or folder. Without it the last INPUT is the output.")
@click.option("--max-size", type=click.IntRange(min=8), help="Cap the long side of each image (pixels).")
@click.option("--format", "out_format", help="Extension for outputs written into a folder (default: the input's).")
@stylizer_options
def image(inputs, output, max_size, out_format, make_stylizer):
    """Stylize still images: files, folders (recursive) and glob patterns.

    \b
      nst-video image photo.jpg -o out.png --style udnie
      nst-video image photos/ -o styled/ --style mosaic --max-size 1600
      nst-video image photo.jpg out.png          (like cp: the last argument is the output)
    """
    from nst_video.image_job import plan_outputs, run_images

    inputs = list(inputs)
    if output is None:
        if len(inputs) < 2:
            raise NstError("no output given: nst-video image INPUT... -o OUTPUT (or INPUT OUTPUT)")
        output = inputs.pop()
    jobs = plan_outputs(inputs, Path(output), out_format)
    failures = run_images(jobs, make_stylizer(), max_size)
    if failures:
        raise NstError(f"{failures} of {len(jobs)} image(s) failed")


@main.command("styles")
def styles_cmd():
    """List the available styles (bundled and your own)."""
    from rich.console import Console
    from rich.table import Table

    from nst_video.styles import BUNDLED_DIR, StyleRegistry, user_styles_dir

    available = StyleRegistry().available()
    if not available:
        click.echo(f"no styles found in {BUNDLED_DIR} or {user_styles_dir()}; train one with `nst-video train`")
        return
    table = Table("name", "title", "credit", "trained", "file", box=None)
    for info in available:
        t = info.training
        trained = ", ".join(f"{k} {t[k]}" for k in ("steps", "image_size", "device") if k in t)
        table.add_row(info.key, info.title, info.credit, trained,
                      str(info.path))
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


# --- video: `nst-video video IN OUT` (the job lives in nst_video/video_job.py) ---


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--temporal", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Blend with the previous output where the picture is still, against flicker (0 = off).")
@click.option("--codec", help="Video encoder: libx264 (default; libvpx-vp9 for .webm), libx265, libvpx-vp9, ...")
@click.option("--crf", type=click.IntRange(0, 63), default=18, show_default=True,
              help="Constant quality for x264/x265/VP9/AV1: lower is better and bigger (18 looks lossless).")
@click.option("--preset", default="medium", show_default=True, help="x264/x265 speed preset (ultrafast..veryslow).")
@click.option("--no-audio", is_flag=True, help="Leave the audio out.")
@stylizer_options
def video(input_path, output, temporal, codec, crf, preset, no_audio, make_stylizer):
    """Stylize a video file; frame rate, timestamps, rotation and audio are kept.

    \b
      nst-video video in.mp4 out.mp4 --style mosaic
      nst-video video in.mkv out.mp4 --style udnie --temporal 0.5 --crf 20
    Ctrl-C stops early and keeps a playable file of the frames done so far.
    """
    from nst_video.video_job import check_paths, run_video

    check_paths(input_path, output)  # before loading the model: bad paths fail at once
    result = run_video(input_path, output, make_stylizer(), temporal=temporal, codec=codec, crf=crf,
                       preset=preset, audio=not no_audio)
    if result.interrupted:
        from nst_video.signals import exit_code
        sys.exit(exit_code())


# --- webcam: `nst-video webcam` (the loop lives in nst_video/webcam_loop.py, its state in webcam.py) ---


@main.command()
@click.option("--camera", default="0", show_default=True,
              help="Device index (0, 1, ...), or a video file or URL standing in for a camera.")
@click.option("--size", default="640x480", show_default=True,
              help="Processing size WxH; the camera picture is centre-cropped to its aspect and scaled.")
@click.option("--style", "-s", help="Style (name or file) to begin with; added to --styles if not among them. "
                                   "Default: the first of --styles.")
@click.option("--styles", help="Comma-separated styles (names or files) to switch between; default: all.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--fp16", is_flag=True, help="Half precision on GPU (ignored on CPU, where it is slower).")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Blend with the original (+/- change it live).")
@click.option("--preserve-color", is_flag=True, help="Keep the original colours (c toggles it live).")
@click.option("--temporal", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Temporal blending weight against flicker; 0 = off at start (t toggles it).")
@click.option("--record", type=click.Path(dir_okay=False), help="Record from the start to this video file.")
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where k (snapshots) and r (recordings) write their files.")
@click.option("--no-window", is_flag=True, help="Run without a window (with --record, and/or --max-frames).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop by itself after this many frames.")
def webcam(camera, size, style, styles, no_window, max_frames, snapshot_dir, **options):
    """Stylize a live camera in a window; keys switch styles, record, snapshot (h lists them).

    \b
      nst-video webcam                                  (camera 0, all styles)
      nst-video webcam --camera 1 --styles mosaic,udnie --size 1280x720
      nst-video webcam --style udnie                    (all styles, beginning with udnie)
      nst-video webcam --no-window --record out.mp4 --max-frames 300
    """
    from nst_video.camera import parse_camera
    from nst_video.webcam_loop import WebcamOptions, parse_size, run_webcam

    names = [s.strip() for s in styles.split(",") if s.strip()] if styles else None
    run_webcam(WebcamOptions(camera=parse_camera(camera), size=parse_size(size), styles=names, style=style,
                             window=not no_window, max_frames=max_frames, snapshot_dir=Path(snapshot_dir),
                             **options))


# --- training: `nst-video train`, `nst-video diagnose` (the code lives in training/) ---


def config_options(*names: str):
    """Click options for TrainConfig fields, with the defaults, help and lower bounds declared there (the one
    source of truth; train() checks the same bounds for callers from Python)."""
    from dataclasses import MISSING, fields

    from nst_video.training.train import TrainConfig

    declared = {f.name: f for f in fields(TrainConfig)}

    def option(name: str):
        f = declared[name]
        meta, flag = f.metadata, "--" + name.replace("_", "-")
        kwargs = {"help": meta.get("help") or None}
        if f.default is MISSING:
            kwargs["required"] = True
        elif f.type in ("bool", bool):
            kwargs["is_flag"] = True
        else:
            kwargs.update(default=f.default, show_default=f.default is not None and f.default != "")
            python_type = {"int": int, "float": float}.get(str(f.type))
            if python_type and meta.get("min") is not None:
                range_type = click.IntRange if python_type is int else click.FloatRange
                kwargs["type"] = range_type(min=meta["min"], min_open=meta.get("min_open", False))
            elif python_type:
                kwargs["type"] = python_type
        return click.option(flag, name, **kwargs)

    def decorate(func):
        for name in reversed(names):
            func = option(name)(func)
        return func
    return decorate


LOSS_OPTIONS = ("vgg_weights", "batch_size", "image_size", "style_size", "lr", "content_weight", "style_weight",
                "tv_weight", "device", "seed")


@main.command()
@config_options("content_dir", "style_image", "name", "output", "title", "credit", "checkpoint_dir", "resume",
                "init_from", "max_steps", "num_workers", "stability_weight", "checkpoint_interval", "sample_interval",
                "log_interval", "amp", *LOSS_OPTIONS)
def train(**options):
    """Train a new style (Johnson et al. recipe) and write its style file.

    A stop signal (Ctrl-C, SIGTERM, SIGHUP) finishes the current step, saves a checkpoint and exits;
    the same command with --resume continues from it."""
    from nst_video.styles import StyleRegistry
    from nst_video.training.train import TrainConfig
    from nst_video.training.train import train as run_training

    if options["init_from"]:
        options["init_from"] = str(StyleRegistry().resolve(options["init_from"]))
    if run_training(TrainConfig(**options)) is None:
        from nst_video.signals import exit_code
        sys.exit(exit_code())


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
