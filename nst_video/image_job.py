"""The still-image job: map inputs to outputs (refusing to overwrite an input), then stylize each one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nst_video.errors import NstError
from nst_video.images import expand_inputs, is_image_path, load_image, save_image
from nst_video.progress import progress_bar
from nst_video.report import error, say
from nst_video.stylizer import Stylizer


def plan_outputs(specs: list[str], output: Path, out_format: str | None) -> list[tuple[Path, Path]]:
    """(input, output) pairs. One plain file into a file name -> that file; otherwise OUTPUT is a folder and
    folder inputs keep their sub-folder layout inside it."""
    files = expand_inputs(specs)
    suffix = None
    if out_format:
        suffix = "." + out_format.lower().lstrip(".")
        if not is_image_path(Path("x" + suffix)):
            raise NstError(f"--format {out_format}: unknown image format")
    single = len(specs) == 1 and len(files) == 1 and not Path(specs[0]).is_dir() and not output.is_dir()
    if single:
        if not is_image_path(output):
            raise NstError(f"{output}: unknown image format '{output.suffix or '(no extension)'}'; "
                           "use e.g. .png or .jpg (or an existing folder)")
        jobs = [(files[0], output)]
    else:
        if output.exists() and not output.is_dir():
            raise NstError(f"{output}: several inputs need an output folder, and this is a file")
        jobs = []
        for spec in specs:
            root = Path(spec) if Path(spec).is_dir() else None
            for f in expand_inputs([spec]):
                rel = f.relative_to(root) if root else Path(f.name)
                jobs.append((f, output / rel.with_suffix(suffix or f.suffix)))
    _refuse_overwrites(jobs)
    return jobs


def _refuse_overwrites(jobs: list[tuple[Path, Path]]) -> None:
    inputs = {os.path.realpath(src) for src, _ in jobs}
    seen: dict[str, Path] = {}
    for src, dst in jobs:
        real = os.path.realpath(dst)
        if real in inputs:
            raise NstError(f"output {dst} is an input; refusing to overwrite it (choose another output)")
        if real in seen:
            raise NstError(f"{src} and {seen[real]} would both be written to {dst}; use --format or another layout")
        seen[real] = src


def stylize_picture(source: Path | BinaryIO, stylizer: Stylizer, max_size: int | None,
                    name: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One picture (a path, or an open binary file called `name` in messages) stylized: (RGB, alpha or None).
    What every picture of the job goes through, on this machine or on a cluster's worker (cluster.py)."""
    image = load_image(source, max_size=max_size, name=name)
    return stylizer.stylize_image(image.rgb), image.alpha


def make_output_folder(dst: Path) -> None:
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NstError(f"cannot create output folder {dst.parent}: {e.strerror or e}") from None


def run_images(jobs: list[tuple[Path, Path]], stylizer: Stylizer, max_size: int | None) -> int:
    """Stylize each job; a failing file is reported on one line and skipped. Returns the number of failures."""
    failures = 0
    with progress_bar("img/s", transient=len(jobs) == 1) as progress:
        task = progress.add_task("stylizing", total=len(jobs), status="")
        for src, dst in jobs:
            progress.update(task, status=src.name)
            try:
                styled, alpha = stylize_picture(src, stylizer, max_size)
                make_output_folder(dst)
                save_image(dst, styled, alpha)
            except NstError as e:
                if len(jobs) == 1:
                    raise
                failures += 1
                error(str(e))
            progress.advance(task)
    report_done(jobs, failures)
    return failures


def report_done(jobs: list[tuple[Path, Path]], failures: int) -> None:
    if failures == 0 and len(jobs) > 1:
        say(f"wrote {len(jobs)} images to {jobs[0][1].parent}")
