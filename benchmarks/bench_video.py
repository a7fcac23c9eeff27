"""Video-file throughput: the network alone, the whole file pipeline, and a naive frame-by-frame loop, in one run.

    python benchmarks/bench_video.py                  # 480p, 720p, 1080p (+ 2160p and --fp16 on a GPU)
    python benchmarks/bench_video.py --quick          # small sizes, few frames: a smoke test of the figures

Columns (frames per second, higher is better):
  network   Stylizer.stylize_stream on frames already decoded in memory (on CUDA: with its uploads/downloads)
  file      `nst-video video` end to end: decode thread -> Stylizer -> encode thread, H.264 CRF 18 medium
  overhead  file time per frame over network time per frame, minus 1 (the target on the CPU: within 10%)
  naive     decode one frame, numpy -> float tensor, fp32 forward, back to the CPU, encode; one at a time
  speed-up  file / naive
The input clips are generated (a moving gradient), so every size runs on any machine. The weights are random
unless --style is given: the speed does not depend on them.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nst_video.model import TransformerNet  # noqa: E402
from nst_video.stylizer import Stylizer, frames_to_tensor, tensor_to_frames  # noqa: E402
from nst_video.video_io import VideoSink, VideoSource  # noqa: E402
from nst_video.video_job import run_video  # noqa: E402

SIZES = {"144p": (256, 144), "240p": (426, 240), "360p": (640, 360), "480p": (854, 480), "720p": (1280, 720),
         "1080p": (1920, 1080), "2160p": (3840, 2160)}


def make_input(path: Path, width: int, height: int, frames: int) -> Path:
    """A clip of a moving colour gradient at 25 fps (fast to encode: ultrafast)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with VideoSink(path, width, height, Fraction(1, 25), Fraction(25), preset="ultrafast") as sink:
        for i in range(frames):
            phase = i * 0.2
            rgb = np.stack([127 + 100 * np.sin(xx / 40 + phase), 127 + 100 * np.sin(yy / 30 - phase),
                            127 + 100 * np.sin((xx + yy) / 60 + phase / 2)], axis=2)
            sink.write(rgb.astype(np.uint8), i)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    with VideoSource(path) as source:
        return [frame.rgb for frame in source]


def make_model(style: str | None) -> TransformerNet:
    if style:
        from nst_video.styles import StyleRegistry
        return StyleRegistry().load(style)[1]
    torch.manual_seed(0)
    return TransformerNet()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def network_fps(stylizer: Stylizer, frames: list[np.ndarray]) -> float:
    batches = [frames[i:i + stylizer.batch_size] for i in range(0, len(frames), stylizer.batch_size)]
    for _ in stylizer.stylize_stream(batches[:1]):  # warm-up: cuDNN algorithm choice, allocator, threads
        pass
    sync(stylizer.device)
    start = time.perf_counter()
    count = sum(len(batch) for batch in stylizer.stylize_stream(batches))
    sync(stylizer.device)
    return count / (time.perf_counter() - start)


def file_fps(stylizer: Stylizer, src: Path, dst: Path) -> float:
    result = run_video(src, dst, stylizer, show_progress=False, quiet=True)
    return result.frames / result.elapsed


@torch.inference_mode()
def naive_fps(model: TransformerNet, device: torch.device, src: Path, dst: Path) -> float:
    """The loop most examples write: one frame at a time, fp32, everything in one thread."""
    model = model.to(device).eval()
    start = time.perf_counter()
    count = 0
    with VideoSource(src) as source:
        info = source.info
        with VideoSink(dst, info.width, info.height, info.time_base, info.frame_rate) as sink:
            for frame in source:
                y = model(frames_to_tensor([frame.rgb]).to(device))
                sink.write(tensor_to_frames(y.cpu())[0], frame.pts, frame.duration)
                count += 1
    return count / (time.perf_counter() - start)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {torch.get_num_threads()} torch threads"


def bench(args) -> None:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    sizes = args.sizes or (("480p", "720p") if args.quick and gpu else ("144p", "240p") if args.quick else
                           ("480p", "720p", "1080p", "2160p") if gpu else ("480p", "720p", "1080p"))
    frames = args.frames or ((30 if args.quick else 120) if gpu else (6 if args.quick else 12))
    precisions = ("fp32", "fp16") if gpu else ("fp32",)
    print(f"device: {device_name(device)}; torch {torch.__version__}; {frames} frames per run; "
          f"batch size {args.batch_size}")
    if not gpu:
        print("(--fp16 is GPU-only. CPU figures on a shared machine are noisy.)")
    header = f"{'size':>6} {'fp16':>5} {'network':>9} {'file':>9} {'overhead':>9} {'naive':>9} {'speed-up':>9}"
    shown = False
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            width, height = SIZES[size]
            src = make_input(Path(tmp) / f"{size}.mp4", width, height, frames)
            decoded = decode_all(src)
            naive = naive_fps(make_model(args.style), device, src, Path(tmp) / "naive.mp4")
            for precision in precisions:
                stylizer = Stylizer(make_model(args.style), device=str(device), fp16=precision == "fp16",
                                    batch_size=args.batch_size)
                if not shown:  # the runtime the Stylizer picked (on the CPU: OpenVINO where it is installed)
                    print(f"network and file: the Stylizer on {stylizer.backend}; naive: torch, FP32")
                    print(header)
                    print("-" * len(header))
                    shown = True
                net = network_fps(stylizer, decoded)
                whole = file_fps(stylizer, src, Path(tmp) / "out.mp4")
                fp16 = "yes" if precision == "fp16" else "no"
                print(f"{size:>6} {fp16:>5} {net:9.2f} {whole:9.2f} {net / whole - 1:+9.1%} {naive:9.2f} "
                      f"{whole / naive:8.2f}x", flush=True)
                del stylizer
                if gpu:
                    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few frames")
    parser.add_argument("--sizes", type=lambda s: s.split(","), help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--frames", type=int, help="frames per run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--style", help="a style name or file (default: random weights)")
    args = parser.parse_args()
    bench(args)


if __name__ == "__main__":
    main()
