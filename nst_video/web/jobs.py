"""Video jobs: a bounded queue of uploaded videos, stylized one at a time by video_job.run_video (the job the
CLI's `nst-video video` runs) on a thread of their own, with a Stylizer of their own.

A job's files live in its own folder under the server's temporary folder, under fixed names (`input`,
`output.mp4`): nothing a request says becomes a path. The input is removed as soon as the job ends; the
result is kept for `keep_seconds` (or until it is deleted, or the server stops), so the page can play it
and offer it for download. Cancelling a running job uses run_video's cancel event: it stops before the next
frame and its files are removed."""
from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from nst_video import report
from nst_video.errors import NstError
from nst_video.stylizer import Stylizer
from nst_video.video_io import VideoSource
from nst_video.video_job import run_video
from nst_video.web.catalog import StyleCatalog, use_style
from nst_video.web.httperrors import ApiError, busy, from_job_error
from nst_video.web.uploads import download_name

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")


@dataclass
class VideoJob:
    id: str
    folder: Path
    filename: str          # as the client named the upload: messages and the download's name only
    style: str
    strength: float = 1.0
    preserve_color: bool = False
    max_size: int | None = None
    temporal: float = 0.0
    state: str = "queued"  # queued -> running -> done | failed | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    first_frame_at: float | None = None
    frames: int = 0
    total: int = 0         # the frames expected, from the header (an estimate; 0: unknown)
    width: int = 0
    height: int = 0
    seconds: float = 0.0   # length of the result
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def input(self) -> Path:
        return self.folder / "input"

    @property
    def output(self) -> Path:
        return self.folder / "output.mp4"

    @property
    def download_name(self) -> str:
        return download_name(self.filename, self.style, ".mp4", fallback="video")

    def progress(self, frames: int, expected: int) -> None:
        """run_video's on_progress (from its encoder thread)."""
        if self.first_frame_at is None:
            self.first_frame_at = time.time()
        self.frames = frames
        if expected:
            self.total = max(expected, frames)

    def user_message(self, error: BaseException) -> str:
        """An error's text with the job's own paths put as the user knows them."""
        return str(error).replace(str(self.input), self.filename).replace(str(self.output), self.download_name)

    def describe(self, position: int | None = None) -> dict:
        now = time.time()
        fps = eta = None
        if self.state == "running" and self.first_frame_at and self.frames > 1:
            fps = (self.frames - 1) / max(now - self.first_frame_at, 1e-6)
            if self.total > self.frames:
                eta = round((self.total - self.frames) / fps, 1)
        if self.state == "done":
            percent = 100.0
        else:
            percent = round(min(99.9, 100.0 * self.frames / self.total), 1) if self.total else 0.0
        base = f"jobs/{self.id}"
        return {
            "id": self.id, "state": self.state, "filename": self.filename, "style": self.style,
            "strength": self.strength, "preserve_color": self.preserve_color, "max_size": self.max_size,
            "temporal": self.temporal, "width": self.width, "height": self.height,
            "frames": self.frames, "total_frames": self.total or None, "percent": percent,
            "fps": round(fps, 2) if fps else None, "eta_seconds": eta, "queue_position": position,
            "elapsed_seconds": round((self.finished or now) - self.started, 1) if self.started else None,
            "seconds": round(self.seconds, 3) if self.state == "done" else None, "error": self.error,
            "status_url": base, "result_url": f"{base}/result" if self.state == "done" else None,
            "download_url": f"{base}/result?download=1" if self.state == "done" else None,
            "download_name": self.download_name,
        }


class VideoJobs:
    """The jobs; at most `max_jobs` queued or running (more: 503), finished ones kept `keep_seconds`."""

    MAX_FINISHED = 32  # finished jobs remembered (and their results kept) at most

    def __init__(self, root: Path, stylizer: Stylizer, catalog: StyleCatalog, max_jobs: int = 8,
                 keep_seconds: float = 3600.0):
        self.root, self.stylizer, self.catalog = Path(root), stylizer, catalog
        self.max_jobs, self.keep_seconds = max_jobs, keep_seconds
        self._jobs: dict[str, VideoJob] = {}
        self._queue: deque[VideoJob] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="nst-serve-video", daemon=True)
        self._thread.start()

    # --- for the routes ---

    @property
    def active(self) -> int:
        return sum(job.state in ACTIVE for job in self._jobs.values())

    def check_room(self) -> None:
        """503 before an upload is read, where the queue is full anyway."""
        if self._closing:
            raise busy("the server is stopping", 5)
        if self.active >= self.max_jobs:
            raise busy(f"{self.max_jobs} video jobs are queued or running", self._retry_after())

    def new(self, filename: str, style: str, **options) -> VideoJob:
        """A job with its folder, not yet queued: the upload is copied to job.input, then enqueue() it."""
        self.catalog.info(style)  # 404 before anything is stored
        job_id = secrets.token_hex(8)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        return VideoJob(job_id, folder, filename, style, **options)

    def probe(self, job: VideoJob) -> None:
        """Open the upload as the job will (a blocking call): not a video is 415, unreadable 400."""
        try:
            with VideoSource(job.input, max_size=job.max_size) as source:
                info = source.info
        except NstError as e:
            raise from_job_error(type(e)(job.user_message(e))) from None  # the same kind: 413 / 415 / 400
        job.width, job.height, job.total = info.width, info.height, info.frame_count

    def enqueue(self, job: VideoJob) -> None:
        with self._cond:
            try:
                self.check_room()
            except ApiError:
                self.discard(job)
                raise
            self._jobs[job.id] = job
            self._queue.append(job)
            self._cond.notify()
        report.event("serve", f"video job {job.id}: queued {job.filename} ({job.width}x{job.height}, "
                              f"{job.style})")
        self._expire()

    def discard(self, job: VideoJob) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(job.folder)

    def get(self, job_id: str) -> VideoJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"unknown video job '{job_id}' (finished jobs are kept for "
                                f"{self.keep_seconds:g} s)")
        return job

    def position(self, job: VideoJob) -> int | None:
        """1 for the next to run; None once it runs."""
        with self._cond:
            return self._queue.index(job) + 1 if job in self._queue else None

    def describe(self, job: VideoJob) -> dict:
        return job.describe(self.position(job))

    def list(self) -> list[dict]:
        return [self.describe(job) for job in list(self._jobs.values())]

    def cancel(self, job_id: str) -> dict:
        """Cancel a queued or running job (its files are removed), or delete a finished one and its result."""
        with self._cond:
            job = self.get(job_id)
            if job.state == "queued":
                self._queue.remove(job)
                self._finish(job, "cancelled")
                self.discard(job)
            elif job.state == "running":
                job.cancel.set()  # the runner stops before the next frame and removes the files
                self._finish(job, "cancelled")
            else:
                del self._jobs[job.id]
                self.discard(job)
                described = job.describe()
                described["state"] = "deleted"
                return described
        report.event("serve", f"video job {job.id}: cancelled")
        return job.describe()

    def close(self, timeout: float = 10.0) -> None:
        """Stop: cancel every job, wait up to `timeout` s for the running one to finish its frame."""
        with self._cond:
            self._closing = True
            for job in self._jobs.values():
                job.cancel.set()
            self._cond.notify_all()
        self._thread.join(timeout)

    # --- the runner ---

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._queue.popleft()
                job.state, job.started = "running", time.time()
            self._process(job)
            self._expire()

    def _process(self, job: VideoJob) -> None:
        try:
            use_style(self.stylizer, self.catalog, job.style, job.strength, job.preserve_color)
            result = run_video(job.input, job.output, self.stylizer, temporal=job.temporal, show_progress=False,
                               quiet=True, max_size=job.max_size, on_progress=job.progress, cancel=job.cancel)
        except NstError as e:
            job.error = job.user_message(e)
            self._finish(job, "failed")
        except Exception as e:  # a bug: the job fails, the server goes on
            job.error = f"internal error: {type(e).__name__}: {job.user_message(e)}"
            self._finish(job, "failed")
        else:
            if job.cancel.is_set() or result.interrupted:
                self._finish(job, "cancelled")
            else:
                job.frames, job.total, job.seconds = result.frames, result.frames, result.seconds
                self._finish(job, "done")
        finally:
            with contextlib.suppress(OSError):
                job.input.unlink()
        if job.state == "cancelled":
            self.discard(job)
        if job.state == "failed":
            with contextlib.suppress(OSError):
                job.output.unlink()
        elapsed = (job.finished or time.time()) - (job.started or job.created)
        detail = f": {job.error}" if job.error else f", {job.frames} frames in {elapsed:.1f} s"
        report.event("serve", f"video job {job.id}: {job.state}{detail}")

    def _finish(self, job: VideoJob, state: str) -> None:
        if job.state in FINISHED:  # cancelled while running: stays cancelled
            return
        job.state, job.finished = state, time.time()

    def _expire(self) -> None:
        """Forget finished jobs older than keep_seconds, and all but the newest MAX_FINISHED, with their files."""
        now = time.time()
        with self._cond:
            finished = sorted((j for j in self._jobs.values() if j.state in FINISHED), key=lambda j: j.finished)
            old = [j for j in finished if now - j.finished > self.keep_seconds]
            old += [j for j in finished[:max(0, len(finished) - self.MAX_FINISHED)] if j not in old]
            for job in old:
                del self._jobs[job.id]
                self.discard(job)

    def _retry_after(self) -> int:
        """A guess: the running job's remaining time, 5 s to 5 min."""
        running = [j for j in self._jobs.values() if j.state == "running"]
        eta = running[0].describe().get("eta_seconds") if running else None
        return int(min(300, max(5, eta or 30)))
