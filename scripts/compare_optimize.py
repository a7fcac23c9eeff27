"""Side by side: a photo, the optimisation-based transfer (`nst-video optimize`, Gatys et al.) with a painting,
and the bundled feed-forward style trained on the same painting (`nst-video image --style NAME`).

    python scripts/compare_optimize.py --painting ../shared/data/styles/starry_night.jpg --style starry_night \\
        --vgg-weights ../shared/data/vgg/vgg16_to_relu4_3_fp16.pth   # -> samples/optimize_vs_feedforward.jpg

Both images come from the project's own commands, at the same size (--size, the long side). `--optimized FILE`
reuses a finished `nst-video optimize` result instead of running it again (it takes minutes on a CPU). The
optimisation's own output line (size, steps, seconds, it/s) is printed, for docs/optimize.md's figures.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from nst_video.atomic import atomic_output
from nst_video.errors import NstError

ROOT = Path(__file__).resolve().parent.parent
GAP, LABEL_HEIGHT, FONT_SIZE = 6, 30, 16
BACKGROUND, TEXT = (24, 24, 24), (235, 235, 235)


def nst_video(*args: str) -> str:
    """Run the command; its stderr (the summary lines) on success, one error line otherwise."""
    result = subprocess.run([sys.executable, "-m", "nst_video", *args], capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
        raise NstError(f"nst-video {args[0]} failed: {lines[-1]}")
    return result.stderr


def compose(images: list[Image.Image], labels: list[str]) -> Image.Image:
    w, h = images[0].size
    sheet = Image.new("RGB", (len(images) * (w + GAP) + GAP, h + LABEL_HEIGHT + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=FONT_SIZE)
    for i, (im, label) in enumerate(zip(images, labels, strict=True)):
        x = GAP + i * (w + GAP)
        draw.text((x + w / 2, LABEL_HEIGHT / 2), label, font=font, fill=TEXT, anchor="mm")
        sheet.paste(im.convert("RGB").resize((w, h), Image.Resampling.LANCZOS), (x, LABEL_HEIGHT))
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=ROOT / "samples" / "photos" / "raccoon.jpg")
    ap.add_argument("--painting", type=Path, required=True)
    ap.add_argument("--style", required=True, help="the bundled style trained on --painting")
    ap.add_argument("--vgg-weights")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--optimized", type=Path, help="a finished `nst-video optimize` result to reuse")
    ap.add_argument("--out", type=Path, default=ROOT / "samples" / "optimize_vs_feedforward.jpg")
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            optimized = args.optimized
            if optimized is None:
                optimized = Path(tmp) / "optimized.png"
                extra = ["--vgg-weights", args.vgg_weights] if args.vgg_weights else []
                print(nst_video("optimize", str(args.photo), str(args.painting), str(optimized), "--size",
                                str(args.size), "--steps", str(args.steps), *extra).strip().splitlines()[-1])
            feedforward = Path(tmp) / "feedforward.png"
            nst_video("image", str(args.photo), str(feedforward), "--style", args.style, "--max-size", str(args.size))
            photo = Image.open(args.photo)
            photo.thumbnail((args.size, args.size), Image.Resampling.LANCZOS)
            sheet = compose([photo, Image.open(optimized), Image.open(feedforward)],
                            ["photo", f"optimize ({args.painting.stem})", f"feed-forward --style {args.style}"])
            with atomic_output(args.out) as part:
                sheet.save(part, format="JPEG", quality=80)
    except NstError as e:
        sys.exit(f"compare_optimize: error: {e}")
    print(f"wrote {args.out} ({sheet.width}x{sheet.height}, {args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
