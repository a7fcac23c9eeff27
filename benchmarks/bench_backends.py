"""CPU runtimes side by side, in one run: the full network through the Stylizer on each installed backend.

    python benchmarks/bench_backends.py                        # 640x480 and 1280x720, every installed backend
    python benchmarks/bench_backends.py --threads 1 --frames 3  # fewer cores, a quicker run
    python benchmarks/bench_backends.py --candidates            # lite network candidates on the auto backend

Columns per size:
  ms/frame   median wall time of Stylizer.stylize on one frame (uint8 in, uint8 out: everything the app pays)
  fps        1000 / ms
  vs torch   speed-up over PyTorch eager (the target for `auto`: >= 1.5x)
  MAE        mean absolute difference from PyTorch eager's output on the sample photos, in 0..255 levels
             (the target: < 1)
  setup      seconds to get the network ready: exporting and compiling the graph on the first run
             (cold: empty cache) and loading it from the user cache on later runs (warm)
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nst_video.images import load_image  # noqa: E402
from nst_video.runtimes import BACKENDS, choose_backend, installed  # noqa: E402
from nst_video.styles import StyleRegistry  # noqa: E402
from nst_video.stylizer import Stylizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}


def photos_at(width: int, height: int) -> list[np.ndarray]:
    import cv2
    out = []
    for path in sorted((ROOT / "samples" / "photos").iterdir()):
        if path.suffix.lower() in (".jpg", ".png"):
            out.append(cv2.resize(load_image(path).rgb, (width, height), interpolation=cv2.INTER_AREA))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="mosaic")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--frames", type=int, default=5, help="timed frames per backend and size (after one warm-up)")
    ap.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    ap.add_argument("--network", default=None, help="style file or name to time instead of --style (e.g. a lite one)")
    ap.add_argument("--candidates", action="store_true",
                    help="time the candidate lite architectures (random weights) at the first size instead")
    args = ap.parse_args()
    if args.candidates:
        return time_candidates(args)

    backends = [b for b in BACKENDS if b != "auto" and installed(b)]
    auto = choose_backend("auto", torch.device("cpu"))
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible; "
          f"threads: {args.threads or 'all'}; torch {torch.__version__}; style {args.network or args.style}; "
          f"auto = {auto}")
    info, model = StyleRegistry().load(args.network or args.style)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NST_VIDEO_CACHE"] = cache  # cold first, then warm: both are printed
        stylizers, setup = {}, {}
        for backend in backends:
            started = time.perf_counter()
            Stylizer(model, device="cpu", backend=backend, threads=args.threads)
            cold = time.perf_counter() - started
            started = time.perf_counter()
            stylizers[backend] = Stylizer(model, device="cpu", backend=backend, threads=args.threads)
            setup[backend] = (cold, time.perf_counter() - started)
        print("\n| size | backend | ms/frame | fps | vs torch | MAE vs torch | setup cold / warm (s) |")
        print("|---|---|---|---|---|---|---|")
        for size in args.sizes.split(","):
            w, h = SIZES.get(size) or tuple(int(v) for v in size.split("x"))
            photos = photos_at(w, h)
            reference = stylizers["torch"].stylize(photos)
            times = {}
            for backend, stylizer in stylizers.items():
                outputs = stylizer.stylize(photos)  # warm-up, and the outputs to compare
                samples = []
                for i in range(args.frames):
                    started = time.perf_counter()
                    stylizer.stylize([photos[i % len(photos)]])
                    samples.append(time.perf_counter() - started)
                times[backend] = float(np.median(samples))
                mae = np.mean([np.abs(o.astype(np.float32) - r).mean()
                               for o, r in zip(outputs, reference, strict=True)])
                cold, warm = setup[backend]
                label = f"**{backend}** (auto)" if backend == auto else backend
                print(f"| {w}x{h} | {label} | {1000 * times[backend]:.0f} | {1 / times[backend]:.2f} | "
                      f"{times['torch'] / times[backend]:.2f}x | {mae:.3f} | {cold:.1f} / {warm:.2f} |", flush=True)
    return 0


# (widths, residual blocks): Johnson's network, and the smaller ones considered for the lite architecture
CANDIDATES = {"johnson (32, 64, 128) x5": ((32, 64, 128), 5), "half width x5 = lite": ((16, 32, 64), 5),
              "half width x3": ((16, 32, 64), 3), "quarter width x3": ((8, 16, 32), 3),
              "three-quarter width x4": ((24, 48, 96), 4)}


def time_candidates(args) -> int:
    from nst_video.model import TransformerNet
    w, h = SIZES.get(args.sizes.split(",")[0]) or tuple(int(v) for v in args.sizes.split(",")[0].split("x"))
    frame = photos_at(w, h)[0]
    auto = choose_backend("auto", torch.device("cpu"))
    print(f"candidate networks at {w}x{h} on {auto} (random weights; speed does not depend on them)\n")
    print("| network | parameters | ms/frame | fps |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NST_VIDEO_CACHE"] = cache
        for name, (widths, blocks) in CANDIDATES.items():
            torch.manual_seed(0)
            model = TransformerNet(widths, blocks)
            stylizer = Stylizer(model, device="cpu", backend="auto", threads=args.threads)
            stylizer.stylize([frame])
            samples = []
            for _ in range(args.frames):
                started = time.perf_counter()
                stylizer.stylize([frame])
                samples.append(time.perf_counter() - started)
            ms = 1000 * float(np.median(samples))
            print(f"| {name} | {sum(p.numel() for p in model.parameters()):,} | {ms:.1f} | {1000 / ms:.1f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
