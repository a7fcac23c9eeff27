"""The audio of a video job, via PyAV: the first audio stream of the source file, carried into the sink's
container next to the stylized video. With video_io, the only place of the project that uses PyAV."""
from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Collection

import av
import numpy as np

from nst_video.errors import reason

# Muxers store these codecs' set-up in the file header from the stream's extradata: without it, no copy.
NEEDS_EXTRADATA = {"opus", "vorbis", "flac", "alac"}
# Seconds decoded before a segment's start and dropped: decoders need a little history (AAC's overlapping
# windows, Opus's pre-roll), and a seek lands on a packet at or before the time asked for anyway.
SEEK_PREROLL = 0.5


class NoAudio(Exception):
    """The source's audio cannot be used at all: args[0] says why (no args: there is none)."""


class AudioTrack:
    """The first audio stream of a source file, carried into a sink's container: packets copied as they are
    ("copy"), or decoded and re-encoded ("transcode"). Read from its own demuxer, in step with the video (the
    muxer interleaves them), so an interrupted job's audio ends with its video.

    `start` (seconds of the source) is where the output's time 0 lies when only a segment of the source is
    written: the audio is then cut from there, shifted to begin at 0, and ends where the video ends. None: the
    whole track, at its own timestamps. Transcoded audio is cut to the sample, copied audio to the packet
    (a packet straddling the start is left out, one straddling the end is kept: an AAC packet is 1024
    samples, about 21 ms), which is why the sink transcodes segments by preference."""

    @classmethod
    def create(cls, source, container, plan: str, copy_codecs: Collection[str] | None, encoder: str,
               start: float | None = None) -> "AudioTrack | None":
        """The track for this plan; None if the audio is not to be copied into this container (transcode it
        instead). `copy_codecs`: the codecs this kind of file takes as they are (None: whatever its muxer
        takes); `encoder`: the audio encoder for transcoding. Raises NoAudio if there is no usable audio."""
        src = cls._open_audio(source)
        in_stream = src.streams.audio[0]
        try:
            if plan == "copy" and not cls._copyable(in_stream, container, copy_codecs):
                src.close()
                return None
            return cls(src, in_stream, container, plan, encoder, start)
        except (av.FFmpegError, ValueError) as e:
            src.close()
            raise NoAudio(f"the audio cannot be stored in this file ({reason(e)})") from None

    @staticmethod
    def _open_audio(source):
        """The source opened for its audio, after checking that the audio decodes (a stream that never yields
        a sample is broken, whether it would be copied or transcoded)."""
        try:
            src = av.open(str(source), metadata_errors="replace")
        except (av.FFmpegError, OSError):
            raise NoAudio() from None  # the video reader reports an unreadable file
        if not src.streams.audio:
            src.close()
            raise NoAudio()
        stream = src.streams.audio[0]
        name = stream.codec_context.codec.canonical_name
        try:
            if not stream.rate or not stream.channels:
                raise ValueError("no sample rate or channel count")
            for i, packet in enumerate(src.demux(stream)):
                if packet.decode():
                    break
                if i > 100:
                    raise ValueError("no sound in its first 100 packets")
            else:
                raise ValueError("no sound in it")
        except (av.FFmpegError, ValueError) as e:
            src.close()
            raise NoAudio(f"the audio stream ({name}) cannot be decoded ({reason(e)})") from None
        src.close()
        return av.open(str(source), metadata_errors="replace")  # from the top again

    @staticmethod
    def _copyable(stream, container, copy_codecs: Collection[str] | None) -> bool:
        name = stream.codec_context.codec.canonical_name
        if name in NEEDS_EXTRADATA and not stream.codec_context.extradata_size:
            return False
        return name in (copy_codecs if copy_codecs is not None else container.supported_codecs)

    def __init__(self, src, in_stream, container, plan: str, encoder: str, start: float | None):
        self.src, self.in_stream, self.container, self.plan = src, in_stream, container, plan
        self.start = start            # source seconds at the output's 0 (a segment), or None
        self.end: float | None = None  # source seconds where the audio stops, once finish() knows
        self.pending = None
        self.done = False
        self.error: str | None = None
        self._clock = 0.0             # source seconds where the last decoded frame ended
        if plan == "copy":
            self.out = container.add_stream_from_template(in_stream)
        else:
            rate = 48000 if encoder == "libopus" else in_stream.rate
            layout = in_stream.layout.name if in_stream.channels <= 2 or encoder != "libopus" else "stereo"
            self.out = container.add_stream(encoder, rate=rate, layout=layout)
            self.resampler = av.AudioResampler(format=self.out.format, layout=layout, rate=rate,
                                               frame_size=self.out.codec_context.frame_size or None)
        if start is not None and start > SEEK_PREROLL:
            with contextlib.suppress(av.FFmpegError, OverflowError):  # unseekable: read from the top, drop
                src.seek(int((start - SEEK_PREROLL) / in_stream.time_base), stream=in_stream, backward=True)
        self.packets = self.src.demux(self.in_stream)

    def _source_time(self, seconds: float) -> float:
        return seconds + (self.start or 0.0)

    def mux_until(self, seconds: float | None) -> None:
        """Mux the audio up to `seconds` of the output (packets that end by then), or all of it for None."""
        try:
            self._mux_until(None if seconds is None else self._source_time(seconds))
        except (av.FFmpegError, ValueError, OSError) as e:
            self.error = f"audio error ({reason(e)}); the rest of the audio is left out"
            self.close()

    def _mux_until(self, limit: float | None) -> None:
        while not self.done:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            begin, end = _span(packet)
            if packet is None or (self.end is not None and begin is not None and begin >= self.end):
                self.done = True
                if self.plan == "transcode":
                    self._flush_decoder()
                    self._encode(None)
                return
            if limit is not None and end is not None and end > limit:
                self.pending = packet
                return
            if self.plan == "copy":
                self._copy(packet, begin)
            else:
                self._transcode(packet.decode())

    def _copy(self, packet, begin: float | None) -> None:
        if not packet.size:
            return
        if self.start is not None:
            if begin is None or begin < self.start - 1e-6:  # before the segment (or of unknown time)
                return
            shift = round(self.start / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = self.out
        self.container.mux(packet)

    def _cut(self, frame):
        """The part of a decoded frame inside the segment [start, end) - timed from `start` for a segment -
        or None if no sample of it is."""
        rate, n = frame.sample_rate, frame.samples
        time_base = frame.time_base or self.in_stream.time_base
        begin = float(frame.pts * time_base) if frame.pts is not None else self._clock
        self._clock = begin + n / rate
        lo = 0 if self.start is None else max(0, round((self.start - begin) * rate))
        hi = n if self.end is None else min(n, round((self.end - begin) * rate))
        if hi <= lo:
            return None
        if (lo, hi) != (0, n):
            frame = _samples(frame, lo, hi)
        if self.start is not None:
            frame.pts, frame.time_base = round((begin - self.start) * rate) + lo, Fraction(1, rate)
        return frame

    def _flush_decoder(self) -> None:
        """The frames a decoder still holds when reading stops before the end of the stream."""
        with contextlib.suppress(av.FFmpegError, ValueError):
            self._transcode(self.in_stream.codec_context.decode(None))

    def _transcode(self, frames) -> None:
        for frame in frames:
            frame = self._cut(frame)
            if frame is not None:
                self._encode(frame)

    def _encode(self, frame) -> None:
        """Encode one frame; None flushes the encoder."""
        for resampled in self.resampler.resample(frame):
            self.container.mux(self.out.encode(resampled))
        if frame is None:
            self.container.mux(self.out.encode(None))

    def finish(self, until: float | None) -> None:
        """Mux the rest of the track (until=None), or the audio up to `until` seconds of the output (a segment,
        an interrupted job)."""
        if not self.done:
            if until is not None:
                self.end = self._source_time(until)
            self.mux_until(None)
        self.close()

    def close(self) -> None:
        self.done = True
        with contextlib.suppress(Exception):
            self.src.close()


def _span(packet) -> tuple[float | None, float | None]:
    """Where a packet begins and ends, in seconds (None where it has no timestamp)."""
    if packet is None or packet.pts is None or not packet.time_base:
        return None, None
    begin = float(packet.pts * packet.time_base)
    return begin, begin + float((packet.duration or 0) * packet.time_base)


def _samples(frame, lo: int, hi: int):
    """Samples lo..hi of an audio frame, as a new frame of the same format, layout, rate and timestamp."""
    data = frame.to_ndarray()
    channels = 1 if frame.format.is_planar else frame.layout.nb_channels
    part = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, lo * channels:hi * channels]),
                                      format=frame.format.name, layout=frame.layout.name)
    part.sample_rate, part.pts, part.time_base = frame.sample_rate, frame.pts, frame.time_base
    return part
