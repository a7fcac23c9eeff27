"""The live webcam, measured as a user runs it: `nst-video webcam --no-window` with a 30 fps clip standing in
for the camera, at 640x480, for each style and backend asked for. Prints FPS, latency (capture to output)
and network time per frame, from the session's own summary line.

    python benchmarks/bench_webcam.py                                   # mosaic and mosaic-lite, auto backend
    python benchmarks/bench_webcam.py --styles udnie,udnie-lite --backends auto,torch --frames 120

The clip is ../shared/data/videos/friday__mdn-cc0.mp4 (640x480, 30 fps) where present, else a generated
30 fps clip. The camera stand-in delivers frames at the clip's own rate, so 30 FPS is the ceiling.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_CLIP = ROOT.parent / "shared" / "data" / "videos" / "friday__mdn-cc0.mp4"
SUMMARY = re.compile(r"summary: (\d+) frames, ([\d.]+) fps average, latency (\d+) ms .*network (\d+) ms/frame")


def clip(folder: Path, seconds: float) -> Path:
    if SHARED_CLIP.is_file():
        return SHARED_CLIP
    from nst_video.video_io import VideoSink
    path = folder / "clip.mp4"
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    with VideoSink(path, 640, 480, Fraction(1, 30), Fraction(30), preset="ultrafast") as sink:
        for i in range(int(seconds * 30)):
            rgb = np.stack([127 + 100 * np.sin(xx / 40 + i / 5), 127 + 100 * np.sin(yy / 30 - i / 5),
                            127 + 100 * np.sin((xx + yy) / 60)], axis=2)
            sink.write(rgb.astype(np.uint8), i)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default="mosaic,mosaic-lite")
    ap.add_argument("--backends", default="auto")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible; size {args.size}; "
          f"{args.frames} frames per run")
    with tempfile.TemporaryDirectory() as tmp:
        source = clip(Path(tmp), seconds=args.frames / 30 + 10)
        print(f"camera stand-in: {source.name}\n")
        print("| style | backend | FPS | latency (ms) | network (ms/frame) |")
        print("|---|---|---|---|---|")
        for style in args.styles.split(","):
            for backend in args.backends.split(","):
                cmd = [sys.executable, "-m", "nst_video", "webcam", "--camera", str(source), "--no-window",
                       "--size", args.size, "--styles", style, "--backend", backend, "--device", "cpu",
                       "--max-frames", str(args.frames), "--full"]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                match = SUMMARY.search(run.stderr)
                if run.returncode != 0 or not match:
                    print(f"| {style} | {backend} | failed: {run.stderr.strip().splitlines()[-1:]} | | |")
                    continue
                backend_line = re.search(r"style\(s\) on (.*?)(;|$)", run.stderr, re.M)
                name = backend_line.group(1) if backend_line else backend
                frames, fps, latency, network = match.groups()
                print(f"| {style} | {name} | {float(fps):.1f} | {latency} | {network} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
