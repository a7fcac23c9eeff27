"""`nst-video serve`'s HTTP API and live WebSocket, against the real server in a subprocess on a free port:
every endpoint, bad input of every kind, a burst past the queue, the guard (host, origin, token), and stop
signals (exit status, temporary files removed)."""
from __future__ import annotations

import http.client
import io
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image
from web_helpers import Server, decompression_bomb_png, encode, make_clip, photo_rgb, server_env

from nst_video.images import load_image
from nst_video.stylizer import Stylizer
from nst_video.video_io import VideoSource

STYLES = "mosaic,randomstyle"


@pytest.fixture(scope="module")
def server(style_dir, graph_cache, tmp_path_factory):
    """One server for the module: torch on the CPU (no graph export to wait for), small limits so the limit
    tests stay small: images up to 1 MB, videos up to 2 MB, 256 px, 2 waiting for the device, 2 video jobs."""
    srv = Server(["--styles", STYLES, "--device", "cpu", "--backend", "torch", "--threads", "1", "--queue", "2",
                  "--max-jobs", "2", "--max-side", "256", "--max-image-mb", "1", "--max-video-mb", "2"],
                 server_env(style_dir, graph_cache), tmp_path_factory.mktemp("serve-tmp"))
    yield srv
    code = srv.stop(signal.SIGTERM)
    assert code == 143, srv.stderr
    assert srv.serve_folders() == [], "temporary files left behind"
    assert "Traceback" not in srv.stderr, srv.stderr


def error_of(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["status"] == status and body["error"]
    return body["error"]


@pytest.fixture(scope="module")
def png_photo() -> bytes:
    return encode(photo_rgb(96, 72))


# --- discovery ---


def test_health_and_styles(server):
    health = server.get("/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu" and health["backend"].startswith("torch")
    assert health["queue"]["capacity"] == 2 and health["video_jobs"]["capacity"] == 2
    assert health["limits"]["max_image_bytes"] == 1_000_000 and health["limits"]["max_side"] == 256
    styles = server.get("/styles").json()
    assert styles["default"] == "mosaic"
    by_name = {s["name"]: s for s in styles["styles"]}
    assert list(by_name) == ["mosaic", "randomstyle"]
    assert by_name["mosaic"]["title"] == "Mosaic" and "mosaic" in by_name["mosaic"]["credit"].lower()
    assert by_name["randomstyle"]["credit"] == "tests"
    for s in styles["styles"]:
        thumb = server.get("/" + s["thumbnail"])
        assert thumb.status == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.image().size == (160, 120)
    assert server.get("/styles/nope/thumbnail.jpg").status == 404


def test_page_and_assets_are_served(server):
    page = server.get("/")
    assert page.status == 200 and b'id="drop-zone"' in page.body
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css"),
                        ("/favicon.ico", "image/svg+xml")):
        reply = server.get(asset)
        assert reply.status == 200 and kind in reply.headers["content-type"], asset
    assert b"http://" not in server.get("/static/app.js").body  # nothing fetched from elsewhere
    error_of(server.get("/static/../pyproject.toml"), 404)


# --- images ---


def test_stylize_returns_the_image_in_the_style(server, png_photo):
    reply = server.post_form("/stylize", {"style": "mosaic"}, {"image": ("photo.png", png_photo)})
    assert reply.status == 200, reply.body[:300]
    assert reply.headers["content-type"] == "image/png"
    assert reply.headers["content-disposition"] == 'inline; filename="photo_mosaic.png"'
    assert reply.headers["x-style"] == "mosaic" and reply.headers["x-image-size"] == "96x72"
    out = np.asarray(reply.image().convert("RGB")).astype(int)
    assert out.shape == (72, 96, 3)
    original = photo_rgb(96, 72).astype(int)
    assert np.abs(out - original).mean() > 10  # stylized, not the photo back

    weak = server.post_form("/stylize", {"style": "mosaic", "strength": "0"}, {"image": ("photo.png", png_photo)})
    assert np.abs(np.asarray(weak.image()).astype(int) - original).max() <= 1  # strength 0: the original

    other = server.post_form("/stylize", {"style": "randomstyle", "preserve_color": "true", "max_size": "48",
                                          "format": "jpg"}, {"image": ("photo.png", png_photo)})
    assert other.status == 200 and other.headers["content-type"] == "image/jpeg"
    assert other.image().size == (48, 36) and other.headers["x-style"] == "randomstyle"
    assert other.headers["content-disposition"].endswith('filename="photo_randomstyle.jpg"')


def test_stylize_download_is_an_attachment(server):
    jpeg = encode(photo_rgb(64, 48), "JPEG", quality=90)
    reply = server.post_form("/stylize_download", {"style": "mosaic"}, {"image": ("Holiday photo (1).JPG", jpeg)})
    assert reply.status == 200 and reply.headers["content-type"] == "image/jpeg"
    assert reply.headers["content-disposition"] == 'attachment; filename="Holiday_photo_1_mosaic.jpg"'
    assert reply.image().size == (64, 48)


def test_raw_body_upload_and_alpha(server):
    rgba = np.dstack([photo_rgb(40, 30), np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))])
    reply = server.call("POST", "/stylize?style=randomstyle&filename=cut-out.png", body=encode(rgba),
                        headers={"Content-Type": "image/png"})
    assert reply.status == 200, reply.body[:300]
    out = reply.image()
    assert out.mode == "RGBA" and out.size == (40, 30)
    assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])  # alpha kept as it was


def test_oversize_images_are_capped_at_max_side(server):
    reply = server.post_form("/stylize", {"max_size": "5000"}, {"image": ("big.png", encode(photo_rgb(400, 300)))})
    assert reply.status == 200 and reply.image().size == (256, 192)


@pytest.mark.parametrize("case", ["text", "truncated", "empty", "bomb"])
def test_bad_images_are_json_errors(server, case):
    noise = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    data, status, words = {
        "text": (b"hello, this is not a picture\n" * 20, 415, "not an image"),
        "truncated": (encode(noise)[: len(encode(noise)) * 6 // 10], 400, "truncated"),
        "empty": (b"", 400, "empty"),
        "bomb": (decompression_bomb_png(), 413, "too large"),
    }[case]
    started = time.monotonic()
    message = error_of(server.post_form("/stylize", {}, {"image": ("upload.png", data)}), status)
    assert words in message and "upload.png" in message or case == "empty", message
    assert time.monotonic() - started < 30


def test_bad_parameters(server, png_photo):
    files = {"image": ("photo.png", png_photo)}
    assert "unknown style 'nope'" in error_of(server.post_form("/stylize", {"style": "nope"}, files), 404)
    for field, value in (("strength", "2"), ("strength", "strong"), ("strength", "nan"), ("strength", "inf"),
                         ("strength", "1e999"), ("max_size", "3"), ("max_size", "1.5"), ("max_size", "1e999"),
                         ("max_size", "inf"), ("preserve_color", "maybe"), ("format", "exe")):
        message = error_of(server.post_form("/stylize", {field: value}, files), 400)
        assert field in message, message
    assert "no file uploaded" in error_of(server.post_form("/stylize", {"style": "mosaic"}, {}), 400)
    error_of(server.call("POST", "/stylize", body=b"--x\r\nbroken", headers={
        "Content-Type": "multipart/form-data; boundary=x"}), 400)
    assert "boundary" in error_of(server.call("POST", "/stylize", body=b"--x\r\n", headers={
        "Content-Type": "multipart/form-data"}), 400)


def test_wrong_method_and_unknown_path(server):
    assert "GET" in error_of(server.get("/stylize"), 405)
    error_of(server.call("PUT", "/jobs"), 405)
    error_of(server.call("POST", "/health"), 405)
    error_of(server.get("/nothing/here"), 404)
    error_of(server.get("/jobs/0123456789abcdef"), 404)
    error_of(server.get("/jobs/..%2F..%2Fetc%2Fpasswd"), 404)


def test_oversize_uploads_get_413(server):
    big = np.random.default_rng(2).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    data = encode(big)  # ~1.5 MB of noise: over the 1 MB limit
    assert len(data) > 1_100_000
    assert "1 MB" in error_of(server.post_form("/stylize", {}, {"image": ("big.png", data)}), 413)

    # A declared length far past the limit is refused before the body is read.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.putrequest("POST", "/stylize")
    conn.putheader("Content-Type", "image/png")
    conn.putheader("Content-Length", str(10 ** 10))
    conn.endheaders()
    conn.send(b"\x89PNG" + b"\0" * 1000)
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["status"] == 413
    conn.close()

    # No length at all (chunked): cut off once the limit is passed.
    def chunks():
        for _ in range(20):
            yield b"\0" * 64 * 1024
    reply = server.call("POST", "/stylize", body=chunks(), headers={"Content-Type": "image/png"})  # http.client
    # sends an iterator without a length chunked
    error_of(reply, 413)


def test_a_burst_past_the_queue_gets_503_and_every_accepted_request_is_right(server):
    """16 requests at once with room for 1 running + 2 waiting: the rest are refused at once with 503 and
    Retry-After; every one accepted comes back exactly as it would alone (no style or strength leaks
    between requests on the shared Stylizer), and the server answers as before afterwards."""
    image = encode(photo_rgb(256, 192))
    variants = [("mosaic", "1"), ("randomstyle", "1"), ("mosaic", "0.5")]
    expected = {}
    for style, strength in variants:
        reply = server.post_form("/stylize", {"style": style, "strength": strength}, {"image": ("p.png", image)})
        assert reply.status == 200
        expected[(style, strength)] = reply.body
    barrier = threading.Barrier(16)

    def one(i):
        style, strength = variants[i % len(variants)]
        barrier.wait()
        return (style, strength), server.post_form("/stylize", {"style": style, "strength": strength},
                                                   {"image": ("p.png", image)})

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    statuses = [reply.status for _, reply in results]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 3, statuses
    for key, reply in results:
        if reply.status == 200:
            assert reply.body == expected[key], key
        else:
            assert int(reply.headers["retry-after"]) >= 1
            assert "busy" in error_of(reply, 503)
    assert server.get("/health").json()["queue"]["waiting"] == 0
    assert server.post_form("/stylize", {}, {"image": ("p.png", image)}).status == 200


# --- video jobs ---


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", frames=6)


def test_video_job_create_status_result_delete(server, clip):
    reply = server.post_form("/jobs", {"style": "randomstyle", "strength": "0.8"}, {"video": ("clip.mp4",
                                                                                              clip.read_bytes())})
    assert reply.status == 202, reply.body[:300]
    job = reply.json()
    assert reply.headers["location"] == f"/jobs/{job['id']}"
    assert job["state"] in ("queued", "running") and job["style"] == "randomstyle"
    assert (job["width"], job["height"]) == (64, 48) and job["total_frames"] == 6
    seen = [job]
    while job["state"] in ("queued", "running"):
        time.sleep(0.1)
        job = server.get(f"/jobs/{job['id']}").json()
        seen.append(job)
    assert job["state"] == "done", job
    assert job["percent"] == 100 and job["frames"] == 6 and job["error"] is None
    assert all(a["percent"] <= b["percent"] for a, b in zip(seen, seen[1:], strict=False))
    assert any(j["id"] == job["id"] for j in server.get("/jobs").json()["jobs"])

    result = server.get("/" + job["result_url"])
    assert result.status == 200 and result.headers["content-type"] == "video/mp4"
    assert result.headers["content-disposition"].startswith("inline")
    out = server.tmpdir / "result.mp4"
    out.write_bytes(result.body)
    with VideoSource(out) as source:
        assert (source.info.width, source.info.height, source.info.codec) == (64, 48, "h264")
        assert len(list(source)) == 6
    download = server.get("/" + job["download_url"])
    assert download.headers["content-disposition"] == 'attachment; filename="clip_randomstyle.mp4"'
    ranged = server.get("/" + job["result_url"], headers={"Range": "bytes=0-99"})  # what <video> asks for
    assert ranged.status == 206 and len(ranged.body) == 100

    deleted = server.call("DELETE", f"/jobs/{job['id']}").json()
    assert deleted["state"] == "deleted"
    error_of(server.get(f"/jobs/{job['id']}"), 404)
    error_of(server.get(f"/jobs/{job['id']}/result"), 404)
    assert not any(server.tmpdir.glob(f"nst-video-serve-*/jobs/{job['id']}"))  # its files are gone


def test_video_jobs_queue_up_cancel_and_refuse_past_the_limit(server, tmp_path):
    long_clip = make_clip(tmp_path / "long.mp4", frames=150, width=128, height=96)
    data = long_clip.read_bytes()
    first = server.post_form("/jobs", {}, {"video": ("long.mp4", data)}).json()
    running = server.wait_job(first["id"], states=("running",))
    second = server.post_form("/jobs", {"style": "randomstyle"}, {"video": ("long2.mp4", data)}).json()
    assert second["state"] == "queued" and second["queue_position"] == 1
    refused = server.post_form("/jobs", {}, {"video": ("long3.mp4", data)})
    assert "2 video jobs" in error_of(refused, 503) and int(refused.headers["retry-after"]) >= 1

    while running["frames"] < 2:  # frames, fps and ETA are reported while it runs
        time.sleep(0.1)
        running = server.get(f"/jobs/{first['id']}").json()
    assert running["state"] == "running" and 0 < running["percent"] < 100 and running["total_frames"] == 150
    assert running["fps"] > 0 and running["eta_seconds"] > 0
    error_of(server.get(f"/jobs/{first['id']}/result"), 409)

    assert server.call("DELETE", f"/jobs/{second['id']}").json()["state"] == "cancelled"  # queued
    assert server.call("POST", f"/jobs/{first['id']}/cancel").json()["state"] == "cancelled"  # running
    deadline = time.monotonic() + 60
    while any(server.tmpdir.glob(f"nst-video-serve-*/jobs/{first['id']}")) and time.monotonic() < deadline:
        time.sleep(0.2)
    for job_id in (first["id"], second["id"]):
        assert server.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
        assert not any(server.tmpdir.glob(f"nst-video-serve-*/jobs/{job_id}"))
        error_of(server.get(f"/jobs/{job_id}/result"), 404)
    assert server.get("/health").json()["video_jobs"]["active"] == 0


@pytest.mark.parametrize("case", ["text", "truncated", "no file", "too large", "unknown style"])
def test_bad_videos_are_json_errors(server, clip, case):
    data = clip.read_bytes()
    fields, files, status = {
        "text": ({}, {"video": ("notes.mp4", b"not a video at all\n" * 100)}, 415),
        "truncated": ({}, {"video": ("cut.mp4", data[: len(data) // 3])}, None),
        "no file": ({"style": "mosaic"}, {}, 400),
        "too large": ({}, {"video": ("huge.mp4", b"\0" * 2_200_000)}, 413),
        "unknown style": ({"style": "nope"}, {"video": ("clip.mp4", data)}, 404),
    }[case]
    reply = server.post_form("/jobs", fields, files)
    if status is None:  # a truncated upload fails at once (415/400) or as a failed job, with a message
        if reply.status == 202:
            job = server.wait_job(reply.json()["id"])
            assert job["state"] == "failed" and "cut.mp4" in job["error"], job
        else:
            assert "cut.mp4" in error_of(reply, reply.status) and reply.status in (400, 415)
    else:
        error_of(reply, status)
    assert server.get("/health").json()["video_jobs"]["active"] == 0


# --- the live WebSocket ---


def test_live_websocket_stylizes_frames_and_drops_stale_ones(server):
    from websockets.sync.client import connect

    frame = encode(photo_rgb(160, 120), "JPEG", quality=85)
    with connect(server.ws_url(), max_size=None, open_timeout=30) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready" and ready["styles"] == ["mosaic", "randomstyle"]
        ws.send(json.dumps({"style": "randomstyle", "strength": 0.9, "max_size": 128}))
        settings = json.loads(ws.recv(timeout=30))
        assert settings["type"] == "settings" and settings["style"] == "randomstyle" and settings["max_size"] == 128
        ws.send(frame)
        meta = json.loads(ws.recv(timeout=60))
        assert meta["type"] == "frame" and meta["style"] == "randomstyle" and (meta["width"], meta["height"]) == \
            (128, 96)
        assert meta["network"] == "johnson"  # no randomstyle-lite: the full network
        picture = ws.recv(timeout=60)
        assert isinstance(picture, bytes) and picture[:2] == b"\xff\xd8"  # JPEG

        # On this CPU server, live frames in mosaic run the bundled mosaic-lite (real time), or mosaic-fast where
        # the lite one is timed too slow for the frame (test_live_frames_take_the_fast_network_where_lite_is_too_slow),
        # and look like it.
        ws.send(json.dumps({"style": "mosaic", "strength": 1.0}))
        assert json.loads(ws.recv(timeout=30))["style"] == "mosaic"
        ws.send(frame)
        meta = json.loads(ws.recv(timeout=60))
        assert meta["type"] == "frame" and meta["style"] == "mosaic" and meta["network"] in ("lite", "fast")
        live_network = meta["network"]
        assert meta["paint"] == "128x96"  # the first frames are painted at their own size
        live = np.asarray(Image.open(io.BytesIO(ws.recv(timeout=60))).convert("RGB")).astype(int)
        expected = {}
        for name in ("mosaic", f"mosaic-{live_network}"):
            stylizer = Stylizer.from_style(name, device="cpu", backend="torch")
            expected[name] = stylizer.stylize_image(load_image(io.BytesIO(frame), max_size=128).rgb).astype(int)
        # (JPEG at quality 85 leaves it ~0.5x as far from the lite network's picture as from the full one's)
        distilled = expected[f"mosaic-{live_network}"]
        assert np.abs(live - distilled).mean() < 0.75 * np.abs(live - expected["mosaic"]).mean()

        ws.send(json.dumps({"style": "nope"}))
        assert "unknown style" in json.loads(ws.recv(timeout=30))["message"]
        ws.send(b"this is no picture")
        error = json.loads(ws.recv(timeout=30))
        assert error["type"] == "error" and error["frame"] is True

        for _ in range(6):  # faster than the network: only the newest waiting frame is stylized
            ws.send(frame)
        answered, dropped = 0, 0
        while answered + dropped < 6:
            message = ws.recv(timeout=60)
            if isinstance(message, str):
                meta = json.loads(message)
                assert meta["type"] == "frame"
                dropped = meta["dropped"]
            else:
                answered += 1
        assert dropped >= 1 and answered < 6


def test_live_websocket_answers_every_bad_number_and_stays_open(server):
    """Each numeric field with a value no number check lets through (1e999 parses as infinity, whose int() once
    dropped the connection), and other bad values: the protocol's error message, the settings unchanged (all
    or nothing), and the connection open for the next message."""
    from websockets.sync.client import connect

    bad = {'{"max_size": 1e999}': "max_size", '{"max_size": -1e999}': "max_size", '{"max_size": NaN}': "max_size",
           '{"max_size": 16.5}': "max_size", '{"max_size": true}': "max_size", '{"max_size": "big"}': "max_size",
           '{"max_size": 1' + "0" * 400 + "}": "max_size", '{"max_size": 8}': "max_size",
           '{"strength": 1e999}': "strength", '{"strength": NaN}': "strength", '{"strength": -Infinity}': "strength",
           '{"strength": [1]}': "strength", '{"strength": null}': "strength", '{"strength": 1.5}': "strength",
           '{"style": "randomstyle", "strength": Infinity}': "strength", '{"preserve_color": "no"}': "preserve_color",
           "[" * 100_000: "bad settings message", "[1, 2]": "bad settings message"}
    with connect(server.ws_url(), max_size=None, open_timeout=30) as ws:
        ready = json.loads(ws.recv(timeout=30))
        for text, field in bad.items():
            ws.send(text)
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] == "error" and field in reply["message"], (text[:40], reply)
        ws.send(json.dumps({"max_size": 64, "strength": "0.5"}))
        settings = json.loads(ws.recv(timeout=30))
        assert settings["type"] == "settings" and settings["style"] == ready["style"], settings
        assert (settings["max_size"], settings["strength"], settings["preserve_color"]) == (64, 0.5, False)


# --- the guard and stopping ---


@pytest.fixture(scope="module")
def token_server(style_dir, graph_cache, tmp_path_factory):
    srv = Server(["--styles", "randomstyle", "--device", "cpu", "--backend", "torch", "--token", "s3cret"],
                 server_env(style_dir, graph_cache), tmp_path_factory.mktemp("serve-token"))
    yield srv
    srv.stop(signal.SIGKILL)


def test_token_host_and_origin_are_checked(token_server):
    srv = token_server
    assert srv.url.endswith("/?token=s3cret")
    assert srv.get("/").status == 200 and srv.get("/static/app.js").status == 200  # the page needs no token
    assert srv.get("/health").json()["token_required"] is True
    assert "token" in error_of(srv.get("/styles"), 401)
    error_of(srv.get("/styles?token=wrong"), 401)
    assert srv.get("/styles?token=s3cret").status == 200
    assert srv.get("/styles", headers={"Authorization": "Bearer s3cret"}).status == 200
    assert "localhost" in error_of(srv.get("/health", headers={"Host": "evil.example:8000"}), 403)
    error_of(srv.get("/styles?token=s3cret", headers={"Origin": "http://evil.example"}), 403)
    same = {"Origin": f"http://127.0.0.1:{srv.port}", "Host": f"127.0.0.1:{srv.port}"}
    assert srv.get("/styles?token=s3cret", headers=same).status == 200

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    with pytest.raises(InvalidStatus):
        with connect(srv.ws_url(), open_timeout=30):
            pass
    with connect(srv.ws_url("live?token=s3cret"), open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_stop_signals_end_the_server_cleanly(style_dir, graph_cache, tmp_path, signum, code):
    """A stop signal while a video job runs and a WebSocket is open: exit 128 + signal, no traceback, the
    temporary folder (upload, partial result) removed."""
    from websockets.sync.client import connect

    srv = Server(["--styles", "mosaic", "--device", "cpu", "--backend", "torch"],
                 server_env(style_dir, graph_cache), tmp_path / "tmp")
    try:
        long_clip = make_clip(tmp_path / "long.mp4", frames=300, width=128, height=96)
        job = srv.post_form("/jobs", {}, {"video": ("long.mp4", long_clip.read_bytes())}).json()
        srv.wait_job(job["id"], states=("running",))
        assert len(srv.serve_folders()) == 1
        with connect(srv.ws_url(), open_timeout=30) as ws:
            ws.recv(timeout=30)
            started = time.monotonic()
            assert srv.stop(signum) == code, srv.stderr
            assert time.monotonic() - started < 30
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
    assert srv.serve_folders() == [], "temporary files left behind"
    assert "Traceback" not in srv.stderr, srv.stderr
    assert f"nst-video: interrupted ({'Ctrl-C' if signum == signal.SIGINT else 'SIGHUP'})" in srv.stderr


@pytest.mark.parametrize("case", ["busy port", "unknown style", "bad port"])
def test_bad_serve_options_are_one_error_line(server, style_dir, graph_cache, case):
    from conftest import run_cli

    args, code, start = {
        "busy port": (["--port", str(server.port)], 1, "nst-video: error: cannot listen on 127.0.0.1:"),
        "unknown style": (["--port", "0", "--styles", "mosaic,nope"], 1, "nst-video: error: unknown style 'nope'"),
        "bad port": (["--port", "70000"], 2, ""),
    }[case]
    result = run_cli("serve", "--backend", "torch", *args, env_extra=server_env(style_dir, graph_cache), timeout=240)
    assert result.returncode == code, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(start) and "Traceback" not in result.stderr


def test_catalog_lists_each_style_once_and_keeps_the_lite_network_for_live_frames(tmp_path):
    import torch

    from nst_video.model import build_network
    from nst_video.styles import StyleInfo, StyleRegistry, save_style
    from nst_video.web.catalog import StyleCatalog

    for name, architecture in [("alpha", "johnson"), ("alpha-lite", "lite"), ("beta-lite", "lite")]:
        torch.manual_seed(len(name))
        save_style(tmp_path / f"{name}.safetensors", build_network(architecture).state_dict(),
                   StyleInfo(name=name, architecture=architecture))
    registry = StyleRegistry([tmp_path])
    catalog = StyleCatalog(None, registry=registry)
    assert sorted(catalog.names()) == ["alpha", "beta-lite"]  # a lite network with no full one stays listed
    assert set(catalog.lite) == {"alpha"}
    full, lite = catalog.model("alpha"), catalog.model("alpha", lite=True)
    assert sum(p.numel() for p in lite.parameters()) < sum(p.numel() for p in full.parameters()) / 2
    # Named explicitly, a lite style is served as itself.
    assert StyleCatalog(["alpha", "alpha-lite"], registry=registry).names() == ["alpha", "alpha-lite"]


def test_live_frames_take_the_fast_network_where_lite_is_too_slow(tmp_path):
    """The live camera picks lite or fast by timing the lite network at the frame's size (as the webcam does),
    once per style and size, and only for a style that has a fast network."""
    import torch

    from nst_video.model import build_network
    from nst_video.styles import StyleInfo, StyleRegistry, save_style
    from nst_video.web.catalog import StyleCatalog
    from nst_video.web.live import PaintSizes

    for name, architecture in [("alpha", "johnson"), ("alpha-lite", "lite"), ("alpha-fast", "fast"),
                               ("beta", "johnson"), ("beta-lite", "lite")]:
        torch.manual_seed(len(name))
        save_style(tmp_path / f"{name}.safetensors", build_network(architecture).state_dict(),
                   StyleInfo(name=name, architecture=architecture))
    catalog = StyleCatalog(None, registry=StyleRegistry([tmp_path]))
    stylizer = Stylizer(catalog.model("alpha"), device="cpu", backend="torch", batch_size=1)
    impossible, idle = PaintSizes(target_fps=1e6), PaintSizes(target_fps=1e-3)  # a microsecond; 15 minutes
    assert impossible.too_slow_for_lite(stylizer, catalog, "alpha", 64, 48)
    assert not idle.too_slow_for_lite(stylizer, catalog, "alpha", 64, 48)
    assert not impossible.too_slow_for_lite(stylizer, catalog, "beta", 64, 48)  # no beta-fast: lite it is
    assert catalog.network_info("alpha", lite=True, fast=True).architecture == "fast"
