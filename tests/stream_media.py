"""Test and benchmark helpers for `--stream`: receivers on loopback that decode what nst-video sends (PyAV)."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import av
import numpy as np


@dataclass
class Received:
    time: float       # the frame's timestamp in the stream (s)
    arrived: float    # time.monotonic() when it came out of the decoder
    rgb: np.ndarray


class UdpReceiver:
    """MPEG-TS over UDP on 127.0.0.1, on a port the OS picks (bound before the sender starts, so nothing is
    lost and no two tests collide), decoded by PyAV on a thread as a player would. It stops when
    `done()` is true and nothing has come for `quiet` s (or nothing at all for `first_timeout` s)."""

    def __init__(self, done=lambda: False, quiet: float = 1.0, first_timeout: float = 120.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # a burst of keyframes must fit
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"udp://127.0.0.1:{self.port}"
        self.done, self.quiet, self.first_timeout = done, quiet, first_timeout
        self.frames: list[Received] = []
        self.error: BaseException | None = None
        self._buffer = b""
        self._started = time.monotonic()
        self._last_data: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self, size: int) -> bytes:  # PyAV's file-like input
        while not self._buffer:
            try:
                self._buffer = self.sock.recv(65536)
                self._last_data = time.monotonic()
            except socket.timeout:
                now = time.monotonic()
                if self._last_data is None:
                    if now - self._started > self.first_timeout:
                        return b""
                elif self.done() and now - self._last_data > self.quiet:
                    return b""
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _run(self) -> None:
        try:
            # a short probe, as a low-latency player sets it (ffplay -probesize 32768 -analyzeduration 0.1)
            with av.open(self, format="mpegts", options={"probesize": "32768", "analyzeduration": "100000"}) \
                    as container:
                stream = container.streams.video[0]
                # as a low-latency player decodes: no frame threads holding frames back
                stream.codec_context.flags |= av.codec.context.Flags.low_delay
                stream.thread_type = "SLICE"
                for frame in container.decode(stream):
                    self.frames.append(Received(float(frame.time), time.monotonic(),
                                                frame.to_ndarray(format="rgb24")))
        except av.EOFError:
            pass  # nothing arrived at all: the test says so
        except BaseException as e:
            self.error = e

    def join(self, timeout: float = 60) -> list[Received]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the receiver did not finish"
        self.sock.close()
        if self.error:
            raise self.error
        return self.frames


def luma_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of the pictures' luma (BT.709), the usual measure of a video codec's loss: H.264's 4:2:0
    halves the colour resolution, which alone keeps the RGB PSNR of a fine mosaic style near 25 dB."""
    weights = np.array([0.2126, 0.7152, 0.0722])
    mse = np.mean((a.astype(np.float64) @ weights - b.astype(np.float64) @ weights) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
