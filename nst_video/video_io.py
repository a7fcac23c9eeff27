"""Video files in and out, via PyAV (FFmpeg). All PyAV code of the project lives here.

`VideoSource` decodes any file FFmpeg reads into upright RGB uint8 frames with their own timestamps;
`VideoSink` encodes RGB frames at the timestamps it is given (so variable frame rates survive), carries the
source's audio along, and writes under a temporary name that is renamed only when the file is complete."""
from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from nst_video.atomic import move_into_place, temp_path_beside
from nst_video.errors import NstError

# Audio codecs copied as they are per output container family; anything else is transcoded (see AUDIO_ENCODER).
# FFmpeg accepts more (e.g. Vorbis in MP4), but few players play those, so they are transcoded too.
MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
AUDIO_COPY = {"mp4": MP4_AUDIO, "mov": MP4_AUDIO | {"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
              "3gp": {"aac", "amr_nb", "amr_wb"}, "webm": {"opus", "vorbis"}, "avi": {"mp3", "ac3", "pcm_s16le"}}
AUDIO_ENCODER = {"webm": "libopus", "ogg": "libopus", "avi": "libmp3lame"}  # default: aac
VIDEO_ENCODER = {"webm": "libvpx-vp9", "ogg": "libvpx-vp9"}  # default: libx264
CODEC_ALIASES = {"h264": "libx264", "x264": "libx264", "avc": "libx264", "h265": "libx265", "hevc": "libx265",
                 "x265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
CRF_CODECS = {"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libsvtav1"}
PRESET_CODECS = {"libx264", "libx264rgb", "libx265"}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")

# Colour matrices: ours -> (swscale colorspace, primaries, transfer) to tag the output with.
COLORSPACES = {"bt709": (Colorspace.ITU709, ColorPrimaries.BT709, ColorTrc.BT709),
               "bt601": (Colorspace.ITU601, ColorPrimaries.SMPTE170M, ColorTrc.SMPTE170M)}
_AVCOL_SPC_BT709, _AVCOL_SPC_BT470BG, _AVCOL_SPC_SMPTE170M = 1, 5, 6


@dataclass
class Frame:
    rgb: np.ndarray        # (H, W, 3) uint8, upright
    pts: int               # in the source's time_base, strictly increasing
    duration: int | None   # in time_base units, where the file says


@dataclass
class VideoInfo:
    path: Path
    width: int             # as displayed: after the rotation metadata is applied
    height: int
    time_base: Fraction
    frame_rate: Fraction | None
    frame_count: int       # an estimate from the header (0 if unknown): for progress bars only
    duration: float | None  # seconds, from the header
    rotation: int          # degrees counter-clockwise applied to the stored pictures
    colorspace: str        # "bt709" or "bt601": the matrix the pictures were decoded with
    codec: str
    pix_fmt: str
    audio: str | None      # e.g. "aac 48000 Hz stereo", or None


def warn(message: str) -> None:
    print(f"nst-video: warning: {message}", file=sys.stderr, flush=True)


def _open_input(path: Path):
    if not path.exists():
        raise NstError(f"{path}: no such file")
    if path.is_dir():
        raise NstError(f"{path}: is a folder, not a video")
    try:
        return av.open(str(path), metadata_errors="replace")
    except PermissionError:
        raise NstError(f"{path}: permission denied") from None
    except (av.FFmpegError, OSError) as e:
        raise NstError(f"{path}: not a video FFmpeg can read ({_reason(e)}); the file may be truncated or "
                       "corrupt") from None


class VideoSource:
    """Decodes the first video stream of a file: `info` describes it, iterating yields `Frame`s.

    The first frame is decoded on opening, so a file that cannot be decoded fails before any output exists."""

    MAX_BAD_PACKETS = 25  # corrupt packets skipped (with a warning) before the whole file counts as broken

    def __init__(self, path):
        self.path = Path(path)
        self.container = _open_input(self.path)
        try:
            self._init_stream()
        except BaseException:
            self.container.close()
            raise

    def _init_stream(self) -> None:
        if not self.container.streams.video:
            raise NstError(f"{self.path}: has no video stream")
        self.stream = stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding keeps pace with the network
        self._frames = self._decode()
        try:
            self._first = next(self._frames)
        except StopIteration:
            raise NstError(f"{self.path}: no video frame could be decoded; the file may be truncated or corrupt") \
                from None
        first = self._first_av
        height, width = self._first.rgb.shape[:2]
        audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.info = VideoInfo(
            path=self.path, width=width, height=height, time_base=stream.time_base,
            frame_rate=stream.average_rate or stream.guessed_rate or None, frame_count=self._estimate_count(),
            duration=self._declared_end(), rotation=self.rotation, colorspace=self.colorspace,
            codec=stream.codec_context.name, pix_fmt=first.format.name,
            audio=f"{audio.codec_context.codec.canonical_name} {audio.rate} Hz {audio.layout.name}" if audio else None)

    def _estimate_count(self) -> int:
        if self.stream.frames:
            return self.stream.frames
        end, rate = self._declared_end(), self.stream.average_rate or self.stream.guessed_rate
        return round(end * rate) if end and rate else 0

    def _declared_end(self) -> float | None:
        """Where the video stream ends, in seconds, as the header says; None where only the whole file's
        length is known (another stream may be the longer one)."""
        stream, container = self.stream, self.container
        if stream.duration:
            return float(((stream.start_time or 0) + stream.duration) * stream.time_base)
        tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")  # Matroska: the track's end
        match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d*)?)", tag or "")
        if match:
            h, m, s = match.groups()
            return int(h) * 3600 + int(m) * 60 + float(s)
        if len(container.streams) == 1 and container.duration:
            return ((container.start_time or 0) + container.duration) / av.time_base
        return None

    def __iter__(self) -> Iterator[Frame]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._frames

    def _decode(self) -> Iterator[Frame]:
        stream, tb = self.stream, self.stream.time_base
        prev_pts, prev_delta, index, end, offset = None, None, 0, 0, 0
        for av_frame in self._decoded_frames():
            pts = None if av_frame.pts is None else av_frame.pts + offset
            if pts is None or (prev_pts is not None and pts <= prev_pts):
                # No timestamp (some AVI / raw streams), or time going backwards (a broken muxer, joined
                # files): continue at the previous spacing, and shift what follows by as much.
                fixed = 0 if prev_pts is None else prev_pts + (prev_delta or _one_frame(stream))
                if pts is not None:
                    offset += fixed - pts
                pts = fixed
            if prev_pts is not None:
                prev_delta = pts - prev_pts
            if index == 0:
                self._first_av = av_frame
                self.colorspace = _decoded_colorspace(av_frame)
                self.rotation = round(av_frame.rotation / 90) * 90 % 360 if av_frame.rotation else 0
            rgb = self._to_rgb(av_frame)
            duration = av_frame.duration or None
            end = pts + (duration or prev_delta or 0)
            prev_pts, index = pts, index + 1
            yield Frame(rgb, pts, duration)
        self._check_complete(float(end * tb) if index else 0.0)

    def _decoded_frames(self):
        bad = 0
        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                if bad:
                    warn(f"{self.path}: skipped {bad} corrupt video packet(s)")
                return
            except (av.FFmpegError, OSError) as e:
                raise NstError(f"{self.path}: cannot read the file ({_reason(e)}); it may be truncated or "
                               "corrupt") from None
            try:
                yield from packet.decode()
            except av.FFmpegError as e:
                bad += 1
                if bad > self.MAX_BAD_PACKETS:
                    raise NstError(f"{self.path}: too many corrupt video packets ({_reason(e)})") from None

    def _to_rgb(self, frame) -> np.ndarray:
        matrix = COLORSPACES[self.colorspace][0]
        rgb = frame.to_ndarray(format="rgb24", src_colorspace=matrix, interpolation="BICUBIC")
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, self.rotation // 90))
        return rgb

    def _check_complete(self, decoded_end: float) -> None:
        """A file that stops before the length its header declares is truncated: fail rather than write a
        short video that looks complete."""
        expected_end = self._declared_end()
        if expected_end is None:
            return
        slack = max(0.1, 3 * float(_one_frame(self.stream) * self.stream.time_base), 0.01 * expected_end)
        if decoded_end < expected_end - slack:
            raise NstError(f"{self.path}: the video ends at {decoded_end:.2f} s, but its header says "
                           f"{expected_end:.2f} s; the file is truncated or corrupt")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _one_frame(stream) -> int:
    """One frame interval in the stream's time base (at least 1)."""
    rate = stream.average_rate or stream.guessed_rate
    return max(1, round(1 / (rate * stream.time_base))) if rate else 1


def _decoded_colorspace(frame) -> str:
    """The matrix to turn this YUV into RGB with: the one the file declares, else what players assume for
    untagged video (BT.709 from 720 lines up, BT.601 below)."""
    if frame.colorspace == _AVCOL_SPC_BT709:
        return "bt709"
    if frame.colorspace in (_AVCOL_SPC_BT470BG, _AVCOL_SPC_SMPTE170M):
        return "bt601"
    return "bt709" if frame.height >= 720 else "bt601"


def default_video_codec(path) -> str:
    return VIDEO_ENCODER.get(_family(path), "libx264")


def _family(path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"m4v": "mp4", "3g2": "3gp", "mkv": "matroska", "ogv": "ogg"}.get(suffix, suffix)


class VideoSink:
    """Encodes RGB uint8 frames into a video file, atomically: written under a temporary name, renamed on
    close. A context manager that closes on success and on KeyboardInterrupt (the partial file is playable)
    and aborts on any other error.

    Encoders that subsample chroma (yuv420p: H.264's usual format) need even sizes: odd widths and heights
    are padded by repeating the last column / row, so a 641x481 input gives a 642x482 video."""

    def __init__(self, path, width: int, height: int, time_base: Fraction, frame_rate: Fraction | None = None,
                 codec: str | None = "libx264", crf: int = 18, preset: str = "medium", audio_from=None,
                 colorspace: str = "bt709", on_warning: Callable[[str], None] = warn):
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.time_base = Fraction(time_base)
        self.frame_rate = Fraction(frame_rate) if frame_rate else None
        self.codec = _encoder_name(codec or default_video_codec(self.path))
        self.crf, self.preset, self.colorspace = crf, preset, colorspace
        self.warn = on_warning
        self.frames_written = 0
        self.last_pts: int | None = None
        self.end_pts = 0            # where the last written frame ends, in time_base units
        self._durations: dict[int, int] = {}
        self._closed = False
        if self.width < 1 or self.height < 1:
            raise NstError(f"invalid video size {width}x{height}")
        if colorspace not in COLORSPACES:
            raise ValueError(f"colorspace must be one of {sorted(COLORSPACES)}")
        self.tmp = temp_path_beside(self.path)
        try:
            self._open(audio_from)
        except BaseException:
            self._remove_tmp()
            raise

    # --- setting up ---

    def _open(self, audio_from) -> None:
        """Open the container and write its header. The source's audio is copied where this container takes it
        as it is, else transcoded; audio that cannot be decoded, or stored either way, is left out with a
        warning."""
        for plan in ("copy", "transcode") if audio_from else ():
            self._start_container()
            try:
                self.audio = _AudioTrack.create(audio_from, self.container, plan)
            except _NoAudio as e:
                if e.args:
                    self.warn(f"{e.args[0]}; writing the video without it")
                self._close_container_quietly()
                break
            if self.audio is None:  # not a codec to copy into this container: transcode it
                self._close_container_quietly()
                continue
            try:
                self.container.start_encoding()
                return
            except av.FFmpegError as e:
                self._close_container_quietly()
                if plan == "transcode":
                    self.warn(f"the audio cannot be stored in {self.path.name} ({_reason(e)}); "
                              "writing the video without it")
        self._start_container()
        try:
            self.container.start_encoding()
        except av.FFmpegError as e:
            self._close_container_quietly()
            raise NstError(f"{self.path}: cannot encode {self.codec} video into this file ({_reason(e)})") \
                from None

    def _start_container(self) -> None:
        self.audio = None
        self.container = self._open_container()
        try:
            self.stream = self._add_video_stream()
        except BaseException:
            self._close_container_quietly()
            raise

    def _open_container(self):
        try:
            return av.open(str(self.tmp), "w", format=_muxer_for(self.path))
        except (av.FFmpegError, ValueError, OSError) as e:
            raise NstError(f"{self.path}: cannot write this kind of file ({_reason(e)}); use e.g. .mp4 or .mkv") \
                from None

    def _add_video_stream(self):
        try:
            codec = av.Codec(self.codec, "w")
        except Exception:
            raise NstError(f"unknown video encoder '{self.codec}' (try libx264, libx265, libvpx-vp9, mpeg4)") \
                from None
        if codec.type != "video":
            raise NstError(f"'{self.codec}' is not a video encoder")
        if codec.name not in self.container.supported_codecs:
            raise NstError(f"{self.path.suffix or self.path.name} files cannot hold {codec.name} video; choose "
                           f"another --codec or file type (e.g. .mkv)")
        formats = [f.name for f in codec.video_formats or []]
        pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
        fmt = av.VideoFormat(pix_fmt)
        # Chroma subsampling needs even sizes: pad odd ones by one row/column (see the class docstring).
        self.pad_w = self.width % 2 if fmt.chroma_width(64) < 64 else 0
        self.pad_h = self.height % 2 if fmt.chroma_height(64) < 64 else 0
        stream = self.container.add_stream(codec.name, rate=self.frame_rate)
        stream.width, stream.height, stream.pix_fmt = self.width + self.pad_w, self.height + self.pad_h, pix_fmt
        stream.time_base = self.time_base
        cc = stream.codec_context
        cc.time_base = self.time_base
        if self.frame_rate:
            cc.framerate = self.frame_rate
        matrix, primaries, trc = COLORSPACES[self.colorspace]
        cc.colorspace, cc.color_primaries, cc.color_trc = matrix, primaries, trc
        cc.color_range = ColorRange.MPEG
        options = {}
        if codec.name in CRF_CODECS:
            options["crf"] = str(self.crf)
        if codec.name in PRESET_CODECS:
            if self.preset not in PRESETS:
                raise NstError(f"unknown preset '{self.preset}' for {codec.name}; choose one of {', '.join(PRESETS)}")
            options["preset"] = self.preset
        if codec.name == "libx265":
            options["x265-params"] = "log-level=error"  # x265 prints its settings to stderr otherwise
        if codec.name == "libvpx-vp9":
            options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
        elif codec.name not in CRF_CODECS:  # no constant-quality mode: a generous bit rate instead
            cc.bit_rate = int(max(self.width * self.height, 64 * 64) * float(self.frame_rate or 30) * 0.25)
        cc.options = options
        return stream

    # --- writing ---

    def write(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Encode one frame shown from `pts` (time_base units, increasing; a repeated or earlier pts is moved
        to just after the previous one) for `duration` units (default: the previous frame's spacing)."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {rgb.shape} {rgb.dtype}")
        pts = int(pts)
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        if duration is None:
            if self.last_pts is not None:
                duration = pts - self.last_pts
            elif self.frame_rate:
                duration = max(1, round(1 / (self.frame_rate * self.time_base)))
        if self.pad_w or self.pad_h:
            rgb = np.pad(rgb, ((0, self.pad_h), (0, self.pad_w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format=self.stream.pix_fmt, dst_colorspace=COLORSPACES[self.colorspace][0],
                               dst_color_range=ColorRange.MPEG, interpolation="BICUBIC")
        frame.pts, frame.time_base = pts, self.time_base
        if duration:
            self._durations[pts] = int(duration)
        self._mux_video(self.stream.encode(frame))
        self.last_pts, self.end_pts = pts, pts + int(duration or 0)
        self.frames_written += 1
        if self.audio:
            self.audio.mux_until(float(self.end_pts * self.time_base))
            self._check_audio()

    def _check_audio(self) -> None:
        if self.audio and self.audio.error:
            self.warn(self.audio.error)
            self.audio = None

    def _mux_video(self, packets) -> None:
        for packet in packets:
            # Encoders drop frame durations; the muxer needs the last frame's to get the file's length right.
            if packet.pts is not None and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            self.container.mux(packet)

    # --- finishing ---

    def close(self, complete: bool = True) -> None:
        """Flush the encoder, finalise the file and rename it into place. With complete=False (an
        interrupted job) the audio is cut where the video ends. A sink with no frame written is aborted:
        a video file without frames plays nowhere."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            return
        try:
            self._mux_video(self.stream.encode(None))
            if self.audio:
                self.audio.finish(None if complete else float(self.end_pts * self.time_base))
                self._check_audio()
            self.container.close()
            self._closed = True
            move_into_place(self.tmp, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, (av.FFmpegError, OSError)):
                raise NstError(f"{self.path}: cannot finish writing ({_reason(e)})") from None
            raise

    def abort(self) -> None:
        """Drop everything: close quietly and delete the temporary file."""
        if not self._closed:
            self._close_container_quietly()
        self._closed = True
        self._remove_tmp()

    def _close_container_quietly(self) -> None:
        if getattr(self, "audio", None):
            self.audio.close()
        with contextlib.suppress(Exception):
            self.container.close()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close(complete=exc_type is None)
        else:
            self.abort()


class _NoAudio(Exception):
    """The source's audio cannot be used at all: args[0] says why (no args: there is none)."""


class _AudioTrack:
    """The first audio stream of a source file, carried into a sink's container next to the video: packets
    copied as they are ("copy"), or decoded and re-encoded ("transcode"). Read from its own demuxer, in step
    with the video (the muxer interleaves them), so an interrupted job's audio ends with its video."""

    # Muxers store these codecs' set-up in the file header from the stream's extradata: without it, no copy.
    NEEDS_EXTRADATA = {"opus", "vorbis", "flac", "alac"}

    @classmethod
    def create(cls, source, container, plan: str) -> "_AudioTrack | None":
        """The track for this plan; None if the audio is not to be copied into this container (transcode it
        instead). Raises _NoAudio if there is no usable audio."""
        src = cls._open_audio(source)
        in_stream = src.streams.audio[0]
        try:
            if plan == "copy" and not cls._copyable(in_stream, container):
                src.close()
                return None
            return cls(src, in_stream, container, plan)
        except (av.FFmpegError, ValueError) as e:
            src.close()
            raise _NoAudio(f"the audio cannot be stored in this file ({_reason(e)})") from None

    @staticmethod
    def _open_audio(source):
        """The source opened for its audio, after checking that the audio decodes (a stream that never yields
        a sample is broken, whether it would be copied or transcoded)."""
        try:
            src = av.open(str(source), metadata_errors="replace")
        except (av.FFmpegError, OSError):
            raise _NoAudio() from None  # the video reader reports an unreadable file
        if not src.streams.audio:
            src.close()
            raise _NoAudio()
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
            raise _NoAudio(f"the audio stream ({name}) cannot be decoded ({_reason(e)})") from None
        src.close()
        return av.open(str(source), metadata_errors="replace")  # from the top again

    @classmethod
    def _copyable(cls, stream, container) -> bool:
        name = stream.codec_context.codec.canonical_name
        if name in cls.NEEDS_EXTRADATA and not stream.codec_context.extradata_size:
            return False
        return name in (AUDIO_COPY.get(container.format.name.split(",")[0]) or container.supported_codecs)

    def __init__(self, src, in_stream, container, plan: str):
        self.src, self.in_stream, self.plan = src, in_stream, plan
        self.pending = None
        self.done = False
        self.error: str | None = None
        if plan == "copy":
            self.out = container.add_stream_from_template(in_stream)
        else:
            encoder = AUDIO_ENCODER.get(container.format.name.split(",")[0], "aac")
            rate = 48000 if encoder == "libopus" else in_stream.rate
            layout = in_stream.layout.name if in_stream.channels <= 2 or encoder != "libopus" else "stereo"
            self.out = container.add_stream(encoder, rate=rate, layout=layout)
            self.resampler = av.AudioResampler(format=self.out.format, layout=layout, rate=rate,
                                               frame_size=self.out.codec_context.frame_size or None)
        self.packets = self.src.demux(self.in_stream)

    def mux_until(self, seconds: float | None) -> None:
        """Mux the source's audio up to `seconds`, or all of it for None."""
        try:
            self._mux_until(seconds)
        except (av.FFmpegError, ValueError, OSError) as e:
            self.error = f"audio error ({_reason(e)}); the rest of the audio is left out"
            self.close()

    def _mux_until(self, limit: float | None) -> None:
        while not self.done:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                self.done = True
                if self.plan == "transcode":
                    self._encode(None)
                return
            if limit is not None and packet.pts is not None and packet.time_base \
                    and float(packet.pts * packet.time_base) > limit:
                self.pending = packet
                return
            if self.plan == "copy":
                if packet.size:
                    packet.stream = self.out
                    self.out.container.mux(packet)
            else:
                for frame in packet.decode():
                    self._encode(frame)

    def _encode(self, frame) -> None:
        for resampled in self.resampler.resample(frame):
            self.out.container.mux(self.out.encode(resampled))
        if frame is None:
            self.out.container.mux(self.out.encode(None))

    def finish(self, until: float | None) -> None:
        """Mux the rest (complete job), or the audio up to `until` seconds (interrupted job)."""
        if not self.done:
            if until is not None:
                self.mux_until(until)
                if self.plan == "transcode" and not self.done:
                    self.done = True
                    with contextlib.suppress(av.FFmpegError, ValueError):
                        self._encode(None)
            else:
                self.mux_until(None)
        self.close()

    def close(self) -> None:
        self.done = True
        with contextlib.suppress(Exception):
            self.src.close()


def _encoder_name(codec: str) -> str:
    return CODEC_ALIASES.get(codec.lower(), codec)


def _muxer_for(path: Path) -> str | None:
    """The muxer for the final name's extension (the temporary name keeps it too, but say it explicitly)."""
    suffix = path.suffix.lower()
    if not suffix:
        raise NstError(f"{path}: no file extension; use e.g. .mp4, .mkv, .webm or .mov")
    return {".mkv": "matroska", ".m4v": "mp4", ".ogv": "ogg"}.get(suffix)


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__
