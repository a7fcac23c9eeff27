"""`video --cluster` throughput on a local Ray cluster: 2 workers x 1 thread against 1 worker x 1 thread, and
one machine (no Ray) at 1 thread, on one generated clip; and the split/join overhead as a share of the job.
Last, 1 worker again with the whole local cluster confined to one core: unconfined, one worker's decoder and
encoder threads have the second core to themselves, so "1 worker x 1 thread" is more than one core.

    python benchmarks/bench_cluster.py                       # 480p, 240 frames, mosaic
    python benchmarks/bench_cluster.py --size 240p --frames 60 --max-load 99   # a quick smoke test
    python benchmarks/bench_cluster.py --seams               # --temporal 1: the warping error at the joins

Columns:
  frames/s  frames of the clip over the job's wall-clock seconds, end to end (the cluster's start included)
  job s     wall-clock seconds of the whole job
  start s   starting the local Ray cluster and connecting to it
  split s   reading the packets and cutting the segments (the driver)
  join s    joining the encoded segments and the audio into the output (the driver)
  split+join %   their share of the job
--seams: the test clip of tests/test_cluster.py (96x64, 90 frames, a keyframe every 15; mosaic, one thread),
one machine and local:2 with --temporal 1, at --crf 0 (lossless: the stylized frames alone) and --crf 18 (the
default: an encoder's keyframe at each join too); per run, the warping error (temporal.warping_error) of each
frame pair, its average, and the pairs across the joins against the average.
The benchmark waits until the 1-minute load average is below --max-load (other work shares the machine) and
prints the load it started at and ended at.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `nst-video video` runs (cli.main says why)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # nst_video and tests (the --seams clip)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import av  # noqa: E402
from bench_video import SIZES  # noqa: E402
from bench_webcam import cpu_name  # noqa: E402

from nst_video.cluster import run_video_on_cluster  # noqa: E402
from nst_video.stylizer import StylizerSettings  # noqa: E402
from nst_video.video_job import run_video  # noqa: E402

RATE = 25


def make_input(path: Path, width: int, height: int, frames: int, keyint: int) -> Path:
    """A moving colour gradient at 25 fps with a keyframe every `keyint` frames, and a tone as its audio."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = keyint
        video.codec_context.options = {"preset": "veryfast", "crf": "20"}
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for i in range(frames):
            phase = i * 0.2
            rgb = np.stack([127 + 100 * np.sin(xx / 40 + phase), 127 + 100 * np.sin(yy / 30 - phase),
                            127 + 100 * np.sin((xx + yy) / 60 + phase / 2)], axis=2).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(44100 * frames // RATE) / 44100)).astype(np.float32)
        size = audio.codec_context.frame_size or 1024
        for start in range(0, len(samples), size):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + size], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = 44100, start, Fraction(1, 44100)
            out.mux(audio.encode(chunk))
        out.mux(audio.encode())
    return path


def load() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_load: float, patience: float) -> None:
    deadline = time.monotonic() + patience
    while load() >= max_load:
        if time.monotonic() > deadline:
            sys.exit(f"the 1-minute load stayed at or above {max_load} for {patience:.0f} s (now {load():.2f}); "
                     "not measured")
        time.sleep(15)


def seams(settings: StylizerSettings, folder: Path) -> None:
    from nst_video.temporal import warping_error
    from tests.video_media import make_clip, probe

    src = make_clip(folder / "clip.mp4", width=96, height=64, frames=90, keyint=15)
    sources = probe(src, pictures=True).pictures
    print(f"{'run':<22}{'crf':>4}{'average':>10}  joins (frame: error, x average)")
    for crf in (0, 18):
        for cluster in ("local:2", None):  # the cluster first: its plan says where the joins are
            out = folder / f"seams_{crf}_{cluster is not None}.mp4"
            if cluster:
                result = run_video_on_cluster(cluster, src, out, settings, temporal=1.0, crf=crf,
                                              show_progress=False)
                count = int(result.backend.split()[0])
            else:
                run_video(src, out, settings(), temporal=1.0, crf=crf, show_progress=False, quiet=True)
            outputs = probe(out, pictures=True).pictures
            errors = [warping_error(sources[i - 1:i + 1], outputs[i - 1:i + 1]) for i in range(1, len(outputs))]
            average = float(np.mean(errors))
            joins = [j * 90 // count for j in range(1, count)]  # the plan's equal thirds: keyframes here
            cells = ", ".join(f"{j}: {errors[j - 1]:.5f} {errors[j - 1] / average:.2f}x" for j in joins)
            print(f"{cluster or 'one machine':<22}{crf:>4}{average:>10.5f}  {cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="480p", choices=SIZES)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--keyint", type=int, default=RATE, help="frames between the clip's keyframes")
    parser.add_argument("--style", default="mosaic")
    parser.add_argument("--max-load", type=float, default=0.6)
    parser.add_argument("--patience", type=float, default=1800, help="seconds to wait for the load to drop")
    parser.add_argument("--seams", action="store_true", help="the warping error at the joins (see above)")
    parser.add_argument("--preset", default="medium", help="x264 preset of every run (the encoder's share of a "
                        "worker's core: docs/cluster.md)")
    args = parser.parse_args()

    width, height = SIZES[args.size]
    settings = StylizerSettings(args.style, threads=1)
    print(f"# bench_cluster: {' '.join(sys.argv[1:]) or '(defaults)'}")
    print(f"# CPU: {cpu_name()}, {os.cpu_count()} logical CPUs")
    if args.seams:
        with tempfile.TemporaryDirectory() as folder:
            print(f"# 1-minute load at the start: {load():.2f}")
            seams(settings, Path(folder))
            print(f"# 1-minute load at the end: {load():.2f}")
        return 0
    print(f"# clip: {args.size} ({width}x{height}), {args.frames} frames at {RATE} fps, a keyframe every "
          f"{args.keyint}, AAC audio; style {args.style}; each worker 1 thread; H.264 CRF 18 {args.preset}")
    with tempfile.TemporaryDirectory() as folder:
        src = make_input(Path(folder) / "in.mp4", width, height, args.frames, args.keyint)
        wait_for_quiet(args.max_load, args.patience)
        print(f"# 1-minute load at the start: {load():.2f}")
        print(f"{'run':<28}{'frames/s':>10}{'job s':>9}{'start s':>9}{'split s':>9}{'join s':>8}"
              f"{'split+join %':>14}")
        figures = {}
        started = time.perf_counter()
        one = run_video(src, Path(folder) / "one.mp4", settings(), preset=args.preset, show_progress=False,
                        quiet=True)
        seconds = time.perf_counter() - started
        figures["one"] = one.frames / seconds
        print(f"{'one machine, 1 thread':<28}{figures['one']:>10.2f}{seconds:>9.1f}{'-':>9}{'-':>9}{'-':>8}"
              f"{'-':>14}")
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        # The last run: one worker confined to one core, Ray's processes too (they inherit the driver's
        # affinity). Unconfined, one worker's decoder and encoder threads use the idle second core.
        for workers, confined in ((1, False), (2, False), (1, True)):
            if confined and len(cores) < 2:
                continue
            timings: dict[str, float] = {}
            if confined:
                os.sched_setaffinity(0, {min(cores)})
            try:
                started = time.perf_counter()
                result = run_video_on_cluster(f"local:{workers}", src, Path(folder) / f"c{workers}.mp4", settings,
                                              preset=args.preset, show_progress=False, timings=timings)
                seconds = time.perf_counter() - started
            finally:
                if confined:
                    os.sched_setaffinity(0, cores)
            assert result.frames == args.frames, result
            figures[workers, confined] = result.frames / seconds
            share = 100 * (timings["split"] + timings["join"]) / seconds
            name = f"local:{workers}{', one core' if confined else ''} ({result.backend.split(',')[0]})"
            print(f"{name:<28}{figures[workers, confined]:>10.2f}{seconds:>9.1f}{timings['connect']:>9.1f}"
                  f"{timings['split']:>9.2f}{timings['join']:>8.2f}{share:>14.2f}")
        two = figures[2, False]
        print(f"# speed-up, 2 workers x 1 thread over 1 worker x 1 thread: {two / figures[1, False]:.2f}x "
              f"(over one machine at 1 thread: {two / figures['one']:.2f}x)")
        if (1, True) in figures:
            print(f"# over 1 worker x 1 thread confined to one core: {two / figures[1, True]:.2f}x")
        print(f"# 1-minute load at the end: {load():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
