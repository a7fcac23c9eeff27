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
        try:
            return super().invoke(ctx)
        except NstError as e:
            click.echo(f"nst-video: error: {e}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("nst-video: interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as e:  # a bug, not bad input: still one line, the traceback on request
            if os.environ.get("NST_VIDEO_DEBUG"):
                raise
            click.echo(f"nst-video: internal error: {type(e).__name__}: {e} "
                       "(run with NST_VIDEO_DEBUG=1 for the traceback, and please report it)", err=True)
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
    @click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
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
        table.add_row(Path(info.path).name.removesuffix(".safetensors"), info.title, info.credit, trained,
                      str(info.path))
    Console(width=200 if not sys.stdout.isatty() else None).print(table)


# --- video: `nst-video video IN OUT` (the job lives in nst_video/video_job.py) ---


# --- webcam: `nst-video webcam` (the job lives in nst_video/webcam.py) ---


# --- training: `nst-video train`, `nst-video diagnose` (the code lives in training/) ---
