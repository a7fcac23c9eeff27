"""What `--precision int8` costs the picture and saves in time: each network's INT8 graph (NNCF's post-training
quantisation, nst_video/runtimes/quantize.py) against the same network in FP32, on real clips at 640x480.

    python benchmarks/bench_int8.py                                   # the six fast networks, three clips
    python benchmarks/bench_int8.py --styles mosaic-lite,udnie-lite --frames 12
    python benchmarks/bench_int8.py --styles mosaic-fast,mosaic-lite,mosaic --time-only --repeats 20   (quiet machine)

Per network, as ratios INT8 / FP32 (lower is better for all three):
  style     VGG16 Gram style loss against the painting, every 4th frame (bench_paint_size.measure)
  content   VGG16 relu2_2 content loss against the frame, every 4th frame
  warp      the warping error of the output (--temporal 0): the flicker quantisation adds
and each precision's time for one 640x480 frame (median of --repeats, the network alone; take it on a quiet
machine). The bar for keeping an INT8 network (docs/cpu-runtimes.md): warp <= 1.1x, style <= 1.05x.
Needs ../shared/data (the clips, the VGG weights and the paintings) and NNCF (pip install 'nst-video[int8]').
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as nst-video runs OpenVINO (cli.main says why)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))
sys.path.insert(2, str(ROOT / "scripts"))

from bench_paint_size import CLIPS, measure  # noqa: E402
from bench_temporal import VGG, fit, load_clip, style_image_for  # noqa: E402
from bench_webcam import cpu_name  # noqa: E402
from evaluate_styles import measuring_loss  # noqa: E402

from nst_video.stylizer import Stylizer  # noqa: E402
from nst_video.training.data import load_rgb_tensor  # noqa: E402

FAST_STYLES = "mosaic-fast,starry_night-fast,great_wave-fast,the_scream-fast,composition_vii-fast,udnie-fast"


def frame_ms(stylizer: Stylizer, frame: np.ndarray, repeats: int) -> float:
    stylizer.stylize([frame])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        stylizer.stylize([frame])
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default=FAST_STYLES)
    ap.add_argument("--clips", default=CLIPS)
    ap.add_argument("--frames", type=int, default=24, help="consecutive frames per clip")
    ap.add_argument("--repeats", type=int, default=10, help="timed frames per precision")
    ap.add_argument("--time-only", action="store_true", help="the times alone (on one clip's first frame)")
    args = ap.parse_args()
    w, h = 640, 480
    print(f"CPU: {cpu_name()}; {args.frames} frames of each clip at {w}x{h}; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    clips = {name: [fit(f, w, h) for f in load_clip(name, 1 if args.time_only else args.frames, 1280)]
             for name in args.clips.split(",")[:1 if args.time_only else None]}
    loss_net = measuring_loss(VGG)
    print("\n| network | style x | content x | warp x | FP32 ms | INT8 ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for style in args.styles.split(","):
        loss_net.set_style(load_rgb_tensor(style_image_for(style), max_size=256)[None])
        figures, ms = {}, {}
        for precision in ("fp32", "int8"):
            stylizer = Stylizer.from_style(style, device="cpu", precision=precision)
            figures[precision] = np.ones(3) if args.time_only else np.mean(
                [measure(loss_net, frames, stylizer.stylize(frames)) for frames in clips.values()], axis=0)
            ms[precision] = frame_ms(stylizer, next(iter(clips.values()))[0], args.repeats)
        ratio = figures["int8"] / figures["fp32"]
        rows.append(ratio)
        quality = " - | - | - " if args.time_only else f" {ratio[0]:.2f} | {ratio[1]:.2f} | {ratio[2]:.2f} "
        print(f"| {style} |{quality}| {ms['fp32']:.1f} | {ms['int8']:.1f} | {ms['fp32'] / ms['int8']:.2f}x |",
              flush=True)
    if args.time_only:
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        return 0
    worst = np.max(rows, axis=0)
    print(f"\nworst: style {worst[0]:.2f}x, content {worst[1]:.2f}x, warp {worst[2]:.2f}x "
          f"(bar: style <= 1.05x, warp <= 1.1x); load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
