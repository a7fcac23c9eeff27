"""Live stream output (`--stream URL`): stylized frames as H.264 another program opens while they come,
via PyAV (FFmpeg), beside video_io.py, whose VideoSink does the encoding.

  udp://HOST:PORT            MPEG-TS datagrams: ffplay, VLC, mpv and OBS's Media Source open the same URL
  rtmp://HOST[:PORT]/APP/KEY  FLV pushed to an RTMP server (mediamtx, which passes it on as RTSP, HLS and
                              WebRTC too; nginx-rtmp; YouTube/Twitch ingest; or `ffplay -listen 1 rtmp://...`
                              acting as one); rtmps:// over TLS
(No SRT: PyAV's FFmpeg is built without libsrt.)

Encoding for latency, not size: x264 with tune=zerolatency (no B-frames, no look-ahead), a keyframe every
second so a receiver that joins late starts within one, and the camera's capture times as timestamps.

The live loop hands frames over with `send()`, which never waits: encoding and sending run on the stream's
own thread, and a frame that finds the previous one still waiting replaces it (counted as dropped), so a
receiver or network that stalls costs frames on the stream, never time in the loop. The URL is checked
(`check_stream_url`) before anything slow starts: an unknown scheme, a host that does not resolve, or a
server that refuses the connection is one clear error, before the camera opens."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import av
import numpy as np

from nst_video.errors import NstError, reason
from nst_video.video_io import ContainerKind, VideoSink
from nst_video.window import fit_into

# scheme -> (FFmpeg muxer, default port, muxer options)
SCHEMES = {
    # 1316 bytes = 7 TS packets a datagram: the size receivers (VLC, OBS) expect, below any Ethernet MTU.
    # With the video PES length written (frames under 64 KB), the receiver's demuxer hands a frame on when it
    # is complete instead of when the next one begins: one frame interval less latency.
    "udp": ("mpegts", None, {"omit_video_pes_length": "0"}),
    "rtmp": ("flv", 1935, {}),
    "rtmps": ("flv", 443, {}),
}
USAGE = "udp://HOST:PORT (MPEG-TS) or rtmp://HOST[:PORT]/APP/KEY"
KEYFRAME_INTERVAL = 30    # frames: about a second at a camera's 30 FPS, the longest a late receiver waits
QUEUE_FRAMES = 1          # frames waiting for the encoder; one more and the oldest is dropped
CLOSE_TIMEOUT_S = 5.0     # how long closing waits for the last frames to go out


@dataclass(frozen=True)
class StreamTarget:
    url: str        # what FFmpeg opens
    scheme: str
    host: str
    port: int
    muxer: str
    options: dict

    def __str__(self) -> str:
        return self.url


def check_stream_url(url: str) -> StreamTarget:
    """The stream's target, checked as far as can be without connecting: a known scheme, a host and port, a
    host that resolves, and (UDP) a route to it. NstError if not. (No test connection to an RTMP
    server: a player acting as one, `ffplay -listen 1`, takes a single connection; StreamOutput's own
    connection is the test.)"""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        what = f"unknown scheme '{scheme}'" if scheme else "not a URL"
        raise NstError(f"--stream {url}: {what}; give {USAGE}")
    muxer, default_port, options = SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        port = None
    host = parts.hostname
    if not host or not port:
        raise NstError(f"--stream {url}: needs a host and a port{'' if default_port else ' (udp has no default)'}; "
                       f"give {USAGE}")
    if scheme in ("rtmp", "rtmps") and parts.path.strip("/") == "":
        raise NstError(f"--stream {url}: needs a path, e.g. {scheme}://{host}:{port}/live/nst")
    final = url.strip()
    if scheme == "udp" and "pkt_size" not in parts.query:
        final += ("&" if parts.query else "?") + "pkt_size=1316"
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise NstError(f"--stream {url}: cannot resolve host '{host}' ({reason(e)})") from None
    family, kind, proto, _, sockaddr = address
    if scheme == "udp":
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.connect(sockaddr)  # sends nothing: only asks the kernel for a route
            except OSError as e:
                raise NstError(f"--stream {url}: cannot reach {host}:{port} ({reason(e)})") from None
    return StreamTarget(final, scheme, host, port, muxer, dict(options))


class _StreamEncoder(VideoSink):
    """VideoSink's encoder set-up and frame writing, into a network stream instead of a file: no temporary
    file to rename, no audio, and x264 set for latency."""

    def __init__(self, target: StreamTarget, width: int, height: int):
        # VideoSink's set-up without its temporary file (a stream has no file to rename); time base ms: the
        # camera's capture times.
        self.target = target
        self.path = PurePosixPath(f"stream.{target.muxer}")  # only for VideoSink's messages
        self._set_up(width, height, Fraction(1, 1000), None, "libx264", 23, "veryfast", "bt709",
                     ContainerKind(target.muxer, muxer_options=tuple(target.options.items())), None,
                     lambda message: None)
        self._start_container()
        try:
            self.container.start_encoding()  # connects (RTMP) and writes the stream's header
        except BaseException:
            self._close_container_quietly()
            raise

    def _open_container(self):
        # flush_packets: each frame leaves as soon as it is muxed, not when an I/O buffer fills
        return av.open(self.target.url, "w", format=self.target.muxer,
                       options={"flush_packets": "1", **dict(self.kind.muxer_options)})

    def _add_video_stream(self):
        stream = super()._add_video_stream()
        cc = stream.codec_context
        # zerolatency: no B-frames, no frame threads or look-ahead holding frames back; a keyframe every
        # KEYFRAME_INTERVAL frames so a receiver that joins late gets a picture within about a second.
        cc.options = {**cc.options, "tune": "zerolatency", "bf": "0", "g": str(KEYFRAME_INTERVAL),
                      "keyint_min": str(KEYFRAME_INTERVAL)}
        return stream

    def _holds(self, codec) -> bool:
        return codec.name == "libx264"  # MPEG-TS takes H.264 but does not list what it takes

    def close(self, complete: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_written:
                self._mux_video(self.stream.encode(None))
        finally:
            self.container.close()


class LiveOutput:
    """A live output's thread: `send()` hands frames over and never waits (see the module docstring);
    `writer.write(rgb, pts_ms)` runs on the thread, `writer.close()` when the output closes. `name` says
    what it is in messages ("stream udp://...", "virtual camera /dev/video2")."""

    def __init__(self, name: str, writer, size: tuple[int, int], on_event=None):
        self.name, self.size = name, size
        self.on_event = on_event or (lambda message: None)
        self._encoder = writer
        self.sent = self.dropped = 0
        self.error: str | None = None
        self._pending: list = []
        self._closing = False
        self._start: float | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name.split()[0], daemon=True)
        self._thread.start()

    def send(self, rgb: np.ndarray, captured: float, wait: bool = False) -> None:
        """Queue a frame (captured at time.monotonic() `captured`). Where the previous frame is still waiting,
        it is dropped for this newer one, or with `wait` (a file sent as fast as it is made, where every frame
        counts and nothing is live) this waits for it to go."""
        with self._changed:
            while wait and len(self._pending) >= QUEUE_FRAMES and not self.error:
                self._changed.wait()
            if self._closing or self.error:
                return
            while len(self._pending) >= QUEUE_FRAMES:
                self._pending.pop(0)
                self.dropped += 1
            self._pending.append((rgb, captured))
            self._changed.notify_all()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> str:
        """Send what is queued, end the stream properly, and say what was sent."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return f"{self.name}: did not finish closing in {timeout:.0f} s ({self.summary()})"
        return f"{self.name} closed ({self.summary()})"

    def summary(self) -> str:
        text = f"{self.sent} frames sent, {self.dropped} dropped (the receiver fell behind)"
        return f"{text}; stopped: {self.error}" if self.error else text

    def _run(self) -> None:
        encoder = self._encoder
        try:
            while True:
                with self._changed:
                    while not self._pending and not self._closing:
                        self._changed.wait()
                    if not self._pending:
                        break
                    rgb, captured = self._pending.pop(0)
                    self._changed.notify_all()  # a waiting send() may go on
                if self._start is None:
                    self._start = captured
                if rgb.shape[1::-1] != self.size:  # the side-by-side view: fitted into the stream's size
                    rgb = fit_into(rgb, self.size)
                encoder.write(rgb, round((captured - self._start) * 1000))
                self.sent += 1
        except Exception as e:  # the stream ends; the live session (window, recording) goes on
            with self._changed:
                self.error = reason(e) if isinstance(e, (av.FFmpegError, OSError)) else f"{type(e).__name__}: {e}"
                self._pending.clear()
                self._changed.notify_all()
            self.on_event(f"{self.name} stopped: {self.error}")
        finally:
            with contextlib.suppress(Exception):
                encoder.close()



class StreamOutput(LiveOutput):
    """The stream to `target`. Connects (RTMP) and writes the stream's header at once, so an unreachable
    server is an NstError here, before the session starts, and the first frame goes out without delay."""

    def __init__(self, target: StreamTarget, size: tuple[int, int], on_event=None):
        self.target = target
        try:
            encoder = _StreamEncoder(target, *size)
        except (av.FFmpegError, OSError) as e:
            hint = "; is the server running, and the path one it accepts?" if target.scheme != "udp" else ""
            raise NstError(f"--stream {target}: cannot start the stream ({reason(e)}){hint}") from None
        super().__init__(f"stream {target}", encoder, size, on_event)
        self.on_event(f"streaming to {target}")


class StreamSink:
    """A video job's sink (VideoSink's write / close / abort) that sends a file's frames as a live stream,
    timed as the file says. With `realtime`, each frame waits for its time (the file played live, as a
    camera would deliver it: a receiver that stalls then costs frames, not time); without, frames go as fast
    as they are made and none is dropped. A stream that fails ends the job where it is the only output
    (`required`); beside a file, the file goes on."""

    def __init__(self, target: StreamTarget, width: int, height: int, time_base: Fraction, realtime: bool = False,
                 on_event=None, required: bool = True):
        self.output = StreamOutput(target, (width, height), on_event=on_event)
        self.time_base, self.realtime, self.required = Fraction(time_base), realtime, required
        self.frames_written, self.end_pts = 0, 0
        self._zero: float | None = None  # time.monotonic() at the file's time 0

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        if self.output.error and self.required:  # the receiver or server went away: the job ends with it
            raise NstError(f"--stream {self.output.target}: {self.output.error}")
        seconds = float(pts * self.time_base)
        if self._zero is None:
            self._zero = time.monotonic() - seconds
        due = self._zero + seconds
        if self.realtime:
            time.sleep(max(0.0, due - time.monotonic()))
        self.output.send(rgb, due, wait=not self.realtime)
        self.frames_written += 1
        self.end_pts = pts + int(duration or 0)

    def close(self, complete: bool = True) -> str:
        return self.output.close()

    def abort(self) -> None:
        self.output.close()

    def __enter__(self) -> "StreamSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
