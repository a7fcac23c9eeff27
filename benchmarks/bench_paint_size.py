"""What painting smaller costs the picture: each lite style on real clips at 640x480, painted at each size of the
webcam's ladder and brought back up with the frame's detail (Stylizer.stylize_at, the webcam's own path),
against the same network painting at full 640x480.

    python benchmarks/bench_paint_size.py                                   # the six lite styles, three clips
    python benchmarks/bench_paint_size.py --styles mosaic-lite --frames 12 --fast   # and mosaic-fast, full size
    python benchmarks/bench_paint_size.py --fast --no-ladder                # each fast network against its lite one

Per style and paint size, as ratios to painting at full size (lower is better for all three):
  style     VGG16 Gram style loss against the painting (scripts/evaluate_styles.py's measure), every 4th frame
  content   VGG16 relu2_2 content loss against the frame, every 4th frame
  warp      the warping error of the output (--temporal 0; nst_video.temporal.warping_error)
Targets (docs/webcam.md): median over styles style <= 1.15x (none above 1.3x), content <= 1.3x, warp <= 1.2x.
Needs ../shared/data (the clips, the VGG weights and the paintings).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))
sys.path.insert(2, str(ROOT / "scripts"))

from bench_temporal import VGG, fit, load_clip, style_image_for  # noqa: E402
from bench_webcam import cpu_name  # noqa: E402
from evaluate_styles import measuring_loss  # noqa: E402

from nst_video.paint_size import ladder_sizes  # noqa: E402
from nst_video.styles import FAST_SUFFIX, StyleRegistry, base_name  # noqa: E402
from nst_video.stylizer import Stylizer, frames_to_tensor  # noqa: E402
from nst_video.temporal import warping_error  # noqa: E402
from nst_video.training.data import load_rgb_tensor  # noqa: E402

LITE_STYLES = "mosaic-lite,starry_night-lite,great_wave-lite,the_scream-lite,composition_vii-lite,udnie-lite"
CLIPS = "asl-book__intel.mkv,friday__mdn-cc0.mp4,flower__mdn-cc0.mp4"


@torch.no_grad()
def measure(loss_net, frames: list[np.ndarray], outputs: list[np.ndarray]) -> tuple[float, float, float]:
    style, content = [], []
    for frame, out in list(zip(frames, outputs, strict=True))[::4]:
        losses = loss_net(frames_to_tensor([out]), frames_to_tensor([frame]))
        style.append(losses["style"].item())
        content.append(losses["content"].item())
    return float(np.mean(style)), float(np.mean(content)), warping_error(frames, outputs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default=LITE_STYLES)
    ap.add_argument("--clips", default=CLIPS)
    ap.add_argument("--frames", type=int, default=24, help="consecutive frames per clip")
    ap.add_argument("--size", default="640x480", help="the window's size (the camera's frames)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--fast", action="store_true", help="also each style's fast network (NAME-fast) at full size")
    ap.add_argument("--no-ladder", action="store_true", help="paint at the full size only (with --fast: the fast "
                    "networks against the lite ones, without the smaller paint sizes)")
    args = ap.parse_args()
    registry = StyleRegistry()
    w, h = map(int, args.size.split("x"))
    sizes = ladder_sizes((w, h))[:1] if args.no_ladder else ladder_sizes((w, h))
    print(f"CPU: {cpu_name()}; precision {args.precision}; {args.frames} frames of each clip at {w}x{h}")
    clips = {name: [fit(f, w, h) for f in load_clip(name, args.frames, max(w, h) * 2)]
             for name in args.clips.split(",")}
    loss_net = measuring_loss(VGG)
    ratios: dict = {size: [] for size in sizes[1:]}
    print("\n| style | paint | style x | content x | warp x |\n|---|---|---|---|---|")
    for style in args.styles.split(","):
        loss_net.set_style(load_rgb_tensor(style_image_for(style), max_size=256)[None])
        stylizer = Stylizer.from_style(style, device="cpu", precision=args.precision)
        per_size = {}
        for pw, ph in sizes:
            figures = [measure(loss_net, frames, [stylizer.stylize_at(f, (ph, pw)) for f in frames])
                       for frames in clips.values()]
            per_size[(pw, ph)] = np.mean(figures, axis=0)  # mean over clips
        full = per_size[sizes[0]]
        for size in sizes[1:]:
            ratio = tuple(per_size[size] / full)
            ratios[size].append(ratio)
            print(f"| {style} | {size[0]}x{size[1]} | {ratio[0]:.2f} | {ratio[1]:.2f} | {ratio[2]:.2f} |", flush=True)
        fast = base_name(style) + FAST_SUFFIX
        if args.fast and fast in registry.names():  # the fast network at full size, against this one
            fast_stylizer = Stylizer.from_style(fast, device="cpu", precision=args.precision)
            figures = [measure(loss_net, frames, fast_stylizer.stylize(frames)) for frames in clips.values()]
            ratio = tuple(np.mean(figures, axis=0) / full)
            ratios.setdefault("fast", []).append(ratio)
            print(f"| {fast} | {w}x{h} | {ratio[0]:.2f} | {ratio[1]:.2f} | {ratio[2]:.2f} |", flush=True)
    print("\n| paint | style x median (max) | content x median (max) | warp x median (max) |\n|---|---|---|---|")
    for size, rows in ratios.items():
        cols = np.array(rows)
        cells = [f"{np.median(cols[:, i]):.2f} ({cols[:, i].max():.2f})" for i in range(3)]
        label = f"{size[0]}x{size[1]}" if size != "fast" else f"fast network at {w}x{h}"
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
