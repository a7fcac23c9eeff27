"""The networks alone: milliseconds per frame of each style network, precision and size, on the CPU runtime the
webcam uses. Rounds are interleaved (every case once per round), so a busy machine slows all cases alike;
min and median over the rounds are printed.

    python benchmarks/bench_networks.py                                    # mosaic-lite, mosaic-fast; fp32, auto
    python benchmarks/bench_networks.py --styles mosaic-fast --precisions fp32,bf16 --sizes 640x480 --rounds 20
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))

from bench_webcam import cpu_name  # noqa: E402

from nst_video.stylizer import Stylizer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default="mosaic-lite,mosaic-fast")
    ap.add_argument("--precisions", default="fp32,auto")
    ap.add_argument("--sizes", default="640x480,320x240")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} cores visible; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    stylizers = {(style, precision): Stylizer.from_style(style, device="cpu", backend=args.backend,
                                                         threads=args.threads, precision=precision)
                 for style in args.styles.split(",") for precision in args.precisions.split(",")}
    frames = {}
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        frames[size] = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    times: dict = {(key, size): [] for key in stylizers for size in frames}
    for key, size in times:  # warm-up: compile/load the graph for each shape
        stylizers[key].stylize_tensor(frames[size])
    for _ in range(args.rounds):
        for (key, size), spent in times.items():
            start = time.perf_counter()
            stylizers[key].stylize_tensor(frames[size])
            spent.append((time.perf_counter() - start) * 1000)
    print("\n| network | runtime | size | min ms | median ms | frames/s (median) |\n|---|---|---|---|---|---|")
    for ((style, _), size), spent in times.items():
        backend = stylizers[(style, _)].backend
        median = float(np.median(spent))
        print(f"| {style} | {backend} | {size} | {min(spent):.1f} | {median:.1f} | {1000 / median:.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
