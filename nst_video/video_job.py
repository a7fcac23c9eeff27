"""The video-file job: Source (decode thread) -> Stylizer (batched, this thread) -> Temporal -> Sink (encode
thread), joined by bounded queues, so decoding and encoding run while the network does.

A stop signal (Ctrl-C, SIGTERM, SIGHUP: a KeyboardInterrupt in this thread, see signals.py) stops the job
cleanly: the frames already stylized are encoded, the file is finalised (playable, with the audio cut to
match) and renamed into place, and the result says how much was written. A second signal stops at once,
and nothing is kept. A signal that comes while a complete file is being finished is noted (the result's
stop_signal), and the file finished all the same.

For callers other than the CLI (the web server): `on_progress` is told of every frame written, and setting
the `cancel` event stops the job the way a first stop signal does (the frames done are kept and finalised;
the result says interrupted, with no stop_signal)."""
from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nst_video import report, signals
from nst_video.errors import NstError
from nst_video.progress import progress_bar
from nst_video.stylizer import Stylizer
from nst_video.temporal import TemporalBlender
from nst_video.video_io import DecodedFrame, VideoSink, VideoSource

_END = object()  # end-of-stream marker on the queues
CANCELLED = 0     # what _Pipeline.run returns when the cancel event stopped it (no signal)


class _Cancelled(Exception):
    """The cancel event was set: stop as after a stop signal."""


@dataclass
class VideoJobResult:
    output: Path | None   # None: streamed only (--stream)
    frames: int
    seconds: float        # length of the video written
    elapsed: float        # wall-clock seconds of the job
    interrupted: bool     # stopped by a signal before the end: the file holds the first `frames` frames
    expected_frames: int  # the frames the whole job would have written, as the header lets us estimate (0: ?)
    stop_signal: int | None = None  # the stop signal that came (exit status 128 + it), if one did
    backend: str = ""               # what ran the network, e.g. "openvino (CPU, 2 threads, BF16)"
    stream: str | None = None       # --stream: where the frames were sent live, and what became of them


@dataclass
class _Failure:
    error: BaseException


def check_paths(src: Path, dst: Path | None) -> None:
    if not src.exists():
        raise NstError(f"{src}: no such file")
    if dst is None:  # only streamed
        return
    if dst.is_dir():
        raise NstError(f"{dst}: is a folder; give an output file name such as {dst / (src.stem + '_styled.mp4')}")
    if dst.exists() and os.path.samefile(src, dst):
        raise NstError(f"output {dst} is the input; refusing to overwrite it (choose another output)")


def run_video(src: Path, dst: Path | None, stylizer: Stylizer, temporal: float = 0.0, codec: str | None = None,
              crf: int = 18, preset: str = "medium", audio: bool = True, show_progress: bool = True,
              quiet: bool = False, start: float = 0.0, duration: float | None = None,
              max_size: int | None = None, on_progress: Callable[[int, int], None] | None = None,
              cancel: threading.Event | None = None, stream: str | None = None,
              realtime: bool = False, drop_frames: int = 0, warmup_frames: int = 0,
              codec_threads: int | None = None, joinable: bool = False, max_frames: int | None = None
              ) -> VideoJobResult:
    """Stylize the video file `src` (or `duration` seconds of it from `start`, timed from 0 in the output)
    into `dst`, its long side capped at `max_size`. Returns what was written; after a stop signal, a shorter
    but complete file (interrupted=True).

    `on_progress(frames_written, expected_frames)` is called (from the encoder thread) after each frame is
    written; expected_frames is the header's estimate, 0 where unknown. Setting `cancel` (from any thread)
    stops the job before its next frame, like a stop signal: what was done is finalised, interrupted=True.

    `stream` (a URL: stream_out.py) also sends the frames live, each at its time in the file with
    `realtime`; `dst` may then be None (streamed only).

    For one segment of a longer job (cluster.py): the first `drop_frames` frames are decoded and dropped (the
    rest of the keyframe's group before the segment), the next `warmup_frames` stylized and blended but not
    written, so `--temporal` starts the segment warm; `max_frames` written at most (a segment that ends between
    two keyframes is sent up to the next one); `codec_threads` keeps the decoder and the encoder to the task's
    CPUs (default: as many threads as FFmpeg picks); `joinable` encodes it to be joined to the next segment
    (VideoSink)."""
    src, dst = Path(src), Path(dst) if dst is not None else None
    check_paths(src, dst)
    target = None
    if stream:
        from nst_video.stream_out import check_stream_url
        target = check_stream_url(stream)
    started = time.perf_counter()
    with VideoSource(src, start=start, duration=duration, max_size=max_size, codec_threads=codec_threads) as source:
        info = source.info
        sinks = []
        try:
            if dst is not None:
                sinks.append(VideoSink(dst, info.width, info.height, info.time_base, info.frame_rate, codec=codec,
                                       crf=crf, preset=preset, audio_from=src if audio and info.audio else None,
                                       audio_start=info.segment_start, colorspace=info.colorspace,
                                       codec_threads=codec_threads, joinable=joinable))
            if target is not None:
                from nst_video.stream_out import StreamSink
                sinks.append(StreamSink(target, info.width, info.height, info.time_base, realtime,
                                        on_event=None if quiet else report.say, required=dst is None))
        except BaseException:
            for opened in sinks:
                opened.abort()
            raise
        sink = sinks[0] if len(sinks) == 1 else _Tee(sinks)
        try:
            pipeline = _Pipeline(source, sink, stylizer, TemporalBlender.for_video_files(temporal), cancel,
                                 drop_frames, warmup_frames, max_frames)
            bar = progress_bar("fps")
            bar.disable = not show_progress
            with bar as progress:
                task = progress.add_task("stylizing", total=info.frame_count or None,
                                         status=f"{info.width}x{info.height} -> {dst.name if dst else target}")

                def on_written() -> None:
                    progress.advance(task)
                    if on_progress is not None:
                        on_progress(sink.frames_written, info.frame_count)
                pipeline.on_written = on_written
                stopped = pipeline.run()
                # Stopped early, the bar keeps the clip's total (12/75); done, it shows the real count.
                progress.update(task, completed=sink.frames_written,
                                **({} if stopped is not None else {"total": sink.frames_written}))
        except BaseException as e:  # as VideoSink's own context: kept on a stop, dropped on an error
            for opened in sinks:
                if isinstance(e, KeyboardInterrupt):
                    opened.close(complete=False)
                else:
                    opened.abort()
            raise
        stopped_late = None
        if stopped is None:
            with signals.StopFlag() as late:  # all done: a stop signal now is noted (a second one obeyed)
                closed = [opened.close() for opened in sinks]
            stopped_late = late.requested
        else:
            closed = [opened.close(complete=False) for opened in sinks]  # another signal meanwhile: at once
    result = VideoJobResult(dst, sink.frames_written, float(sink.end_pts * sink.time_base),
                            time.perf_counter() - started, stopped is not None, info.frame_count,
                            stopped or stopped_late, stylizer.backend,
                            stream=closed[-1] if target is not None else None)
    if not quiet:
        report_result(result)
    return result


class _Tee:
    """The pipeline's sink where the frames go both to a file and to a stream (the first one's counts)."""

    def __init__(self, sinks: list):
        self.sinks = sinks
        self.time_base = sinks[0].time_base

    @property
    def frames_written(self) -> int:
        return self.sinks[0].frames_written

    @property
    def end_pts(self) -> int:
        return self.sinks[0].end_pts

    def write(self, rgb, pts: int, duration: int | None = None) -> None:
        for sink in self.sinks:
            sink.write(rgb, pts, duration)

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


def report_result(result: VideoJobResult) -> None:
    fps = result.frames / result.elapsed if result.elapsed > 0 else 0.0
    if result.stream:
        report.say(result.stream)
    if result.output is None:
        if not result.interrupted:
            report.say(f"streamed {result.frames} frames, {result.seconds:.2f} s ({fps:.2f} frames/s on "
                       f"{result.backend})")
        else:
            report.say(f"nst-video: interrupted: streamed the first {result.frames} frames ({result.seconds:.2f} s)")
        return
    if not result.interrupted:
        report.say(f"wrote {result.output}: {result.frames} frames, {result.seconds:.2f} s ({fps:.2f} frames/s "
                   f"on {result.backend})")
    elif result.frames:
        of = f" of about {result.expected_frames}" if result.expected_frames else ""
        report.say(f"nst-video: interrupted: wrote the first {result.frames}{of} frames ({result.seconds:.2f} s) "
                   f"to {result.output}; it plays, but is incomplete")
    else:
        report.say("nst-video: interrupted before any frame was done; nothing written")


class _Pipeline:
    QUEUE_BATCHES = 2  # each queue holds this many batches: enough to ride out a slow frame, little memory

    def __init__(self, source: VideoSource, sink: VideoSink, stylizer: Stylizer, blender: TemporalBlender,
                 cancel: threading.Event | None = None, drop_frames: int = 0, warmup_frames: int = 0,
                 max_frames: int | None = None):
        self.source, self.sink, self.stylizer, self.blender = source, sink, stylizer, blender
        self.cancel = cancel
        self.drop_frames, self.warmup_frames = drop_frames, warmup_frames
        self.decoded_limit = None if max_frames is None else drop_frames + warmup_frames + max_frames
        size = self.QUEUE_BATCHES * stylizer.batch_size + 1
        self.decoded: queue.Queue = queue.Queue(maxsize=size)
        self.stylized: queue.Queue = queue.Queue(maxsize=size)
        self.stop = threading.Event()         # tells the decoder to quit
        self.abandon = threading.Event()      # tells the encoder to quit without writing what is queued
        self.encode_error: BaseException | None = None
        self.on_written = lambda: None

    def run(self) -> int | None:
        """Process the whole video. Returns None, or the stop signal that interrupted it (CANCELLED: the
        cancel event); the frames done so far are in the sink."""
        decoder = threading.Thread(target=self._decode, name="nst-decode", daemon=True)
        encoder = threading.Thread(target=self._encode, name="nst-encode", daemon=True)
        decoder.start()
        encoder.start()
        try:
            self._stylize()
            self._hand_over(_END)
            encoder.join()
            if self.encode_error:
                raise self.encode_error
            return None
        except (KeyboardInterrupt, _Cancelled) as e:
            self.stop.set()
            try:
                self._finish_encoder(encoder)
            except KeyboardInterrupt:  # a second signal: stop at once, keeping nothing
                self.sink.abort()
                raise
            if self.encode_error:
                raise self.encode_error from None
            return CANCELLED if isinstance(e, _Cancelled) else getattr(e, "signum", signal.SIGINT)
        except BaseException:
            self.stop.set()
            self._finish_encoder(encoder, drop=True)
            raise
        finally:
            self.stop.set()
            decoder.join(timeout=5)

    def _stylize(self) -> None:
        waiting: deque[DecodedFrame] = deque()  # frames handed to the Stylizer, in order, for pts and the blender
        warming = self.warmup_frames
        for batch in self.stylizer.stylize_stream(self._batches(waiting)):
            for styled in batch:
                frame = waiting.popleft()
                blended = self.blender(frame.rgb, styled)
                if warming:  # only the blender's state was wanted
                    warming -= 1
                    continue
                self._hand_over((blended, frame.pts, frame.duration))

    def _batches(self, waiting: deque[DecodedFrame]):
        batch = []
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise _Cancelled
            item = self.decoded.get()
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.error
            waiting.append(item)
            self.blender.prepare(item.rgb)  # its optical flow, on the blender's thread, while the network works
            batch.append(self.blender.stabilize(item.rgb))
            if len(batch) == self.stylizer.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _hand_over(self, item) -> None:
        """Queue an item for the encoder; raises the encoder's error if it died."""
        while True:
            if self.encode_error:
                raise self.encode_error
            try:
                self.stylized.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _finish_encoder(self, encoder: threading.Thread, drop: bool = False) -> None:
        """Let the encoder write what is queued (drop=True: only the frame it is writing), and wait for it to
        end. A stop signal meanwhile drops the rest, and is raised once the encoder has ended: the sink must
        not be closed under its feet."""
        interrupted = None
        while encoder.is_alive():
            try:
                if drop:
                    self.abandon.set()
                with contextlib.suppress(queue.Full):
                    self.stylized.put(_END, timeout=0.2)
                encoder.join(timeout=0.2)
            except KeyboardInterrupt as e:
                interrupted, drop = e, True
        if interrupted is not None:
            raise interrupted

    def _decode(self) -> None:
        try:
            for index, frame in enumerate(self.source):
                if index == self.decoded_limit:
                    break
                if index < self.drop_frames:
                    continue
                if not self._put_decoded(frame):
                    return
            self._put_decoded(_END)
        except BaseException as e:  # handed to the main thread, which raises it
            self._put_decoded(_Failure(e))

    def _put_decoded(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.decoded.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _encode(self) -> None:
        try:
            while not self.abandon.is_set():
                try:
                    item = self.stylized.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    return
                rgb, pts, duration = item
                self.sink.write(rgb, pts, duration)
                self.on_written()
        except BaseException as e:
            self.encode_error = e
