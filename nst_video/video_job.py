"""The video-file job: Source (decode thread) -> Stylizer (batched, this thread) -> Temporal -> Sink (encode
thread), joined by bounded queues, so decoding and encoding run while the network does.

Ctrl-C stops the job cleanly: the frames already stylized are encoded, the file is finalised (playable, with
the audio cut to match) and renamed into place, and the job says how much it wrote."""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import click

from nst_video.errors import NstError
from nst_video.progress import progress_bar
from nst_video.stylizer import Stylizer
from nst_video.temporal import TemporalBlender
from nst_video.video_io import Frame, VideoSink, VideoSource

_END = object()  # end-of-stream marker on the queues


@dataclass
class VideoJobResult:
    output: Path
    frames: int
    seconds: float        # length of the video written
    elapsed: float        # wall-clock seconds of the job
    interrupted: bool


@dataclass
class _Failure:
    error: BaseException


def check_paths(src: Path, dst: Path) -> None:
    if not src.exists():
        raise NstError(f"{src}: no such file")
    if dst.is_dir():
        raise NstError(f"{dst}: is a folder; give an output file name such as {dst / (src.stem + '_styled.mp4')}")
    if dst.exists() and os.path.samefile(src, dst):
        raise NstError(f"output {dst} is the input; refusing to overwrite it (choose another output)")


def run_video(src: Path, dst: Path, stylizer: Stylizer, temporal: float = 0.0, codec: str | None = None,
              crf: int = 18, preset: str = "medium", audio: bool = True, show_progress: bool = True,
              quiet: bool = False) -> VideoJobResult:
    """Stylize the video file `src` into `dst`. Returns what was written; on Ctrl-C, a shorter but complete
    file (interrupted=True)."""
    src, dst = Path(src), Path(dst)
    check_paths(src, dst)
    started = time.perf_counter()
    with VideoSource(src) as source:
        info = source.info
        with VideoSink(dst, info.width, info.height, info.time_base, info.frame_rate, codec=codec, crf=crf,
                       preset=preset, audio_from=src if audio and info.audio else None,
                       colorspace=info.colorspace) as sink:
            pipeline = _Pipeline(source, sink, stylizer, TemporalBlender(temporal))
            bar = progress_bar("fps")
            bar.disable = not show_progress
            with bar as progress:
                task = progress.add_task("stylizing", total=info.frame_count or None,
                                         status=f"{info.width}x{info.height} -> {dst.name}")
                pipeline.on_written = lambda: progress.advance(task)
                interrupted = pipeline.run()
                progress.update(task, total=sink.frames_written, completed=sink.frames_written)
            if interrupted:
                sink.close(complete=False)
    result = VideoJobResult(dst, sink.frames_written, float(sink.end_pts * sink.time_base),
                            time.perf_counter() - started, interrupted)
    if not quiet:
        _report(result, info.frame_count)
    return result


def _report(result: VideoJobResult, expected_frames: int) -> None:
    fps = result.frames / result.elapsed if result.elapsed > 0 else 0.0
    if not result.interrupted:
        click.echo(f"wrote {result.output}: {result.frames} frames, {result.seconds:.2f} s "
                   f"({fps:.2f} frames/s)", err=True)
    elif result.frames:
        of = f" of about {expected_frames}" if expected_frames else ""
        click.echo(f"nst-video: interrupted: wrote the first {result.frames}{of} frames "
                   f"({result.seconds:.2f} s) to {result.output}; it plays, but is incomplete", err=True)
    else:
        click.echo("nst-video: interrupted before any frame was done; nothing written", err=True)


class _Pipeline:
    QUEUE_BATCHES = 2  # each queue holds this many batches: enough to ride out a slow frame, little memory

    def __init__(self, source: VideoSource, sink: VideoSink, stylizer: Stylizer, blender: TemporalBlender):
        self.source, self.sink, self.stylizer, self.blender = source, sink, stylizer, blender
        size = self.QUEUE_BATCHES * stylizer.batch_size + 1
        self.decoded: queue.Queue = queue.Queue(maxsize=size)
        self.stylized: queue.Queue = queue.Queue(maxsize=size)
        self.stop = threading.Event()         # tells the decoder to quit
        self.encode_error: BaseException | None = None
        self.on_written = lambda: None

    def run(self) -> bool:
        """Process the whole video; True if interrupted by Ctrl-C (the frames done so far are in the sink)."""
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
            return False
        except KeyboardInterrupt:
            self.stop.set()
            self._finish_encoder(encoder)
            if self.encode_error:
                raise self.encode_error from None
            return True
        except BaseException:
            self.stop.set()
            self._finish_encoder(encoder, drop=True)
            raise
        finally:
            self.stop.set()
            decoder.join(timeout=5)

    def _stylize(self) -> None:
        waiting: deque[Frame] = deque()  # frames handed to the Stylizer, in order, for pts and the blender
        for batch in self.stylizer.stylize_stream(self._batches(waiting)):
            for styled in batch:
                frame = waiting.popleft()
                self._hand_over((self.blender(frame.rgb, styled), frame.pts, frame.duration))

    def _batches(self, waiting: deque[Frame]):
        batch = []
        while True:
            item = self.decoded.get()
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.error
            waiting.append(item)
            batch.append(item.rgb)
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
        """Let the encoder write what is queued (or drop it), then wait for it to end."""
        if drop:
            while not self.stylized.empty():
                self.stylized.get_nowait()
        while encoder.is_alive():
            try:
                self.stylized.put(_END, timeout=0.2)
                break
            except queue.Full:
                continue
        encoder.join()

    def _decode(self) -> None:
        try:
            for frame in self.source:
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
            while True:
                item = self.stylized.get()
                if item is _END:
                    return
                rgb, pts, duration = item
                self.sink.write(rgb, pts, duration)
                self.on_written()
        except BaseException as e:
            self.encode_error = e
