"""A video file cut at its keyframes into segments, and encoded segments joined back into one file, both by
stream copy (PyAV, like video_io and audio_io): what spreads one video job over a cluster (cluster.py).

`scan_packets` reads the packets' timestamps only (no decoding); `plan_segments` picks where to cut: at
keyframes that begin a closed group (no later packet shows a frame before them), so a cut holds exactly the
frames timed between its two ends and decodes on its own; `cut_segment` copies those packets into an
in-memory file, as bytes that travel to a worker; `SegmentJoiner` copies the encoded segments' packets into the
output, each moved to its first frame's time in the input, with the input's audio carried once, as the
one-machine job carries it (VideoSink)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

from nst_video import report
from nst_video.errors import NstError, reason
from nst_video.video_io import VideoSink, _open_input, segment_ticks

CUT_FORMAT = "matroska"  # holds any codec; the track's end is in its header (NUT's demuxer misreads it)


@dataclass(frozen=True)
class PacketScan:
    """The video packets of a file, in decode order."""
    path: Path
    pts: list[int]          # per packet, in time_base
    keyframe: list[bool]
    time_base: Fraction
    has_audio: bool
    origin: float = 0.0     # the file's start time (s): players count its time, and --start, from here

    @property
    def frames(self) -> int:
        return len(self.pts)

    def frame_range(self, start: float, duration: float | None) -> tuple[int, int]:
        """Frames [first, end), in display order, of `duration` seconds from `start` (None: to the end): the
        frames VideoSource keeps for the same start and duration."""
        shown = sorted(self.pts)
        begin, stop = segment_ticks(self.origin, start, duration, self.time_base)
        first = sum(1 for p in shown if p < begin)
        if first == len(shown):
            length = float((shown[-1] - shown[0]) * self.time_base)
            raise NstError(f"{self.path}: cannot start at {start:.2f} s: the video is {length:.2f} s long")
        return first, max(first + 1, sum(1 for p in shown if p < stop))

    def clean_cuts(self) -> list[int]:
        """Packet indices where a cut may go: keyframes before which every packet shows an earlier frame and
        from which every packet a later one (a closed group of pictures). Index 0 is always one."""
        n = len(self.pts)
        later_min = [0] * (n + 1)
        later_min[n] = None
        for i in range(n - 1, -1, -1):
            nxt = later_min[i + 1]
            later_min[i] = self.pts[i] if nxt is None else min(self.pts[i], nxt)
        cuts, earlier_max = [], None
        for i in range(n):
            if i == 0 or (self.keyframe[i] and earlier_max < self.pts[i] and later_min[i] == self.pts[i]):
                cuts.append(i)
            earlier_max = self.pts[i] if earlier_max is None else max(earlier_max, self.pts[i])
        return cuts


@dataclass(frozen=True)
class SegmentPlan:
    """One segment: packets [cut_start, sent_end) of the scan are sent; of their frames (in display order, which
    for a closed group is the same set) the first `drop` are decoded only, the next `warmup` stylized to warm
    the temporal state and not written, the next end - start (frames start..end-1) written."""
    index: int
    cut_start: int
    start: int
    end: int
    warmup: int
    start_pts: int   # the first written frame's pts in the input (the scan's time base)
    sent_end: int    # packets sent end here: `end`, or the next clean cut where a part ends between two

    @property
    def drop(self) -> int:
        return self.start - self.warmup - self.cut_start

    @property
    def frames(self) -> int:
        return self.end - self.start


def scan_packets(path: Path) -> PacketScan:
    """The first video stream's packets (timestamps and keyframe flags; nothing decoded)."""
    container = _open_input(Path(path))
    try:
        if not container.streams.video:
            raise NstError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        pts, key = [], []
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.pts is None:
                    raise NstError(f"{path}: its video packets carry no timestamps, so it cannot be cut at its "
                                   "keyframes; run it without --cluster")
                pts.append(int(packet.pts))
                key.append(bool(packet.is_keyframe))
        except av.FFmpegError as e:
            raise NstError(f"{path}: cannot read the file ({reason(e)}); it may be truncated or corrupt") from None
        if not pts:
            raise NstError(f"{path}: no video frame in it")
        return PacketScan(Path(path), pts, key, Fraction(stream.time_base), bool(container.streams.audio),
                          (container.start_time or 0) / av.time_base)
    finally:
        container.close()


def plan_segments(scan: PacketScan, count: int, warmup: int = 0, min_frames: int = 1, first: int = 0,
                  end: int | None = None) -> list[SegmentPlan]:
    """Up to `count` segments of about equal length covering frames [first, end) (default: all), cut at clean
    keyframes, none shorter than `min_frames` (but a part with no usable cut is one segment); each with
    `warmup` frames before it stylized and dropped (none before `first`: the one-machine job starts there cold
    too). Frames are counted in decode order: at a clean cut the packets before it are exactly the frames
    shown before it. A part that ends between two clean cuts is sent up to the next one (`sent_end`), its
    task writing only the frames up to `end`."""
    cuts = scan.clean_cuts()
    end = scan.frames if end is None else end
    bounds = [first]
    for j in range(1, count):
        target = first + j * (end - first) / count
        usable = [c for c in cuts if c - bounds[-1] >= min_frames and end - c >= min_frames]
        if not usable:
            break
        best = min(usable, key=lambda c: abs(c - target))
        if best > bounds[-1]:
            bounds.append(best)
    bounds.append(end)
    sent_end = min([c for c in cuts if c >= end] + [scan.frames])
    sorted_pts = sorted(scan.pts)
    plans = []
    for i, (start, stop) in enumerate(zip(bounds, bounds[1:], strict=False)):
        first_warm = start if i == 0 else max(first, start - warmup)
        cut_start = max(c for c in cuts if c <= first_warm)
        plans.append(SegmentPlan(i, cut_start, start, stop, start - first_warm, sorted_pts[start],
                                 sent_end if stop == end else stop))
    return plans


def cut_segments(scan: PacketScan, plans: list[SegmentPlan]) -> Iterator[tuple[SegmentPlan, bytes]]:
    """Each plan's packets [cut_start, sent_end) of the video stream, stream-copied at their own timestamps into an
    in-memory file (no audio: the join carries it once); in one pass over the file, each yielded as soon as
    it is complete (so its task can start while the next ones are cut)."""
    with av.open(str(scan.path), metadata_errors="replace") as src:
        stream = src.streams.video[0]
        open_cuts: dict[int, tuple] = {}
        waiting = sorted(plans, key=lambda p: p.cut_start)
        index = 0
        for packet in src.demux(stream):
            if not packet.size:
                continue
            while waiting and waiting[0].cut_start == index:
                plan = waiting.pop(0)
                buffer = io.BytesIO()
                out = av.open(buffer, "w", format=CUT_FORMAT)
                open_cuts[plan.index] = (plan, buffer, out, out.add_stream_from_template(stream))
            for _, _, out, copy in open_cuts.values():
                packet.stream = copy
                out.mux(packet)
            index += 1
            for key, (plan, buffer, out, _) in list(open_cuts.items()):
                if plan.sent_end == index:
                    out.close()
                    del open_cuts[key]
                    yield plan, buffer.getvalue()
        for _, _, out, _ in open_cuts.values():  # the file ended early: its scan said otherwise
            out.close()
        if open_cuts or waiting:
            raise NstError(f"{scan.path}: the file changed while it was being cut")


class SegmentJoiner(VideoSink):
    """A VideoSink given encoded packets instead of frames: the segments' own packets, copied (no
    re-encoding) into `path` in order, each segment moved so its first frame shows at its time in the input;
    written under a temporary name and renamed when complete, with the audio of `audio_from` (the whole
    track, cut where the video ends after a stop), exactly as VideoSink carries it."""

    def __init__(self, path, first_segment: bytes, audio_from=None, audio_start: float | None = None,
                 on_warning=report.warn):
        self._template_file = av.open(io.BytesIO(first_segment), metadata_errors="replace")
        self._template = template = self._template_file.streams.video[0]
        try:
            super().__init__(path, template.width, template.height, template.time_base, template.average_rate,
                             codec=template.codec_context.name, audio_from=audio_from, audio_start=audio_start,
                             on_warning=on_warning)
        except BaseException:
            self._template_file.close()
            raise

    def _add_video_stream(self):
        stream = self.container.add_stream_from_template(self._template)
        stream.time_base = self._template.time_base
        return stream

    def add_segment(self, encoded: bytes, first_time: Fraction) -> int:
        """Copy one encoded segment in, its first frame at `first_time` seconds; returns its frame count."""
        frames = 0
        with av.open(io.BytesIO(encoded), metadata_errors="replace") as segment:
            stream = segment.streams.video[0]
            packets = [p for p in segment.demux(stream) if p.size]
            if not packets:
                return 0
            tb = Fraction(stream.time_base)
            shift = round(first_time / tb) - min(p.pts for p in packets)
            for packet in packets:
                packet.pts += shift
                if packet.dts is not None:
                    packet.dts += shift
                end = Fraction(packet.pts + (packet.duration or 0)) * tb
                packet.stream = self.stream
                self.container.mux(packet)
                frames += 1
                self.end_pts = max(self.end_pts, round(end / self.time_base))
                self.frames_written += 1
                if self.audio:
                    self.audio.mux_until(float(self.end_pts * self.time_base))
                    self._check_audio()
        return frames

    def _flush_video(self) -> None:
        """Nothing to flush: no encoder."""

    # The template's file stays open while the output's streams are set up (a plan for the audio may be tried
    # and dropped, and the streams added again): it is closed with the output only.
    def close(self, complete: bool = True) -> None:
        try:
            super().close(complete)
        finally:
            self._template_file.close()

    def abort(self) -> None:
        try:
            super().abort()
        finally:
            self._template_file.close()
