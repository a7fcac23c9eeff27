"""`nst-video serve`: set up the styles, the device's workers and a temporary folder, bind the socket, print
the URL, and run uvicorn until a stop signal.

Stopping: the first SIGINT, SIGTERM or SIGHUP stops taking connections, closes the WebSockets and waits up to
GRACE seconds for requests in flight (a second signal cuts that short). Then the video jobs are cancelled
(a running one stops before its next frame), the workers end, the temporary folder (uploads, results) is
removed, and the command exits with 128 + the signal (130, 143, 129), as every nst-video job does."""
from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from nst_video import report, signals
from nst_video.errors import NstError
from nst_video.stylizer import Stylizer
from nst_video.web.app import Limits, ServerState, create_app
from nst_video.web.catalog import StyleCatalog, Thumbnails
from nst_video.web.jobs import VideoJobs
from nst_video.web.worker import DeviceWorker

GRACE = 3  # seconds given to requests in flight after a stop signal


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    styles: list[str] | None = None  # None: every installed style
    device: str = "auto"
    backend: str = "auto"
    fp16: bool = False
    threads: int | None = None
    precision: str = "auto"
    token: str | None = None
    queue: int = 4                   # images / live frames waiting for the device, beyond the one running
    max_jobs: int = 8                # video jobs queued or running
    keep_results: float = 3600.0     # seconds a finished video's result is kept
    limits: Limits = field(default_factory=Limits)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(opts: ServeOptions) -> None:
    """Run the server until a stop signal (then raise signals.Interrupted, for the exit status)."""
    sock = _bind(opts.host, opts.port)  # first: a port in use is reported before the slow loading
    root = worker = jobs = server = None
    try:
        catalog = StyleCatalog(opts.styles)
        first = catalog.model(catalog.default)
        network = {"device": opts.device, "fp16": opts.fp16, "backend": opts.backend, "threads": opts.threads,
                   "precision": opts.precision}
        # Two Stylizers: one for the short work (images, live frames, thumbnails) with batches of 1, one for the
        # video jobs with the device's own batch size; each is only ever used by its own thread.
        stylizer = Stylizer(first, batch_size=1, **network)
        video_stylizer = Stylizer(first, **network)
        root = Path(tempfile.mkdtemp(prefix="nst-video-serve-"))
        worker = DeviceWorker(stylizer, max_pending=opts.queue)
        jobs = VideoJobs(root / "jobs", video_stylizer, catalog, max_jobs=opts.max_jobs,
                         keep_seconds=opts.keep_results)
        state = ServerState(catalog, worker, jobs, Thumbnails(catalog, worker), opts.limits, token=opts.token,
                            loopback_only=is_loopback(opts.host))
        _route_uvicorn_logs()
        config = uvicorn.Config(create_app(state), log_config=None, access_log=False, lifespan="off",
                                ws="websockets-sansio", ws_per_message_deflate=False,
                                ws_max_size=opts.limits.max_frame_bytes + 4096, timeout_graceful_shutdown=GRACE,
                                limit_concurrency=256, server_header=False, proxy_headers=False)
        port = sock.getsockname()[1]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(opts.host, opts.host)  # every address: this one too
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{port}/" + (f"?token={opts.token}" if opts.token else "")
        server = _Server(config, ready=lambda: report.say(
            f"nst-video serve: {url}  ({len(catalog.names())} style(s) on {stylizer.backend}; Ctrl-C stops)"))
        if not is_loopback(opts.host):
            report.warn(f"serving on {opts.host}: anyone who can reach this machine on port {port} can use it"
                        + ("" if opts.token else "; add --token SECRET to require a token")
                        + " (the browser's camera works only on localhost or over HTTPS)")
        server.run(sockets=[sock])
    finally:
        if jobs is not None:
            jobs.close()
        if worker is not None:
            worker.close()
        sock.close()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    if server is not None and server.stop_signal is not None:
        raise signals.Interrupted(server.stop_signal)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced: a port in use is one error line."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise NstError(f"--host {host}: cannot resolve it ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        hint = " (is another server running there? choose another --port, or 0 for any free one)" \
            if e.errno in (98, 48) else ""
        raise NstError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    sock.set_inheritable(True)
    return sock


class _UvicornToReport(logging.Handler):
    """uvicorn's warnings and errors as one `nst-video: warning:` line each, never a traceback (unless
    NST_VIDEO_DEBUG is set)."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            message = record.getMessage()
            if record.exc_info and os.environ.get("NST_VIDEO_DEBUG"):
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            report.warn(f"serve: {message}")


def _route_uvicorn_logs() -> None:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [_UvicornToReport()] if name == "uvicorn" else []
        logger.setLevel(logging.WARNING)
        logger.propagate = name != "uvicorn"


class _Server(uvicorn.Server):
    """uvicorn's server with nst-video's stop signals: SIGINT, SIGTERM and SIGHUP alike (uvicorn's own handling
    knows no SIGHUP), the signal kept for the exit status, and nothing re-raised afterwards. The handler only
    sets flags; uvicorn's loop sees them within 0.1 s."""

    def __init__(self, config: uvicorn.Config, ready):
        super().__init__(config)
        self.ready = ready
        self.stop_signal: int | None = None

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self.ready()

    async def shutdown(self, sockets=None) -> None:
        if self.stop_signal is not None:
            report.say(f"nst-video serve: stopping ({signals.signal_name(self.stop_signal)})")
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self):
        def handle(signum: int) -> None:
            if self.should_exit:  # a second signal: stop waiting for requests in flight
                self.force_exit = True
            else:
                self.stop_signal, self.should_exit = signum, True
        with signals.handle_stop_signals(handle):
            yield
