"""Build the style gallery: every sample photo in every style, as one grid image.

    python scripts/make_gallery.py                          # all styles, samples/photos -> samples/gallery.jpg
    python scripts/make_gallery.py --styles mosaic,udnie --out /tmp/gallery.jpg

The styled images come from the project's own command, one `nst-video image` run per style over the whole
photo folder, so the gallery shows exactly what a user gets. The first column holds the originals, then one
column per style, each headed by the style's title.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nst_video.atomic import atomic_output
from nst_video.errors import NstError
from nst_video.images import expand_inputs, load_image
from nst_video.progress import progress_bar
from nst_video.styles import StyleRegistry, one_per_style, read_info

ROOT = Path(__file__).resolve().parent.parent
GAP, LABEL_HEIGHT, FONT_SIZE = 6, 34, 18
BACKGROUND, TEXT = (24, 24, 24), (235, 235, 235)
SIZE_WARNING = 1_500_000  # bytes: the gallery is committed, keep it light


def pick_styles(spec: str | None) -> list[tuple[str, str]]:
    """(name, title) per style: the ones named in `spec` (comma-separated), or every available style with
    its full network (a NAME-lite beside its NAME only in samples/gallery_lite.jpg: see docs/training.md)."""
    registry = StyleRegistry()
    names = [s.strip() for s in spec.split(",") if s.strip()] if spec else one_per_style(registry.names())
    if not names:
        raise NstError("no styles found; train one with `nst-video train` or name them with --styles")
    return [(name, read_info(registry.resolve(name)).title or name) for name in names]


def stylize_folder(photos: Path, style: str, out_dir: Path, max_size: int) -> None:
    """One `nst-video image` run: the whole photo folder in one style, as PNGs in `out_dir`."""
    cmd = [sys.executable, "-m", "nst_video", "image", str(photos), "-o", str(out_dir), "--style", style,
           "--max-size", str(max_size), "--format", "png"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise NstError(f"stylizing with '{style}' failed: {lines[-1]}")


def fit_label(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """The text, shortened with an ellipsis until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def assemble(rows: list[list[np.ndarray]], labels: list[str]) -> Image.Image:
    """A grid: one row per photo, one column per label, each image centred in its cell, labels on top."""
    cell_w = max(img.shape[1] for row in rows for img in row)
    heights = [max(img.shape[0] for img in row) for row in rows]
    width = len(labels) * cell_w + (len(labels) + 1) * GAP
    height = LABEL_HEIGHT + sum(heights) + (len(rows) + 1) * GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=FONT_SIZE)
    for c, label in enumerate(labels):
        x = GAP + c * (cell_w + GAP)
        draw.text((x + cell_w / 2, LABEL_HEIGHT / 2 + GAP / 2), fit_label(draw, label, font, cell_w - 8),
                  font=font, fill=TEXT, anchor="mm")
    y = LABEL_HEIGHT + GAP
    for row, row_h in zip(rows, heights, strict=True):
        for c, img in enumerate(row):
            x = GAP + c * (cell_w + GAP)
            grid.paste(Image.fromarray(img), (x + (cell_w - img.shape[1]) // 2, y + (row_h - img.shape[0]) // 2))
        y += row_h + GAP
    return grid


def build(photos: Path, styles: list[tuple[str, str]], out: Path, max_size: int) -> Image.Image:
    files = expand_inputs([str(photos)])
    if out.resolve().is_relative_to(photos.resolve()):
        raise NstError(f"{out} is inside the photo folder {photos}; it would become a photo itself")
    originals = [load_image(f, max_size=max_size).rgb for f in files]
    rows = [[img] for img in originals]
    with tempfile.TemporaryDirectory(prefix="nst-gallery-") as tmp, progress_bar("styles/s") as progress:
        task = progress.add_task("stylizing", total=len(styles), status="")
        for i, (name, _) in enumerate(styles):
            progress.update(task, status=name)
            out_dir = Path(tmp) / str(i)
            stylize_folder(photos, name, out_dir, max_size)
            for row, f in zip(rows, files, strict=True):
                styled = out_dir / f.relative_to(photos).with_suffix(".png")
                with Image.open(styled) as im:
                    im = im.convert("RGB")
                    size = (row[0].shape[1], row[0].shape[0])
                    row.append(np.asarray(im if im.size == size else im.resize(size, Image.Resampling.LANCZOS)))
            progress.advance(task)
    grid = assemble(rows, ["original"] + [title for _, title in styles])
    with atomic_output(out) as tmp_out:
        grid.save(tmp_out, format="JPEG", quality=85, optimize=True)
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--styles", help="comma-separated style names (default: every style `nst-video styles` "
                                         "lists)")
    parser.add_argument("--photos", type=Path, default=ROOT / "samples" / "photos", help="folder of photos")
    parser.add_argument("--out", type=Path, default=ROOT / "samples" / "gallery.jpg", help="gallery image (JPEG)")
    parser.add_argument("--max-size", type=int, default=384, help="long side of each picture (default 384)")
    args = parser.parse_args(argv)
    try:
        if args.max_size < 8:
            raise NstError("--max-size must be at least 8")
        if not args.photos.is_dir():
            raise NstError(f"{args.photos}: not a folder of photos")
        grid = build(args.photos, pick_styles(args.styles), args.out, args.max_size)
    except NstError as e:
        print(f"make_gallery: error: {e}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({grid.width}x{grid.height}, {size / 1e6:.2f} MB)")
    if size > SIZE_WARNING:
        print(f"make_gallery: note: over {SIZE_WARNING / 1e6:.1f} MB; try a smaller --max-size", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
