"""For the web tests: the real `nst-video serve` in a subprocess on a free port, a small HTTP client
(http.client: full control over headers and bodies), and media the tests make themselves."""
from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from nst_video.video_io import VideoSink

START_TIMEOUT = 240  # seconds: importing torch and loading a style on 2 busy cores


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.body))


class Server:
    """`python -m nst_video serve --port 0 ARGS` with its own TMPDIR (to check that it cleans up)."""

    def __init__(self, args: list[str], env: dict[str, str], tmpdir: Path):
        self.tmpdir = Path(tmpdir)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        env = dict(env, TMPDIR=str(self.tmpdir), PYTHONUNBUFFERED="1", COLUMNS="200")
        env.pop("NST_VIDEO_DEBUG", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "nst_video", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.url: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"server did not start (exit {self.proc.poll()}):\n{self.stderr}")
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if self.url is None and "nst-video serve: http://" in line:
                self.url = line.split("nst-video serve: ", 1)[1].split()[0]
                self._ready.set()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def ws_url(self, path: str = "live") -> str:
        return f"ws://{self.host}:{self.port}/{path}"

    def call(self, method: str, path: str, body=None, headers: dict[str, str] | None = None,
             timeout: float = 120) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs) -> Reply:
        return self.call("GET", path, **kwargs)

    def post_form(self, path: str, fields: dict[str, str] | None = None,
                  files: dict[str, tuple[str, bytes]] | None = None, headers: dict[str, str] | None = None,
                  timeout: float = 120) -> Reply:
        body, content_type = multipart(fields or {}, files or {})
        return self.call("POST", path, body=body, headers={"Content-Type": content_type, **(headers or {})},
                         timeout=timeout)

    def wait_job(self, job_id: str, states=("done", "failed", "cancelled"), timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/jobs/{job_id}").json()
            if job["state"] in states or time.monotonic() > deadline:
                return job
            time.sleep(0.2)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def serve_folders(self) -> list[Path]:
        """The server's temporary folders (under its own TMPDIR)."""
        return sorted(self.tmpdir.glob("nst-video-serve-*"))


def server_env(style_dir: Path, graph_cache: Path) -> dict[str, str]:
    return dict(os.environ, NST_VIDEO_STYLES=str(style_dir), NST_VIDEO_CACHE=str(graph_cache))


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f'Content-Type: application/octet-stream\r\n\r\n'.encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def photo_rgb(width: int = 96, height: int = 72, seed: int = 0) -> np.ndarray:
    """Gradients and a few blocks: something a style visibly changes."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], axis=2)
    rgb = rgb.astype(np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        x, y = rng.integers(0, width - 8), rng.integers(0, height - 8)
        rgb[y:y + height // 4, x:x + width // 4] = rng.integers(0, 256, 3)
    return rgb


def encode(rgb: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=fmt, **options)
    return out.getvalue()


def decompression_bomb_png(side: int = 30000) -> bytes:
    """A PNG header claiming side x side pixels (far past Pillow's limit) with next to no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))


def make_clip(path: Path, frames: int = 6, width: int = 64, height: int = 48, fps: int = 10) -> Path:
    """A short H.264 clip written with the project's own VideoSink: a bar moving over gradients."""
    with VideoSink(path, width, height, Fraction(1, fps), Fraction(fps), preset="ultrafast") as sink:
        for i in range(frames):
            rgb = photo_rgb(width, height)
            x = (i * 5) % (width - 6)
            rgb[:, x:x + 6] = 240
            sink.write(rgb, i)
    return path


def make_y4m(path: Path, rgb: np.ndarray, frames: int = 10, fps: int = 10) -> Path:
    """A raw Y4M clip (4:2:0) of `rgb` panning slowly: Chromium's fake camera plays it in a loop."""
    height, width = rgb.shape[:2]
    height, width = height - height % 2, width - width % 2
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            frame = np.roll(rgb, i * 2, axis=1)[:height, :width].astype(np.float32)
            r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = (b - y) * 0.564 + 128
            v = (r - y) * 0.713 + 128

            def sub(c):
                return c.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
            out.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                out.write(np.clip(plane + 0.5, 0, 255).astype(np.uint8).tobytes())
    return path
