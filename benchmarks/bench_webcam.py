"""The live webcam, measured as a user runs it: `nst-video webcam --no-window` with a 30 fps clip standing in
for the camera, at 640x480, for each style, backend and precision asked for. Prints FPS, latency (capture to
output), network time per frame and the paint size, from the session's own summary line.

    python benchmarks/bench_webcam.py                                   # mosaic and mosaic-lite, auto backend
    python benchmarks/bench_webcam.py --styles udnie,udnie-lite --backends auto,torch --frames 120
    python benchmarks/bench_webcam.py --styles mosaic-lite,mosaic-fast --precisions fp32,auto --adaptive

--adaptive: each case runs twice: first as the webcam starts by default (the paint size chosen to hold 30
fps, for --settle-frames), then with --paint-size pinned at the size it settled on, for steady figures.
Without it the network paints at the full size (--paint-size = --size).

The clip is ../shared/data/videos/friday__mdn-cc0.mp4 (640x480, 30 fps) where present, played --loops times
in a row, else a generated 30 fps clip. The camera stand-in delivers frames at the clip's own rate, so 30 FPS
is the ceiling.
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
PAINT = re.compile(r"paint (\d+x\d+) -> ")
SUMMARY = re.compile(r"summary: (\d+) frames, ([\d.]+) fps average, latency (\d+) ms .*network (\d+) ms/frame")


def clip(folder: Path, seconds: float, loops: int = 1) -> Path:
    from nst_video.video_io import VideoSink, VideoSource
    path = folder / "clip.mp4"
    if SHARED_CLIP.is_file():
        if loops == 1:
            return SHARED_CLIP
        with VideoSource(SHARED_CLIP) as source:
            frames = [frame.rgb for frame in source]
        h, w = frames[0].shape[:2]
        with VideoSink(path, w, h, Fraction(1, 30), Fraction(30), preset="ultrafast", crf=12) as sink:
            for i, rgb in enumerate(frames * loops):
                sink.write(rgb, i)
        return path
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
    ap.add_argument("--precisions", default="auto", help="comma-separated: auto, fp32, bf16")
    ap.add_argument("--adaptive", action="store_true", help="let the paint size settle, then measure it pinned")
    ap.add_argument("--settle-frames", type=int, default=300, help="frames of the adaptive run (10 s at 30 fps)")
    ap.add_argument("--loops", type=int, default=3, help="times the shared clip is played in a row")
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores visible; size {args.size}; {args.frames} frames per run"
          f"{f' after {args.settle_frames} adaptive frames' if args.adaptive else ''}; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        source = clip(Path(tmp), seconds=(args.frames + args.settle_frames) / 30 + 10, loops=args.loops)
        print(f"camera stand-in: {SHARED_CLIP.name if SHARED_CLIP.is_file() else source.name}"
              f"{f' x{args.loops}' if args.loops > 1 and SHARED_CLIP.is_file() else ''}\n")
        print("| style | backend | paint | FPS | latency (ms) | network (ms/frame) | adaptive run: FPS |")
        print("|---|---|---|---|---|---|---|")
        for style in args.styles.split(","):
            for backend in args.backends.split(","):
                for precision in args.precisions.split(","):
                    base = [sys.executable, "-m", "nst_video", "webcam", "--camera", str(source), "--no-window",
                            "--size", args.size, "--styles", style, "--backend", backend, "--device", "cpu",
                            "--precision", precision, "--full"]
                    if args.threads:
                        base += ["--threads", str(args.threads)]
                    paint, adaptive_fps = args.size, ""
                    if args.adaptive:
                        run = webcam_run(base + ["--max-frames", str(args.settle_frames)])
                        if isinstance(run, str):
                            print(f"| {style} | {backend} {precision} | failed: {run} | | | | |")
                            continue
                        paint, adaptive_fps = run["paint"], f"{run['fps']:.1f}"
                    run = webcam_run(base + ["--max-frames", str(args.frames), "--paint-size", paint])
                    if isinstance(run, str):
                        print(f"| {style} | {backend} {precision} | failed: {run} | | | | |")
                        continue
                    print(f"| {style} | {run['backend']} | {run['paint']} | {run['fps']:.1f} | {run['latency']} | "
                          f"{run['network']} | {adaptive_fps} |", flush=True)
    return 0


def webcam_run(cmd: list[str]) -> dict | str:
    """The figures of one webcam session from its summary line, or why it failed."""
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    match = SUMMARY.search(run.stderr)
    if run.returncode != 0 or not match:
        return str(run.stderr.strip().splitlines()[-1:])
    backend = re.search(r"style\(s\) on (.*?)(;|$)", run.stderr, re.M)
    paint = PAINT.findall(run.stderr)
    _, fps, latency, network = match.groups()
    return {"fps": float(fps), "latency": latency, "network": network, "paint": paint[-1] if paint else "?",
            "backend": backend.group(1) if backend else "?"}


def cpu_name() -> str:
    """lscpu's model name and whether the CPU has AMX / AVX512-BF16 (OpenVINO's bf16 needs one of them)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
        flags = set(open("/proc/cpuinfo").read().split())
    except Exception:
        return platform.processor() or platform.machine()
    extras = [f for f in ("amx_tile", "avx512_bf16") if f in flags]
    return f"{model} ({', '.join(extras) if extras else 'no amx_tile, no avx512_bf16'})"


if __name__ == "__main__":
    sys.exit(main())
