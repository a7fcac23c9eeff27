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
Then the stream alone (no network in the way): the clip's own frames handed to the stream at 30 fps, sent ->
received, which shows what the stream costs at the rate a camera delivers. Last, a receiver that stalls (the stream's
writer blocked for 2 s while frames keep coming at 30 fps): how long the live loop's send() takes, and
how many frames are dropped instead.
The demuxer holds each frame until the next one begins (MPEG-TS video has no length), so "received" includes
about one frame interval that a player pays too (the H.264 parser waits for the next frame's start). Frames
captured before the receiver had decoded its first frame are left out: they waited for it to probe the
stream, as a player joining does once."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_webcam import cpu_name  # noqa: E402  (one way of naming the CPU for every benchmark)


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
          f"{args.frames} frames; load average {os.getloadavg()[0]:.1f} (other jobs share these cores)")
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
    stream_alone(source_frames(args.frames, webcam_loop.parse_size(args.size)))
    stalled_receiver(source_frames(90, webcam_loop.parse_size(args.size)))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def source_frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    import cv2
    from bench_webcam import SHARED_CLIP

    from nst_video.camera import to_rgb
    capture = cv2.VideoCapture(str(SHARED_CLIP))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            if not frames:  # no shared clip: a moving pattern
                yy, xx = np.mgrid[0:size[1], 0:size[0]]
                return [np.stack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, (xx + yy) % 256], 2).astype(np.uint8)
                        for i in range(count)]
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(to_rgb(bgr, size))
    return frames


def stream_alone(frames: list[np.ndarray], fps: float = 30.0) -> None:
    from nst_video.stream_out import StreamOutput, check_stream_url
    from tests.stream_media import UdpReceiver

    finished = threading.Event()
    receiver = UdpReceiver(done=finished.is_set)
    size = frames[0].shape[1::-1]
    output = StreamOutput(check_stream_url(receiver.url), size)
    start = time.monotonic()
    for i, rgb in enumerate(frames):
        time.sleep(max(0.0, start + i / fps - time.monotonic()))
        output.send(rgb, time.monotonic())
    print(output.close())
    finished.set()
    received = receiver.join()
    base = output._start  # the first frame's capture time: the stream's time 0
    kept = [f for f in received if base + f.time >= received[0].arrived]  # sent after the receiver's probe
    own = [1000 * (f.arrived - (base + f.time)) for f in kept[:-1]]  # the last one waits for the end instead
    print(f"stream alone, {size[0]}x{size[1]} at {fps:.0f} fps: {len(received)} of {len(frames)} frames "
          f"received; sent -> received {stats(own)} (median / p90 / max; one frame interval, "
          f"{1000 / fps:.0f} ms, is the receiver's parser waiting for the next frame)")


def stalled_receiver(frames: list[np.ndarray], fps: float = 30.0, stall_s: float = 2.0) -> None:
    from nst_video.stream_out import StreamOutput, check_stream_url
    from tests.stream_media import UdpReceiver

    finished = threading.Event()
    receiver = UdpReceiver(done=finished.is_set)
    output = StreamOutput(check_stream_url(receiver.url), frames[0].shape[1::-1])
    write, unblock = output._encoder.write, threading.Event()

    def stalled_write(rgb, pts):  # the first frame's write blocks, as a full socket buffer or dead TCP peer does
        unblock.wait(stall_s)
        unblock.set()  # then the receiver is back
        write(rgb, pts)
    output._encoder.write = stalled_write
    start, waits = time.monotonic(), []
    for i, rgb in enumerate(frames):
        time.sleep(max(0.0, start + i / fps - time.monotonic()))
        before = time.perf_counter()
        output.send(rgb, time.monotonic())
        waits.append(1000 * (time.perf_counter() - before))
    print(output.close())
    finished.set()
    receiver.join()
    print(f"stalled receiver ({stall_s:.0f} s, {len(frames)} frames at {fps:.0f} fps): send() took "
          f"{np.median(waits):.3f} / {max(waits):.3f} ms (median / max); {output.dropped} frames dropped, "
          f"{output.sent} sent")


if __name__ == "__main__":
    sys.exit(main())
