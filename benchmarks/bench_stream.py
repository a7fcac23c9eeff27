"""`nst-video webcam --stream udp://...` measured end to end: the latency from the camera's capture of a frame
to the same frame, stylized, coming out of a receiver's decoder on loopback, at 640x480.

    python benchmarks/bench_stream.py                       # mosaic-lite, 150 frames
    python benchmarks/bench_stream.py --style mosaic --frames 90 --size 640x480

The session runs in this process (the real run_webcam, a 30 fps clip standing in for the camera, no window),
so capture times and arrival times share one clock; the receiver (tests/stream_media.py: PyAV decoding
MPEG-TS from a UDP socket as a low-latency player does) runs on a thread. Printed per frame, as median / 90th
percentile / max:
  capture -> received   the whole path: camera, network, encoder, UDP, demuxer, decoder
  sent -> received      the stream's own share: from the frame handed to the stream to it being decoded
The demuxer holds each frame until the next one begins (MPEG-TS video has no length), so "received" includes
about one frame interval that a player pays too (the H.264 parser waits for the next frame's start). Frames
captured before the receiver had decoded its first frame are left out: they waited for it to probe the
stream, as a player joining does once."""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def cpu_name() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
        flags = open("/proc/cpuinfo").read()
        extras = [f for f in ("amx_tile", "avx512_bf16") if f in flags]
        return f"{name} ({', '.join(extras) or 'no AMX, no AVX512-BF16'})"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def stats(values_ms: list[float]) -> str:
    a = np.asarray(values_ms)
    return f"{np.median(a):.0f} / {np.percentile(a, 90):.0f} / {a.max():.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="mosaic-lite")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", default="640x480")
    args = ap.parse_args()

    from bench_webcam import clip  # the same 30 fps camera stand-in as the webcam benchmark

    from nst_video import stream_out, webcam_loop
    from tests.stream_media import UdpReceiver

    # What the stream was handed and when: (capture time, time handed over), per frame, in order.
    handed: list[tuple[float, float]] = []
    outputs: list = []
    send, init = stream_out.StreamOutput.send, stream_out.StreamOutput.__init__

    def logged_send(self, rgb, captured):
        handed.append((captured, time.monotonic()))
        send(self, rgb, captured)

    def kept_init(self, *a, **kw):
        init(self, *a, **kw)
        outputs.append(self)

    stream_out.StreamOutput.send, stream_out.StreamOutput.__init__ = logged_send, kept_init
    finished = threading.Event()
    receiver = UdpReceiver(done=finished.is_set)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores visible; size {args.size}; style {args.style}; "
          f"{args.frames} frames")
    with tempfile.TemporaryDirectory() as tmp:
        source = clip(Path(tmp), seconds=args.frames / 30 + 10)
        print(f"camera stand-in: {source.name}; stream {receiver.url}")
        opts = webcam_loop.WebcamOptions(camera=str(source), size=webcam_loop.parse_size(args.size),
                                         styles=[args.style], window=False, max_frames=args.frames,
                                         stream=receiver.url)
        try:
            webcam_loop.run_webcam(opts)
        finally:
            finished.set()
        frames = receiver.join()
    output = outputs[0]
    start = output._start  # the first sent frame's capture time: the stream's time 0
    by_capture = {round((captured - start) * 1000): (captured, at) for captured, at in handed}
    whole, own = [], []
    left_out = 0
    for frame in frames:
        pts = round(frame.time * 1000)
        captured, at = by_capture[min(by_capture, key=lambda k: abs(k - pts))]  # a repeated pts moves on 1 ms
        if captured < frames[0].arrived:
            left_out += 1
            continue
        whole.append(1000 * (frame.arrived - captured))
        own.append(1000 * (frame.arrived - at))
    print(f"stream: {output.summary()}; {len(frames)} frames received, {left_out} "
          "captured before the receiver had opened the stream left out")
    print(f"capture -> received: {stats(whole)} (median / p90 / max)")
    print(f"sent -> received:    {stats(own)} (the stream's own share)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
