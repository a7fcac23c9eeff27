"""The routes: the page, the HTTP API and the live WebSocket, each calling the jobs the CLI calls.

  GET    /                     the page (static/index.html)
  GET    /health               status, device, queues, limits
  GET    /styles               names, titles, credits, thumbnail URLs
  GET    /styles/NAME/thumbnail.jpg
  POST   /stylize              an image (multipart field `image`, or the body) -> the stylized image
  POST   /stylize_download     the same, as an attachment with a file name
  POST   /jobs                 a video (field `video`, or the body) -> 202 and the job
  GET    /jobs, /jobs/ID       the jobs / one job: state, frames, fps, ETA
  GET    /jobs/ID/result       the H.264 MP4 (?download=1: as an attachment); Range requests work
  DELETE /jobs/ID              cancel (queued, running) or delete (finished); POST /jobs/ID/cancel too
  WS     /live                 the camera (see live.py)

Every error is JSON, {"error": message, "status": code}: 400 bad input, 401 no or wrong token, 403 a foreign
origin or host, 404 unknown style, job or path, 405 wrong method, 409 result not ready, 413 too large,
415 not an image / video, 503 busy (with Retry-After). Nothing raises through to a traceback."""
from __future__ import annotations

import asyncio
import functools
import hmac
import io
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from nst_video import __version__, report
from nst_video.errors import NstError
from nst_video.images import encode_image, load_image
from nst_video.web.catalog import STATIC, StyleCatalog, Thumbnails, use_style
from nst_video.web.httperrors import ApiError, busy, from_job_error
from nst_video.web.jobs import VideoJobs
from nst_video.web.live import LiveSession
from nst_video.web.uploads import MEDIA_TYPES, Upload, download_name, flag, image_format, number, read_upload
from nst_video.web.worker import Busy, DeviceWorker

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
PUBLIC_PATHS = ("/", "/health", "/favicon.ico")  # and /static/...: the page itself needs no token


@dataclass
class Limits:
    max_image_bytes: int = 40_000_000
    max_video_bytes: int = 500_000_000
    max_side: int = 1600          # long side of images and videos, pixels (a request may ask for less)
    max_frame_bytes: int = 4_000_000
    live_max_side: int = 640


@dataclass
class ServerState:
    catalog: StyleCatalog
    worker: DeviceWorker
    jobs: VideoJobs
    thumbnails: Thumbnails
    limits: Limits
    token: str | None = None
    loopback_only: bool = True  # bound to a loopback address: only local Host names are answered


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def api(handler):
    """Every error a route meets becomes a JSON answer with the status that fits; a bug is a 500 and one line
    on the server's stderr (the traceback with NST_VIDEO_DEBUG=1)."""
    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as e:
            return error_response(e.status, e.message, e.headers)
        except Busy as e:
            e = busy("the device's queue is full", e.retry_after)
            return error_response(e.status, e.message, e.headers)
        except NstError as e:
            e = from_job_error(e)
            return error_response(e.status, e.message)
        except HTTPException as e:
            return error_response(e.status_code, str(e.detail), dict(e.headers or {}))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if os.environ.get("NST_VIDEO_DEBUG"):
                raise
            report.warn(f"serve: internal error in {request.method} {request.url.path}: {type(e).__name__}: {e}")
            return error_response(500, f"internal error: {type(e).__name__}: {e}")
    return wrapper


def create_app(state: ServerState) -> Starlette:
    catalog, worker, jobs, limits = state.catalog, state.worker, state.jobs, state.limits

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def favicon(request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @api
    async def health(request: Request) -> Response:
        stylizer = worker.stylizer
        return JSONResponse({
            "status": "ok", "version": __version__, "device": stylizer.device.type, "backend": stylizer.backend,
            "styles": len(catalog.names()),
            "queue": {"running": worker.running, "waiting": worker.pending, "capacity": worker.max_pending},
            "video_jobs": {"active": jobs.active, "capacity": jobs.max_jobs},
            "limits": limits.__dict__, "token_required": state.token is not None,
        })

    @api
    async def styles(request: Request) -> Response:
        return JSONResponse({"default": catalog.default, "styles": [catalog.describe(n) for n in catalog.names()]})

    @api
    async def thumbnail(request: Request) -> Response:
        data = await state.thumbnails.get(request.path_params["name"])
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    async def stylize(request: Request, attachment: bool) -> Response:
        worker.check_room()  # a full queue refuses at once, before the upload is read
        upload = await read_upload(request, ("image", "file"), limits.max_image_bytes, "an image")
        try:
            p = upload.params
            style = p.get("style") or catalog.default
            catalog.info(style)
            strength = number(p, "strength", 1.0, 0.0, 1.0)
            preserve_color = flag(p, "preserve_color")
            max_size = min(number(p, "max_size", limits.max_side, 8, None, int), limits.max_side)
            suffix = image_format(p, upload.filename)
            data, (width, height), network_ms = await worker.run(
                lambda stylizer: _stylize_upload(stylizer, catalog, upload, style, strength, preserve_color,
                                                 max_size, suffix))
        finally:
            upload.close()
        name = download_name(upload.filename, style, suffix)
        return Response(data, media_type=MEDIA_TYPES[suffix], headers={
            "Content-Disposition": f'{"attachment" if attachment else "inline"}; filename="{name}"',
            "X-Style": style, "X-Image-Size": f"{width}x{height}", "X-Network-Ms": f"{network_ms:.0f}",
            "Cache-Control": "no-store"})

    @api
    async def stylize_inline(request: Request) -> Response:
        return await stylize(request, attachment=False)

    @api
    async def stylize_download(request: Request) -> Response:
        return await stylize(request, attachment=True)

    @api
    async def create_job(request: Request) -> Response:
        jobs.check_room()  # before reading a long upload that would be refused anyway
        upload = await read_upload(request, ("video", "file"), limits.max_video_bytes, "a video")
        try:
            p = upload.params
            options = {"strength": number(p, "strength", 1.0, 0.0, 1.0), "preserve_color": flag(p, "preserve_color"),
                       "max_size": min(number(p, "max_size", limits.max_side, 16, None, int), limits.max_side),
                       "temporal": number(p, "temporal", 0.0, 0.0, 1.0)}
            job = jobs.new(upload.filename, p.get("style") or catalog.default, **options)
            try:
                await asyncio.to_thread(_copy, upload, job.input)
                await asyncio.to_thread(jobs.probe, job)
                jobs.enqueue(job)
            except BaseException:
                jobs.discard(job)
                raise
        finally:
            upload.close()
        return JSONResponse(jobs.describe(job), status_code=202, headers={"Location": f"/jobs/{job.id}"})

    @api
    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": jobs.list()})

    @api
    async def job_status(request: Request) -> Response:
        return JSONResponse(jobs.describe(jobs.get(request.path_params["job_id"])))

    @api
    async def job_result(request: Request) -> Response:
        job = jobs.get(request.path_params["job_id"])
        if job.state != "done":
            detail = f" ({job.frames} of about {job.total} frames)" if job.state == "running" and job.total else ""
            raise ApiError(409 if job.state in ("queued", "running") else 404,
                           f"video job {job.id} is {job.state}{detail}: no result"
                           + (f" ({job.error})" if job.error else ""))
        if not job.output.is_file():
            raise ApiError(404, f"the result of video job {job.id} has been removed")
        download = flag(dict(request.query_params), "download")
        return FileResponse(job.output, media_type="video/mp4", filename=job.download_name,
                            content_disposition_type="attachment" if download else "inline")

    @api
    async def cancel_job(request: Request) -> Response:
        return JSONResponse(jobs.cancel(request.path_params["job_id"]))

    async def live(websocket: WebSocket) -> None:
        await LiveSession(websocket, worker, catalog, limits.live_max_side, limits.max_frame_bytes).run()

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = {404: f"not found: {request.url.path}",
                   405: f"method {request.method} is not allowed on {request.url.path}"}.get(exc.status_code,
                                                                                              str(exc.detail))
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/health", health),
        Route("/styles", styles),
        Route("/styles/{name}/thumbnail.jpg", thumbnail),
        Route("/stylize", stylize_inline, methods=["POST"]),
        Route("/stylize_download", stylize_download, methods=["POST"]),
        Route("/jobs", list_jobs, methods=["GET"]),
        Route("/jobs", create_job, methods=["POST"]),
        Route("/jobs/{job_id}", job_status, methods=["GET"]),
        Route("/jobs/{job_id}", cancel_job, methods=["DELETE"]),
        Route("/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/jobs/{job_id}/result", job_result, methods=["GET"]),
        WebSocketRoute("/live", live),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.add_middleware(Guard, token=state.token, loopback_only=state.loopback_only)
    return app


def _stylize_upload(stylizer, catalog: StyleCatalog, upload: Upload, style: str, strength: float,
                    preserve_color: bool, max_size: int, suffix: str):
    """On the device worker: what image_job.run_images does for one file, with the upload in and bytes out."""
    image = load_image(upload.file, max_size=max_size, name=upload.filename)
    use_style(stylizer, catalog, style, strength, preserve_color)
    started = time.perf_counter()
    styled = stylizer.stylize_image(image.rgb)
    network_ms = (time.perf_counter() - started) * 1000
    out = io.BytesIO()
    encode_image(out, styled, image.alpha, suffix)
    return out.getvalue(), styled.shape[1::-1], network_ms


def _copy(upload: Upload, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


class Guard:
    """ASGI middleware in front of every route:
      - Host: bound to loopback, only requests for localhost / 127.0.0.1 / [::1] are answered (a web page
        elsewhere cannot reach the server through DNS rebinding);
      - Origin: a browser request from another site's page is refused (403), WebSockets included;
      - token: with --token, every API request must carry it (Authorization: Bearer TOKEN, or ?token=TOKEN
        for what a page cannot add headers to: images, videos, WebSockets); the page and its assets need none."""

    def __init__(self, app, token: str | None, loopback_only: bool):
        self.app, self.token, self.loopback_only = app, token, loopback_only

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self.refusal(scope)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": refusal[1][:120]})
                else:
                    await error_response(*refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.loopback_only and _hostname(host) not in LOOPBACK_NAMES:
            return 403, f"host {host!r} is not served: this server answers only on localhost"
        origin = headers.get("origin")
        if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
            return 403, f"requests from another site ({origin}) are refused"
        path = scope.get("path", "")
        if self.token and path not in PUBLIC_PATHS and not path.startswith("/static/"):
            given = headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else QueryParams(scope.get("query_string",
                                                                                              b"")).get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, "a token is required: add ?token=TOKEN or the header 'Authorization: Bearer TOKEN'"
        return None


def _hostname(host: str) -> str:
    """The name in a Host header, without the port: 'localhost:8000' -> 'localhost', '[::1]:80' -> '[::1]'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
