"""`--cluster`: the video and image jobs spread over a Ray cluster (the optional extra `nst-video[cluster]`).

Each Ray task runs the one-machine job's own code on its part: a video segment goes through `run_video`, a
picture through the image job's `stylize_picture`. Nothing assumes a shared filesystem: the style file is put
in Ray's object store once (each worker process builds its Stylizer from it once, and keeps it for its next
tasks), segments and pictures travel in as bytes and come back as encoded bytes. The driver cuts the input
at keyframes (segments.py), joins the encoded segments by stream copy with the input's timestamps and audio,
and shows one progress bar for the whole job.

Faults: a task whose worker dies runs again elsewhere, as does one that raised (Ray's retries, up to
TASK_RETRIES more tries); a segment failing on every try fails the job, naming it, and nothing is left under
the final name. A stop signal on the driver cancels the tasks and keeps, like `video` on one machine, a
playable file of the segments done from the start (or nothing)."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from nst_video import report, signals
from nst_video.errors import NstError
from nst_video.image_job import make_output_folder, report_done, stylize_picture
from nst_video.images import encode_image
from nst_video.progress import progress_bar
from nst_video.stylizer import StylizerSettings
from nst_video.video_job import VideoJobResult, report_result, run_video

EXTRA = "pip install 'nst-video[cluster]'"
TASK_RETRIES = 2             # more tries for a task, on another worker where its worker died
SEGMENTS_PER_SLOT = 3        # segments per task slot: the slots stay busy to the end, and a retry redoes little
MIN_SEGMENT_SECONDS = 1.0    # shorter segments cost more in start-up and warm-up than they spread
WARMUP_SECONDS = 1.0         # --temporal: stylized before a segment to warm its state, then dropped
IMAGES_IN_FLIGHT_PER_SLOT = 2  # pictures read into the object store ahead of the workers, per slot
CONNECT_TIMEOUT = 5.0        # seconds to reach a cluster's address before calling it unreachable
SEGMENT_FOLDER = "nst-video-segment-"  # + the worker's pid: a killed worker's folder is known as such
LOCAL_OBJECT_STORE = 512 * 2**20  # local:N: segments and pictures in flight fit; more spills to disk


def _import_ray():
    try:
        import ray
    except ImportError:
        raise NstError(f"--cluster needs Ray, which is not installed: {EXTRA}") from None
    return ray


@contextlib.contextmanager
def connect(address: str):
    """Ray, connected to the cluster at `address` (`auto`: $RAY_ADDRESS or the one running here; `local:N`:
    a new cluster of N CPUs on this machine, on loopback, stopped at the end; else HOST:PORT or
    ray://HOST:PORT), and shut down on leaving."""
    ray = _import_ray()
    local = re.fullmatch(r"local:(\d+)", address.strip())
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if "OMP_WAIT_POLICY" in os.environ:  # the workers paint as this process would (cli.main says why)
        quiet["runtime_env"] = {"env_vars": {"OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"]}}
    try:
        if local:
            ray.init(num_cpus=int(local.group(1)), _node_ip_address="127.0.0.1",
                     object_store_memory=LOCAL_OBJECT_STORE, **quiet)
        elif address.strip() == "auto":
            if os.environ.get("RAY_ADDRESS"):
                _check_reachable(os.environ["RAY_ADDRESS"], f"auto ($RAY_ADDRESS={os.environ['RAY_ADDRESS']})")
            ray.init(address="auto", **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        else:
            _check_reachable(address)
            ray.init(address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
    except NstError:
        raise
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        raise NstError(f"--cluster {address}: cannot connect to a Ray cluster ({str(e).splitlines()[0]})") from None
    _route_ray_messages()
    try:
        yield ray
    finally:
        ray.shutdown()


def _route_ray_messages() -> None:
    """Ray's driver prints the cluster's error messages (a task retried, a worker lost) straight to stderr from
    a thread of its own, which would tear the progress bar apart: each goes through report.warn instead, on
    one line (what happened, and why)."""
    with contextlib.suppress(ImportError):
        import ray._private.worker as ray_driver
        if hasattr(ray_driver, "print_to_stdstream"):
            def warn(data, ignore_prefix: bool = False) -> None:
                for message in data.get("lines", []):
                    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
                    if lines:
                        report.warn("ray: " + (lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"))
            ray_driver.print_to_stdstream = warn


def _check_reachable(address: str, named: str | None = None) -> None:
    """Fail in seconds where nothing answers at the address (Ray itself waits minutes); `named`: the
    address as the user gave it."""
    named = named or address
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]]+?)\]?:(\d+)", address.strip())
    if not match:
        raise NstError(f"--cluster {named}: not a cluster address; give HOST:PORT, ray://HOST:PORT, auto or "
                       "local:N")
    host, port = match.group(1), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise NstError(f"--cluster {named}: cannot reach a Ray cluster there ({why})") from None


def _task_slots(ray, cpus_per_task: int) -> int:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < cpus_per_task:
        raise NstError(f"the Ray cluster has {cpus} CPU(s), and each task needs {cpus_per_task} (--threads): no "
                       "CPU for the job")
    return cpus // cpus_per_task


# --- the style, shipped once ---


@dataclass(frozen=True)
class _ShippedStyle:
    """The style file in the object store (inside a list, so Ray hands the reference over unresolved: a worker
    that has built this Stylizer already does not fetch the weights again), and how to build the Stylizer."""
    key: str
    name: str
    weights: list
    settings: StylizerSettings


def _ship_style(ray, settings: StylizerSettings, threads: int) -> _ShippedStyle:
    from nst_video.styles import StyleRegistry, read_info

    path = StyleRegistry().resolve(settings.style)
    read_info(path)  # a broken style file fails here, before any task
    data = path.read_bytes()
    settings = dataclasses.replace(settings, threads=threads)  # a task's CPUs: its network's threads
    key = hashlib.sha256(data + repr(settings).encode()).hexdigest()
    return _ShippedStyle(key, path.name, [ray.put(data)], settings)


_stylizers: dict = {}  # per worker process: the Stylizers built, by _ShippedStyle.key


def _stylizer(style: _ShippedStyle):
    if style.key not in _stylizers:
        import ray
        with tempfile.TemporaryDirectory(prefix="nst-video-style-") as folder:
            copy = Path(folder) / style.name
            copy.write_bytes(ray.get(style.weights[0]))
            _stylizers[style.key] = style.settings(copy)
    return _stylizers[style.key]


# --- video ---


class _Progress:
    """The frames each segment has written so far (a Ray actor): a retried segment starts again from 0."""

    def __init__(self):
        self.done: dict[int, int] = {}

    def set(self, index: int, frames: int) -> None:
        self.done[index] = frames

    def total(self) -> int:
        return sum(self.done.values())


def _run_segment(style: _ShippedStyle, cut: bytes, suffix: str, plan, options: dict, progress
                 ) -> tuple[bytes, str]:
    """A Ray task: one segment (a SegmentPlan) through the video job; its encoded file's bytes and what ran the
    network."""
    index = plan.index
    stylizer = _stylizer(style)
    progress.set.remote(index, 0)
    _remove_left_behind()
    with tempfile.TemporaryDirectory(prefix=f"{SEGMENT_FOLDER}{os.getpid()}-") as folder:
        src, dst = Path(folder) / "cut.mkv", Path(folder) / f"segment{suffix}"
        src.write_bytes(cut)
        last = [0.0]

        def on_progress(done: int, _expected: int) -> None:
            now = time.monotonic()
            if now - last[0] > 0.25:
                last[0] = now
                progress.set.remote(index, done)
        try:
            result = run_video(src, dst, stylizer, audio=False, show_progress=False, quiet=True,
                               drop_frames=plan.drop, warmup_frames=plan.warmup, max_frames=plan.frames,
                               on_progress=on_progress, **options)
        except NstError as e:  # named by its place in the input, not by the worker's copy
            raise NstError(str(e).replace(str(src), "the segment")) from None
        progress.set.remote(index, result.frames)
        return dst.read_bytes(), stylizer.backend


def _remove_left_behind() -> None:
    """The folders of segment tasks whose worker was killed (a lost worker, a cancelled job) on this node."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SEGMENT_FOLDER}*-*"):
        pid = folder.name.removeprefix(SEGMENT_FOLDER).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists():
            shutil.rmtree(folder, ignore_errors=True)


def run_video_on_cluster(address: str, src: Path, dst: Path, settings: StylizerSettings, temporal: float = 0.0,
                         codec: str | None = None, crf: int = 18, preset: str = "medium", audio: bool = True,
                         max_size: int | None = None, show_progress: bool = True, start: float = 0.0,
                         duration: float | None = None, timings: dict[str, float] | None = None) -> VideoJobResult:
    """`run_video` over a Ray cluster: the input (or `duration` seconds of it from `start`, timed from 0 in the
    output, as run_video) cut at keyframes into segments (SEGMENTS_PER_SLOT per task slot, each at least
    MIN_SEGMENT_SECONDS), each a task; the encoded segments joined into `dst`.
    `timings` (for benchmarks) gets the seconds spent connecting, scanning and cutting (split) and joining."""
    from nst_video.segments import cut_segments, plan_segments, scan_packets

    started = time.perf_counter()
    timings = {} if timings is None else timings
    split_time = 0.0
    scan = scan_packets(src)
    part = bool(start) or duration is not None
    first, end = scan.frame_range(start, duration) if part else (0, scan.frames)
    rate = _frame_rate(scan)
    threads = settings.threads or 1
    split_time += time.perf_counter() - started
    with connect(address) as ray:
        timings["connect"] = time.perf_counter() - started - split_time
        slots = _task_slots(ray, threads)
        warmup = round(WARMUP_SECONDS * rate) if temporal > 0 else 0
        plans = plan_segments(scan, slots * SEGMENTS_PER_SLOT, warmup=warmup,
                              min_frames=max(1, round(MIN_SEGMENT_SECONDS * rate)), first=first, end=end)
        style = _ship_style(ray, settings, threads)
        progress = ray.remote(num_cpus=0)(_Progress).remote()
        task = ray.remote(num_cpus=threads, max_retries=TASK_RETRIES, retry_exceptions=True)(_run_segment)
        # A task keeps to the CPUs Ray counted for it (num_cpus=threads), its decoder and encoder too: by
        # default FFmpeg gives each about a thread per core, so tasks packed on a node would oversubscribe it.
        options = {"temporal": temporal, "codec": codec, "crf": crf, "preset": preset, "max_size": max_size,
                   "codec_threads": threads, "joinable": True}
        refs = {}
        cutting = time.perf_counter()
        for plan, cut in cut_segments(scan, plans):
            refs[task.remote(style, cut, dst.suffix, plan, options, progress)] = plan
        timings["split"] = split_time + time.perf_counter() - cutting
        # A part is timed from its first frame, its audio cut from there, as run_video times it
        zero = plans[0].start_pts if part else 0
        output = _JoinedOutput(dst, src if audio and scan.has_audio else None, plans, scan.time_base, zero,
                               float(zero * scan.time_base) if part else None)
        stop_signal = None
        bar = progress_bar("fps")
        bar.disable = not show_progress
        try:
            with bar as shown:
                bar_task = shown.add_task("stylizing", total=end - first,
                                          status=f"{len(plans)} segments on {slots} workers -> {dst.name}")
                pending = list(refs)
                try:
                    while pending:
                        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.25)
                        for ref in ready:
                            output.add(refs[ref].index, *_segment_result(ray, ref, refs[ref], len(plans), scan))
                        shown.update(bar_task, completed=ray.get(progress.total.remote()))
                except KeyboardInterrupt as e:
                    stop_signal = getattr(e, "signum", None) or signal.SIGINT
                    _cancel(ray, pending)
                shown.update(bar_task, completed=output.frames)
        except BaseException:
            output.abort()
            raise
    _remove_left_behind()  # this node's, where the cancelled tasks ran here (local:N, auto)
    with signals.StopFlag() as late:  # all done: a stop signal now is noted (a second one obeyed), as in video
        output.close(complete=stop_signal is None)
    timings["join"] = output.seconds_spent
    result = VideoJobResult(dst if output.frames else None, output.frames, output.seconds,
                            time.perf_counter() - started, stop_signal is not None, end - first,
                            stop_signal or late.requested, f"{len(plans)} segments on {slots} Ray workers, "
                            f"{output.backend}")
    if result.output is not None or result.interrupted:
        report_result(result)
    return result


class _JoinedOutput:
    """The output file, joined as the segments come in: each one as soon as all before it are in (a segment
    done early waits in memory), so a stop keeps the segments done from the start, in order."""

    def __init__(self, dst: Path, audio_from: Path | None, plans: list, time_base: Fraction, zero_pts: int = 0,
                 audio_start: float | None = None):
        """`zero_pts`: the input's pts shown at time 0 of the output; `audio_start`: where the audio is cut from
        (seconds of the input; None: the whole track)."""
        self.dst, self.audio_from, self.plans, self.time_base = dst, audio_from, plans, time_base
        self.zero_pts, self.audio_start = zero_pts, audio_start
        self.waiting: dict[int, bytes] = {}
        self.next = 0
        self.sink = None
        self.frames, self.seconds, self.seconds_spent, self.backend = 0, 0.0, 0.0, ""

    def add(self, index: int, encoded: bytes, backend: str) -> None:
        from nst_video.segments import SegmentJoiner

        started = time.perf_counter()
        self.waiting[index], self.backend = encoded, backend
        while self.next in self.waiting:
            encoded = self.waiting.pop(self.next)
            if self.sink is None:
                self.sink = SegmentJoiner(self.dst, encoded, audio_from=self.audio_from, audio_start=self.audio_start)
            plan = self.plans[self.next]
            self.frames += self.sink.add_segment(encoded, Fraction(plan.start_pts - self.zero_pts) * self.time_base)
            self.next += 1
        self.seconds_spent += time.perf_counter() - started

    def close(self, complete: bool) -> None:
        """Finish the file (complete=False: after a stop, the audio cut where the video ends); nothing joined:
        nothing written."""
        if self.sink is None:
            return
        started = time.perf_counter()
        try:
            self.sink.close(complete=complete)
        except BaseException:
            self.sink.abort()
            raise
        self.seconds = float(self.sink.end_pts * self.sink.time_base)
        self.seconds_spent += time.perf_counter() - started

    def abort(self) -> None:
        if self.sink is not None:
            self.sink.abort()


def _cancel(ray, refs: list) -> None:
    """Stop the tasks not done yet, at once (their workers are killed). On an error the job's end stops them
    instead (Ray ends a driver's tasks with it): force-cancelling a task whose reply is on its way can crash
    Ray 2.60's driver (task_manager.cc: Check failed: it != submissible_tasks_.end())."""
    _, running = ray.wait(refs, num_returns=len(refs), timeout=0) if refs else ([], [])
    for ref in running:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def _frame_rate(scan) -> float:
    """Frames a second, from the packets' timestamps (what a segment's length in frames is measured by)."""
    span = float((max(scan.pts) - min(scan.pts)) * scan.time_base)
    return (scan.frames - 1) / span if span > 0 and scan.frames > 1 else 25.0


def _segment_result(ray, ref, plan, count: int, scan):
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:
        cause = getattr(e, "cause", None)
        why = str(cause) if isinstance(cause, NstError) else _first_line(e)
        begin = float(plan.start_pts * scan.time_base)
        raise NstError(f"segment {plan.index + 1} of {count} (frames {plan.start}-{plan.end - 1}, from "
                       f"{begin:.2f} s) failed on every try ({TASK_RETRIES + 1}): {why}") from None


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(e).__name__


# --- images ---


def _run_picture(style: _ShippedStyle, data: bytes, name: str, suffix: str, max_size: int | None) -> bytes:
    """A Ray task: one picture through the image job's own steps; the encoded output's bytes."""
    styled, alpha = stylize_picture(io.BytesIO(data), _stylizer(style), max_size, name=name)
    out = io.BytesIO()
    encode_image(out, styled, alpha, suffix)
    return out.getvalue()


def run_images_on_cluster(address: str, jobs: list[tuple[Path, Path]], settings: StylizerSettings,
                          max_size: int | None) -> int:
    """`run_images` over a Ray cluster: each picture a task (a window of them in flight, so a folder of
    50,000 is never all in memory at once); outputs written here, atomically, as on one machine; a failing
    file is reported on one line and skipped. Returns the number of failures."""
    from nst_video.atomic import atomic_output

    threads = settings.threads or 1
    failures = 0
    with connect(address) as ray:
        slots = _task_slots(ray, threads)
        style = _ship_style(ray, settings, threads)
        task = ray.remote(num_cpus=threads, max_retries=TASK_RETRIES)(_run_picture)
        waiting = list(jobs)
        in_flight: dict = {}
        with progress_bar("img/s", transient=len(jobs) == 1) as shown:
            bar_task = shown.add_task("stylizing", total=len(jobs), status=f"on {slots} Ray workers")
            try:
                while waiting or in_flight:
                    while waiting and len(in_flight) < slots * IMAGES_IN_FLIGHT_PER_SLOT:
                        src, dst = waiting.pop(0)
                        try:
                            data = src.read_bytes()
                        except OSError as e:
                            failures += _picture_failed(NstError(f"{src}: cannot read ({e.strerror or e})"), jobs)
                            shown.advance(bar_task)
                            continue
                        in_flight[task.remote(style, data, str(src), dst.suffix, max_size)] = (src, dst)
                    if not in_flight:
                        continue
                    ready, _ = ray.wait(list(in_flight), num_returns=1)
                    src, dst = in_flight.pop(ready[0])
                    shown.update(bar_task, status=src.name)
                    try:
                        encoded = _picture_result(ray, ready[0])
                        make_output_folder(dst)
                        try:
                            with atomic_output(dst) as tmp:
                                tmp.write_bytes(encoded)
                        except OSError as e:
                            raise NstError(f"{dst}: cannot write ({e.strerror or e})") from None
                    except NstError as e:
                        failures += _picture_failed(e, jobs)
                    shown.advance(bar_task)
            except KeyboardInterrupt:
                _cancel(ray, list(in_flight))
                raise
    report_done(jobs, failures)
    return failures


def _picture_result(ray, ref) -> bytes:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, NstError):
            raise cause from None
        raise NstError(f"failed on every try ({TASK_RETRIES + 1}): {_first_line(e)}") from None


def _picture_failed(e: NstError, jobs: list) -> int:
    """One picture's failure: the error itself for a single picture (as on one machine), else one line."""
    if len(jobs) == 1:
        raise e
    report.error(str(e))
    return 1
