"""Small video clips made by the tests themselves (PyAV), and helpers to read back what a file holds."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

NTSC = Fraction(30000, 1001)
BEEP_SECONDS = 0.03


def picture(i: int, height: int, width: int) -> np.ndarray:
    """Frame i of a test clip: smooth colour gradients (they survive compression) with a bar that moves, and
    a red corner block and a green bottom-left block to tell orientation. Only the bar moves."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([40 + xx * 160 // max(width, 1), 40 + yy * 160 // max(height, 1), np.full_like(xx, 90)],
                   axis=2).astype(np.uint8)
    x = (i * 3) % max(width - 4, 1)
    rgb[:, x:x + 4] = (230, 230, 230)
    b = max(2, min(height, width) // 6)
    rgb[:b, :b] = (220, 30, 30)
    rgb[-b:, :b] = (30, 200, 30)
    return rgb


def make_clip(path: Path, width: int = 64, height: int = 48, frames: int = 12, rate: Fraction = NTSC,
              pts: list[int] | None = None, time_base: Fraction | None = None, codec: str = "libx264",
              pix_fmt: str = "yuv420p", audio: str | None = "aac", rotation: int | None = None,
              duration_s: float | None = None, beeps: list[float] | None = None, pictures=picture,
              keyint: int | None = None) -> Path:
    """A clip of `frames` pictures at `rate` (or at explicit `pts` in `time_base`: variable frame rate),
    with a sine-wave audio track in codec `audio` (None: silent), optionally with rotation metadata. With
    `beeps` (seconds) the audio is silence with a short tone starting at each of those times instead.
    `pictures(i, height, width)` draws frame i (default: `picture`); `keyint`: a keyframe every that many
    frames (the encoder's default: one at the start of a short clip)."""
    time_base = time_base or 1 / rate
    pts = pts if pts is not None else list(range(frames))
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if codec in ("libx264", "libx265"):
            video.codec_context.options = {"preset": "ultrafast", "crf": "12"}
        if keyint:
            video.codec_context.gop_size = keyint
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream(audio, rate=48000 if audio == "libopus" else 44100)
            sound.layout = "mono"
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pictures(i, height, width), format="rgb24")
            frame.pts, frame.time_base = p, time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound:
            seconds = duration_s or float((pts[-1] + (pts[-1] - pts[-2] if len(pts) > 1 else 1)) * time_base)
            _write_sine(container, sound, seconds, beeps)
    return path


def _write_sine(container, stream, seconds: float, beeps: list[float] | None = None) -> None:
    rate = stream.rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    if beeps is not None:
        envelope = np.zeros_like(samples)
        for t in beeps:
            envelope[int(t * rate):int((t + BEEP_SECONDS) * rate)] = 1
        samples *= envelope
    size = stream.codec_context.frame_size or 1024
    fmt = stream.format.name
    for start in range(0, len(samples), size):
        chunk = samples[start:start + size][None]
        frame = av.AudioFrame.from_ndarray(chunk if fmt in ("flt", "fltp") else (chunk * 32767).astype(np.int16),
                                           format=fmt if fmt in ("flt", "fltp", "s16", "s16p") else "flt",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def make_broken_audio_clip(path: Path, frames: int = 10) -> Path:
    """A valid video with an audio stream (mp3, in Matroska) whose packets are random bytes: undecodable."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_mux_stream("mp3", rate=44100)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(i, 48, 64), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        rng = np.random.default_rng(0)
        for k in range(20):
            packet = av.Packet(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
            packet.stream, packet.pts, packet.dts, packet.time_base = sound, k * 1152, k * 1152, Fraction(1, 44100)
            container.mux(packet)
    return path


def make_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=44100)
        sound.layout = "mono"
        _write_sine(container, sound, 0.5)
    return path


@dataclass
class Probe:
    frames: int
    width: int
    height: int
    times: list[float]        # presentation time of each frame, seconds
    video_end: float          # where the video stream ends, seconds
    average_rate: Fraction | None
    codec: str
    audio: str | None         # audio codec name, or None
    audio_seconds: float
    pictures: list[np.ndarray]
    header_frames: int        # the frame count the header declares (AVI: entries, "repeat" fillers too)


def probe(path: Path, pictures: bool = False) -> Probe:
    """What a video file holds, read back with PyAV."""
    with av.open(str(path), metadata_errors="replace") as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        tb = video.time_base
        end = float(((video.start_time or 0) + video.duration) * tb) if video.duration else \
            float((decoded[-1].pts + (decoded[-1].duration or 0)) * tb)
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_seconds = 0.0
        if audio:
            with av.open(str(path), metadata_errors="replace") as again:  # from the top, not after a seek
                audio_seconds = sum(f.samples for f in again.decode(again.streams.audio[0])) / audio.rate
        return Probe(frames=len(decoded), width=video.width, height=video.height,
                     times=[float(f.pts * tb) for f in decoded], video_end=end, average_rate=video.average_rate,
                     codec=video.codec_context.name,
                     audio=audio.codec_context.codec.canonical_name if audio else None, audio_seconds=audio_seconds,
                     pictures=[f.to_ndarray(format="rgb24") for f in decoded] if pictures else [],
                     header_frames=video.frames)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def beep_times(path: Path, threshold: float = 0.1) -> list[float]:
    """Where the beeps of a `make_clip(..., beeps=...)` audio track begin in a file, in seconds."""
    with av.open(str(path), metadata_errors="replace") as container:
        stream = container.streams.audio[0]
        starts, quiet_since, clock = [], 0.0, None
        for frame in container.decode(stream):
            t0 = float(frame.pts * frame.time_base) if frame.pts is not None else clock
            loud = np.abs(frame.to_ndarray().astype(np.float32)).max(axis=0)
            if frame.format.name.startswith("s16"):
                loud /= 32768
            channels = 1 if frame.format.is_planar else frame.layout.nb_channels
            loud = loud.reshape(-1, channels).max(axis=1)
            for i in np.flatnonzero(loud > threshold):
                t = t0 + i / frame.sample_rate
                if t - quiet_since > BEEP_SECONDS * 2:
                    starts.append(float(t))
                quiet_since = t
            clock = t0 + frame.samples / frame.sample_rate
    return starts
