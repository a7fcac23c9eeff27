"""Measure each style on photos it never saw: the Gram style loss of the output against the style image and
the content loss against the photo, beside the same figures for the unstylized photo.

    python scripts/evaluate_styles.py --vgg-weights ../shared/data/vgg/vgg16_to_relu4_3_fp16.pth \
        --styles-dir ../shared/data/styles

Losses are unweighted (content: relu2_2 MSE; style: sum over relu1_2..relu4_3 of Gram MSE, x1e5 for
readability, the default --style-weight), photos capped at --max-size on the long side, style image at 256.
A lite style (NAME-lite) is also compared with its full style: the ratios of its style and content losses to
the full style's (the targets for a distilled style: style within 1.15x, content within 1.3x).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from nst_video.images import expand_inputs, load_image
from nst_video.styles import StyleRegistry
from nst_video.stylizer import Stylizer, frames_to_tensor
from nst_video.training.data import load_rgb_tensor
from nst_video.training.loss_net import PerceptualLoss, load_vgg_weights

ROOT = Path(__file__).resolve().parent.parent
STYLE_IMAGE_DIRS = [ROOT / "samples" / "styles", ROOT.parent / "shared" / "data" / "styles"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgg-weights", required=True)
    ap.add_argument("--photos", type=Path, default=ROOT / "samples" / "photos")
    ap.add_argument("--max-size", type=int, default=384)
    ap.add_argument("--style-size", type=int, default=256)
    ap.add_argument("--styles", help="comma-separated style names (default: every installed one)")
    args = ap.parse_args()

    loss_net = measuring_loss(args.vgg_weights)
    photos = [load_image(p, max_size=args.max_size).rgb for p in expand_inputs([str(args.photos)])]
    table = Table("style", "network", "style loss: photo", "style loss: output", "content loss: photo",
                  "content loss: output", "style vs full", "content vs full", box=None)
    registry = StyleRegistry()
    wanted = set(args.styles.split(",")) if args.styles else None
    results: dict[str, dict[str, float]] = {}
    for info in sorted(registry.available(), key=lambda i: (i.key.endswith("-lite"), i.key)):  # full ones first
        if wanted and info.key not in wanted:
            continue
        style_path = find_style_image(info.training.get("style_image", ""))
        if style_path is None:
            print(f"{info.name}: style image {info.training.get('style_image')!r} not found; skipped")
            continue
        loss_net.set_style(load_rgb_tensor(style_path, max_size=args.style_size)[None])
        stylizer = Stylizer.from_style(str(info.path), device="cpu", backend="torch")
        sums = {"sp": 0.0, "so": 0.0, "cp": 0.0, "co": 0.0}
        with torch.no_grad():
            for rgb in photos:
                photo = frames_to_tensor([rgb])
                styled = frames_to_tensor(stylizer.stylize([rgb]))
                unstyled = loss_net(photo, photo)
                out = loss_net(styled, photo)
                sums["sp"] += unstyled["style"].item()
                sums["so"] += out["style"].item()
                sums["cp"] += unstyled["content"].item()
                sums["co"] += out["content"].item()
        n = len(photos)
        results[info.key] = {k: v / n for k, v in sums.items()}
        full = results.get(info.key.removesuffix("-lite")) if info.key.endswith("-lite") else None
        ratios = [f"{results[info.key][k] / full[k]:.2f}x" for k in ("so", "co")] if full else ["", ""]
        table.add_row(info.key, info.architecture, *(f"{sums[k] / n:.3g}" for k in ("sp", "so", "cp", "co")), *ratios)
    Console(width=160).print(table)


def measuring_loss(vgg_weights) -> PerceptualLoss:
    """The losses reported here (and by benchmarks/bench_temporal.py): content and style unweighted, style
    x1e5 for readability, no TV term."""
    return PerceptualLoss(load_vgg_weights(vgg_weights), 1.0, 1e5, 0.0)


def find_style_image(name: str) -> Path | None:
    """The training records the style image's file name; look for it where the bundled styles came from."""
    return next((folder / name for folder in STYLE_IMAGE_DIRS if name and (folder / name).is_file()), None)


if __name__ == "__main__":
    main()
