"""Video files in and out, via PyAV (FFmpeg). With audio_io (the audio track), the only place of the project
that uses PyAV.

`VideoSource` decodes any file FFmpeg reads - all of it or a segment, optionally scaled down - into upright RGB
uint8 frames with their own timestamps; `VideoSink` encodes RGB frames at the timestamps it is given (so
variable frame rates survive), carries the source's audio along, and writes under a temporary name that is
renamed only when the file is complete. `CONTAINERS` is the one table of the video file types the project
knows, by extension (the CLI's choice of mode uses it too)."""
from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from nst_video import report
from nst_video.atomic import move_into_place, temp_path_beside
from nst_video.audio_io import AudioTrack, NoAudio
from nst_video.errors import NstError, UnsupportedInput, reason


@dataclass(frozen=True)
class ContainerKind:
    """What the project writes into one kind of video file."""
    muxer: str | None = None          # FFmpeg's muxer; None: FFmpeg picks it from the extension
    video_encoder: str = "libx264"    # the default --codec
    audio_encoder: str = "aac"        # for audio that is not copied as it is
    # Audio codecs copied as they are; anything else is transcoded (None: whatever the muxer takes). FFmpeg
    # accepts more (e.g. Vorbis in MP4), but few players play those, so they are transcoded too.
    audio_copy: frozenset[str] | None = None
    muxer_options: tuple[tuple[str, str], ...] = ()  # FFmpeg's options for the muxer


MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
_MP4 = ContainerKind("mp4", audio_copy=MP4_AUDIO)
_3GP = ContainerKind("3gp", audio_copy=frozenset({"aac", "amr_nb", "amr_wb"}))
_OGG = ContainerKind("ogg", video_encoder="libvpx-vp9", audio_encoder="libopus")
CONTAINERS: dict[str, ContainerKind] = {
    ".mp4": _MP4, ".m4v": _MP4,
    ".mov": ContainerKind("mov", audio_copy=MP4_AUDIO | {"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"}),
    ".3gp": _3GP, ".3g2": dataclasses.replace(_3GP, muxer="3g2"),
    ".mkv": ContainerKind("matroska"),
    ".webm": ContainerKind("webm", "libvpx-vp9", "libopus", frozenset({"opus", "vorbis"})),
    # AVI has no timestamps, only one entry per tick: shifting everything later for the encoder delay of MP3
    # (FFmpeg's default) would put an empty "repeat" entry before the second frame.
    ".avi": ContainerKind("avi", audio_encoder="libmp3lame", audio_copy=frozenset({"mp3", "ac3", "pcm_s16le"}),
                          muxer_options=(("avoid_negative_ts", "disabled"),)),
    ".ogv": _OGG, ".ogg": _OGG,
    **{suffix: ContainerKind() for suffix in (".flv", ".wmv", ".asf", ".mpg", ".mpeg", ".vob", ".ts", ".mts",
                                              ".m2ts", ".gifv")},
}
VIDEO_SUFFIXES = frozenset(CONTAINERS)  # what `nst-video IN OUT` treats as a video

CODEC_ALIASES = {"h264": "libx264", "x264": "libx264", "avc": "libx264", "h265": "libx265", "hevc": "libx265",
                 "x265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
CRF_CODECS = {"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libsvtav1"}
PRESET_CODECS = {"libx264", "libx264rgb", "libx265"}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")

# Colour matrices: ours -> (swscale colorspace, primaries, transfer) to tag the output with.
COLORSPACES = {"bt709": (Colorspace.ITU709, ColorPrimaries.BT709, ColorTrc.BT709),
               "bt601": (Colorspace.ITU601, ColorPrimaries.SMPTE170M, ColorTrc.SMPTE170M)}
_AVCOL_SPC_BT709, _AVCOL_SPC_BT470BG, _AVCOL_SPC_SMPTE170M = 1, 5, 6


def container_kind(path) -> ContainerKind:
    return CONTAINERS.get(Path(path).suffix.lower(), ContainerKind())


@dataclass
class DecodedFrame:
    rgb: np.ndarray        # (H, W, 3) uint8, upright
    pts: int               # in VideoInfo.time_base, strictly increasing
    duration: int | None   # in time_base units, where the file says


@dataclass
class VideoInfo:
    path: Path
    width: int             # as delivered: after the rotation metadata is applied and scaling to max_size
    height: int
    time_base: Fraction    # of the frames' pts: 1/frame_rate at a constant frame rate, else the stream's own
    frame_rate: Fraction | None
    constant_rate: bool    # the frames lie on the 1/frame_rate grid (and are timed in it)
    frame_count: int       # an estimate from the header (0 if unknown), of the segment: for progress bars only
    duration: float | None  # seconds, from the header (the whole file)
    segment_start: float | None  # a segment: the file's time (s) at the frames' pts 0; None: the whole file
    rotation: int          # degrees counter-clockwise applied to the stored pictures
    colorspace: str        # "bt709" or "bt601": the matrix the pictures were decoded with
    codec: str
    pix_fmt: str
    audio: str | None      # e.g. "aac 48000 Hz stereo", or None


@dataclass
class _FirstFrame:
    """The first frame (of the segment) and what it tells about all of them."""
    frame: av.VideoFrame
    pts: int                # in the stream's time base
    duration: int | None
    rotation: int
    colorspace: str
    width: int              # delivered size: upright, scaled to max_size
    height: int


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
        raise UnsupportedInput(f"{path}: not a video FFmpeg can read ({reason(e)}); the file may be truncated or "
                       "corrupt") from None


def segment_ticks(origin: float, start: float, duration: float | None, time_base) -> tuple[float, float]:
    """The frames of `duration` seconds (None: to the end) from `start` seconds after the file's `origin`: those
    whose pts (in `time_base` ticks) lie in [begin, stop). Timestamps are rounded to the tick, so a frame half a
    tick early is the one asked for."""
    half_tick = 0.5
    begin = origin + start
    stop = float("inf") if duration is None else float((begin + duration) / time_base) - half_tick
    return float(begin / time_base) - half_tick, stop


class VideoSource:
    """Decodes the first video stream of a file: `info` describes it, iterating yields `DecodedFrame`s.

    `start` and `duration` (seconds from the beginning of the file) read a segment only: the demuxer seeks to
    the keyframe before `start`, the frames from there to `start` are decoded and dropped, and the frames kept
    are timed from the first of them (pts 0). `max_size` caps the long side: the aspect is kept, and the
    scaled sizes are even, as 4:2:0 encoders need.

    A constant-rate video (its first packets lie on the 1/rate grid) is timed in 1/rate, so the output says
    the rate and AVI needs no filler entries; a later frame off the grid is rounded onto it. Any other video
    keeps the stream's own time base and timestamps.

    The first frame is decoded on opening, so a file that cannot be decoded fails before any output exists."""

    MAX_BAD_PACKETS = 25  # corrupt packets skipped (with a warning) before the whole file counts as broken
    PEEK_PACKETS = 200    # packets whose timestamps tell whether the frame rate is constant

    def __init__(self, path, start: float = 0.0, duration: float | None = None, max_size: int | None = None,
                 codec_threads: int | None = None):
        if start < 0 or (duration is not None and duration <= 0) or (max_size is not None and max_size < 2):
            raise ValueError(f"bad segment or size: start={start}, duration={duration}, max_size={max_size}")
        self.path = Path(path)
        self.start, self.duration, self.max_size = float(start), duration, max_size
        self.segment = self.start > 0 or duration is not None
        self.codec_threads = codec_threads  # None: FFmpeg's choice (about one per core)
        self.container = _open_input(self.path)
        try:
            self._init_stream()
        except BaseException:
            self.container.close()
            raise

    def _init_stream(self) -> None:
        if not self.container.streams.video:
            raise UnsupportedInput(f"{self.path}: has no video stream")
        self.stream = stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding keeps pace with the network
        if self.codec_threads:
            stream.thread_count = self.codec_threads
        self._begin, self._stop = self._seek_segment()
        rate = self._constant_rate()
        self._frames = self._segment(self._timestamps(self._decoded_frames()))
        self._first: _FirstFrame | None = self._read_first_frame()
        first = self._first
        self.rotation, self.colorspace = first.rotation, first.colorspace
        stored_w, stored_h = _upright_size(first.width, first.height, first.rotation)  # what to scale to
        scaled = (stored_w, stored_h) != (first.frame.width, first.frame.height)
        self._scale = {"width": stored_w, "height": stored_h} if scaled else {}  # to_ndarray's size arguments
        # Output timing: a constant rate counts frames (1/rate) from the first frame's place; any other rate
        # keeps the stream's ticks. Both count from 0 for a segment, from the file's 0 otherwise.
        self._rate = rate
        self.time_base = 1 / rate if rate else stream.time_base
        self._ticks = stream.time_base / self.time_base  # output units per stream tick
        self._zero = first.pts if self.segment else 0
        self._first_stream_pts, self._first_pts = first.pts, round((first.pts - self._zero) * self._ticks)
        audio = self.container.streams.audio[0] if self.container.streams.audio else None
        frame_rate = rate or stream.average_rate or stream.guessed_rate or None
        self.info = VideoInfo(
            path=self.path, width=first.width, height=first.height, time_base=self.time_base,
            frame_rate=frame_rate, constant_rate=rate is not None,
            frame_count=self._estimate_count(frame_rate, first.pts),
            duration=self._declared_end(), rotation=self.rotation, colorspace=self.colorspace,
            segment_start=float(first.pts * stream.time_base) if self.segment else None,
            codec=stream.codec_context.name, pix_fmt=first.frame.format.name,
            audio=f"{audio.codec_context.codec.canonical_name} {audio.rate} Hz {audio.layout.name}" if audio else None)

    def _read_first_frame(self) -> _FirstFrame:
        """Decode the first frame (of the segment) and learn from it what holds for all frames: orientation,
        colour matrix and the size they are delivered at."""
        try:
            frame, pts, duration = next(self._frames)
        except StopIteration:
            if self.start:
                raise NstError(f"{self.path}: no video from {self.start:.2f} s on: it ends before that") from None
            raise NstError(f"{self.path}: no video frame could be decoded; the file may be truncated or corrupt") \
                from None
        rotation = round(frame.rotation / 90) * 90 % 360 if frame.rotation else 0
        width, height = _fit(*_upright_size(frame.width, frame.height, rotation), self.max_size)
        return _FirstFrame(frame, pts, duration, rotation, _decoded_colorspace(frame), width, height)

    def _seek_segment(self) -> tuple[float, float]:
        """Where the segment begins and ends, in stream ticks (the whole file: -inf, inf); seeks the demuxer to
        the keyframe before its start. A start beyond the end the header declares fails here."""
        stream, tb = self.stream, self.stream.time_base
        if not self.segment:
            return float("-inf"), float("inf")
        origin = (self.container.start_time or 0) / av.time_base  # players count the file's time from here
        begin = origin + self.start
        end = self._declared_end() or (origin + self.container.duration / av.time_base
                                       if self.container.duration else None)
        if self.start and end is not None and begin >= end:
            raise NstError(f"{self.path}: cannot start at {self.start:.2f} s: the video is {end - origin:.2f} s long")
        if self.start:
            _seek(self.container, stream, begin / tb)
        return segment_ticks(origin, self.start, self.duration, tb)

    def _constant_rate(self) -> Fraction | None:
        """The frame rate, if the first packets (of the segment) lie on its grid, one frame every 1/rate; None
        for a variable rate (or where the packets cannot tell)."""
        stream = self.stream
        rates = [r for r in dict.fromkeys((stream.base_rate, stream.average_rate)) if r and 0 < r <= 1000]
        if not rates:
            return None
        pts = []
        try:
            with av.open(str(self.path), metadata_errors="replace") as peek:
                video = peek.streams.video[0]
                if self.start:
                    _seek(peek, video, self._begin)
                for packet in peek.demux(video):
                    if packet.size:
                        if packet.pts is None:
                            return None
                        pts.append(packet.pts)
                        if len(pts) == self.PEEK_PACKETS:
                            break
        except (av.FFmpegError, OSError):
            return None
        return next((Fraction(r) for r in rates if _on_grid(pts, stream.time_base, r)), None)

    def _estimate_count(self, rate, first_pts: int) -> int:
        if not self.segment and self.stream.frames:
            return self.stream.frames
        end = self._declared_end()
        if self._stop < float("inf"):
            end = min(end or float("inf"), float(self._stop * self.stream.time_base))
        begin = float(first_pts * self.stream.time_base) if self.segment else 0.0
        return max(0, round((end - begin) * rate)) if end and rate else 0

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

    def __iter__(self) -> Iterator[DecodedFrame]:
        first, self._first = self._first, None
        if first is not None:
            yield self._delivered(first.frame, first.pts, first.duration)
        for frame, pts, duration in self._frames:
            yield self._delivered(frame, pts, duration)

    def _delivered(self, frame, pts: int, duration: int | None) -> DecodedFrame:
        """An upright RGB frame, timed in info.time_base from the zero point."""
        if self._rate:  # on the grid, counted from the first frame: rounding cannot swap neighbours
            out = self._first_pts + round((pts - self._first_stream_pts) * self._ticks)
        else:
            out = pts - self._zero
        return DecodedFrame(self._to_rgb(frame), out, max(1, round(duration * self._ticks)) if duration else None)

    def _timestamps(self, frames) -> Iterator[tuple]:
        """(frame, pts, duration) in the stream's time base, with missing or backward timestamps repaired."""
        stream, tb = self.stream, self.stream.time_base
        prev_pts, prev_delta, index, end, offset = None, None, 0, 0, 0
        for av_frame in frames:
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
            duration = av_frame.duration or None
            end = pts + (duration or prev_delta or 0)
            prev_pts, index = pts, index + 1
            yield av_frame, pts, duration
        self._check_complete(float(end * tb) if index else 0.0)

    def _segment(self, timed) -> Iterator[tuple]:
        """The frames of the segment only (all of them for the whole file)."""
        for item in timed:
            if item[1] >= self._stop:
                return
            if item[1] >= self._begin:
                yield item

    def _decoded_frames(self):
        bad = 0
        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                if bad:
                    report.warn(f"{self.path}: skipped {bad} corrupt video packet(s)")
                return
            except (av.FFmpegError, OSError) as e:
                raise NstError(f"{self.path}: cannot read the file ({reason(e)}); it may be truncated or "
                               "corrupt") from None
            try:
                yield from packet.decode()
            except av.FFmpegError as e:
                bad += 1
                if bad > self.MAX_BAD_PACKETS:
                    raise NstError(f"{self.path}: too many corrupt video packets ({reason(e)})") from None

    def _to_rgb(self, frame) -> np.ndarray:
        matrix = COLORSPACES[self.colorspace][0]
        rgb = frame.to_ndarray(format="rgb24", src_colorspace=matrix, interpolation="BICUBIC", **self._scale)
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


def _seek(container, stream, ticks) -> None:
    """Seek to the keyframe at or before `ticks` (the stream's time base); where the file cannot seek, reading
    goes on from where it is (the frames before the place wanted are dropped anyway)."""
    with contextlib.suppress(av.FFmpegError, OverflowError, ValueError):
        container.seek(max(0, int(ticks)), stream=stream, backward=True)


def _upright_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation in (90, 270) else (width, height)


def _fit(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """The size that caps the long side at max_size, keeping the aspect, with even sides (what 4:2:0 encoders
    need, so no padding is added); unchanged where it fits already."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    longest = max_size - max_size % 2
    return tuple(max(2, min(longest, round(side * scale / 2) * 2)) for side in (width, height))


def _on_grid(pts: list[int], time_base: Fraction, rate: Fraction) -> bool:
    """Whether these timestamps are a constant-rate video's: the first + k/rate for k = 0, 1, 2, ..., each
    within one tick of the time base (which rounds them)."""
    pts = sorted(pts)
    frames_per_tick = time_base * rate
    tolerance = min(float(frames_per_tick), 0.25) + 1e-9
    return all(abs(float((p - pts[0]) * frames_per_tick) - k) <= tolerance for k, p in enumerate(pts))


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
    return container_kind(path).video_encoder


class VideoSink:
    """Encodes RGB uint8 frames into a video file, atomically: written under a temporary name, renamed on
    close. A context manager that closes on success and on KeyboardInterrupt (the partial file is playable)
    and aborts on any other error.

    Encoders that subsample chroma (yuv420p: H.264's usual format) need even sizes: odd widths and heights
    are padded by repeating the last column / row, so a 641x481 input gives a 642x482 video.

    `audio_from` is the file whose first audio stream goes along. `audio_start` is for a segment of it: the
    source's time (s) at this video's time 0; the audio is then cut from there to where the video ends (and
    transcoded, where the encoder takes it, as that cuts to the sample: copying cuts to the packet)."""

    def __init__(self, path, width: int, height: int, time_base: Fraction, frame_rate: Fraction | None = None,
                 codec: str | None = "libx264", crf: int = 18, preset: str = "medium", audio_from=None,
                 colorspace: str = "bt709", on_warning: Callable[[str], None] = report.warn,
                 audio_start: float | None = None, codec_threads: int | None = None, joinable: bool = False):
        self.path = Path(path)
        self._set_up(width, height, time_base, frame_rate, _encoder_name(codec or default_video_codec(self.path)),
                     crf, preset, colorspace, container_kind(self.path), audio_start, on_warning, codec_threads,
                     joinable)
        self.tmp = temp_path_beside(self.path)
        try:
            self._open(audio_from)
        except BaseException:
            self._remove_tmp()
            raise

    # --- setting up ---

    def _set_up(self, width: int, height: int, time_base: Fraction, frame_rate: Fraction | None, codec: str,
                crf: int, preset: str, colorspace: str, kind: ContainerKind, audio_start: float | None,
                on_warning: Callable[[str], None], codec_threads: int | None = None, joinable: bool = False) -> None:
        """The encoder's settings and the writing state: what every sink holds before its container opens (a
        subclass writing elsewhere than a file calls this instead of __init__)."""
        self.width, self.height = int(width), int(height)
        self.time_base = Fraction(time_base)
        self.frame_rate = Fraction(frame_rate) if frame_rate else None
        self.codec = codec
        self.crf, self.preset, self.colorspace = crf, preset, colorspace
        self.kind = kind
        self.audio_start = audio_start
        self.warn = on_warning
        self.codec_threads = codec_threads  # None: the encoder's choice (x264: 1.5 per core)
        self.joinable = joinable  # a segment that is joined to the next one without re-encoding (cluster.py)
        self.frames_written = 0
        self.last_pts: int | None = None
        self.end_pts = 0            # where the last written frame ends, in time_base units
        self._durations: dict[int, int] = {}
        self._closed = False
        if self.width < 1 or self.height < 1:
            raise NstError(f"invalid video size {width}x{height}")
        if colorspace not in COLORSPACES:
            raise ValueError(f"colorspace must be one of {sorted(COLORSPACES)}")

    def _open(self, audio_from) -> None:
        """Open the container and write its header. The source's audio is copied where this container takes it
        as it is, else transcoded (a segment: transcoded, else copied); audio that cannot be decoded, or stored
        either way, is left out with a warning."""
        plans = ("copy", "transcode") if self.audio_start is None else ("transcode", "copy")
        problem = None
        for plan in plans if audio_from else ():
            self._start_container()
            try:
                self.audio = AudioTrack.create(audio_from, self.container, plan, self.kind.audio_copy,
                                               self.kind.audio_encoder, self.audio_start)
            except NoAudio as e:
                problem = e.args[0] if e.args else None
                self._close_container_quietly()
                break
            if self.audio is None:  # not a codec to copy into this container
                self._close_container_quietly()
                continue
            try:
                self.container.start_encoding()
                return
            except av.FFmpegError as e:
                self._close_container_quietly()
                problem = f"the audio cannot be stored in {self.path.name} ({reason(e)})"
        if problem:
            self.warn(f"{problem}; writing the video without it")
        self._start_container()
        try:
            self.container.start_encoding()
        except av.FFmpegError as e:
            self._close_container_quietly()
            raise NstError(f"{self.path}: cannot encode {self.codec} video into this file ({reason(e)})") \
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
        if not self.path.suffix:
            raise NstError(f"{self.path}: no file extension; use e.g. .mp4, .mkv, .webm or .mov")
        try:
            return av.open(str(self.tmp), "w", format=self.kind.muxer, options=dict(self.kind.muxer_options))
        except (av.FFmpegError, ValueError, OSError) as e:
            raise NstError(f"{self.path}: cannot write this kind of file ({reason(e)}); use e.g. .mp4 or .mkv") \
                from None

    def _add_video_stream(self):
        try:
            codec = av.Codec(self.codec, "w")
        except Exception:
            raise NstError(f"unknown video encoder '{self.codec}' (try libx264, libx265, libvpx-vp9, mpeg4)") \
                from None
        if codec.type != "video":
            raise NstError(f"'{self.codec}' is not a video encoder")
        if not self._holds(codec):
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
        if self.joinable and codec.name in ("libx264", "libx264rgb"):
            # x264's macroblock tree lowers the quality of an encode's last frames (nothing refers to them),
            # which marked every join: the warping error across a join 1.11-1.19x the clip's average, 0.84-0.95x
            # without it (docs/cluster.md).
            options["x264-params"] = "mbtree=0"
        if codec.name == "libvpx-vp9":
            options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
        elif codec.name not in CRF_CODECS:  # no constant-quality mode: a generous bit rate instead
            cc.bit_rate = int(max(self.width * self.height, 64 * 64) * float(self.frame_rate or 30) * 0.25)
        if self.codec_threads:
            cc.thread_count = self.codec_threads
        cc.options = options
        return stream

    def _holds(self, codec) -> bool:
        """Whether the container takes this codec (a stream subclass knows better where the muxer cannot say)."""
        return codec.name in self.container.supported_codecs

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
            self._flush_video()
            if self.audio:  # cut where the video ends: after a stop, and for a segment
                cut = not complete or self.audio_start is not None
                self.audio.finish(float(self.end_pts * self.time_base) if cut else None)
                self._check_audio()
            self.container.close()
            self._closed = True
            move_into_place(self.tmp, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, (av.FFmpegError, OSError)):
                raise NstError(f"{self.path}: cannot finish writing ({reason(e)})") from None
            raise

    def _flush_video(self) -> None:
        """The frames the encoder still holds."""
        self._mux_video(self.stream.encode(None))

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


def _encoder_name(codec: str) -> str:
    return CODEC_ALIASES.get(codec.lower(), codec)
