"""The web app in a real browser: Debian's headless Chromium driven by Playwright, against the real server.
Drop / choose an image and download the result; upload a clip, watch the job reach 100% and play the
result; the live camera mode with Chromium's fake camera (a Y4M clip made here). A screenshot of each goes to
$NST_VIDEO_SCREENSHOTS (or the test's temporary folder)."""
from __future__ import annotations

import base64
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from web_helpers import Server, encode, make_clip, make_y4m, photo_rgb, server_env

pytestmark = pytest.mark.slow  # a browser against a real server

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[dev]')")

# Chromium in a closed network: no background connections (they are refused here and slow everything down).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(style_dir, graph_cache, tmp_path_factory):
    srv = Server(["--styles", "mosaic,randomstyle", "--device", "cpu", "--backend", "torch", "--threads", "1",
                  "--max-side", "512"], server_env(style_dir, graph_cache), tmp_path_factory.mktemp("serve-tmp"))
    yield srv
    assert srv.stop(signal.SIGTERM) == 143, srv.stderr
    assert srv.serve_folders() == []
    assert "Traceback" not in srv.stderr, srv.stderr


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("NST_VIDEO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    raccoon = np.asarray(Image.open(ROOT / "samples" / "photos" / "raccoon.jpg").convert("RGB").resize((320, 240)))
    camera = make_y4m(folder / "camera.y4m", raccoon, frames=10)
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(folder / "profile"), executable_path=str(CHROMIUM), headless=True, accept_downloads=True,
            viewport={"width": 1200, "height": 1000},
            args=[*FLAGS, *FAKE_CAMERA, f"--use-file-for-fake-video-capture={camera}"])
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']")
    yield page
    page.close()
    assert errors == [], errors


def test_page_shows_the_gallery_with_thumbnails_credits_and_keys(page, shots):
    cards = page.locator(".style-card")
    assert cards.count() == 2
    page.wait_for_function("[...document.querySelectorAll('.style-card img')]"
                           ".every(i => i.complete && i.naturalWidth === 160)")
    assert "mosaic" in cards.nth(0).inner_text().lower() and "tests" in cards.nth(1).inner_text()
    selected = "document.querySelector('.style-card[aria-selected=true]').dataset.style"
    assert page.evaluate(selected) == "mosaic"
    page.keyboard.press("n")
    assert page.evaluate(selected) == "randomstyle"
    page.keyboard.press("p")
    assert page.evaluate(selected) == "mosaic"
    page.keyboard.press("2")
    assert page.evaluate(selected) == "randomstyle"
    page.locator(".style-card").nth(0).click()
    assert page.evaluate(selected) == "mosaic"
    page.screenshot(path=str(shots / "web-gallery.png"))


def test_choose_and_drop_an_image_then_download(page, shots, tmp_path):
    page.select_option("#max-size", "256")
    page.set_input_files("#file-input", str(ROOT / "samples" / "photos" / "raccoon.jpg"))
    page.wait_for_selector("#result-image[data-ready='1']")
    assert page.evaluate("[document.querySelector('#result-image').naturalWidth, "
                         "document.querySelector('#result-image').naturalHeight]") == [256, 192]
    assert page.locator("#original-image").evaluate("i => i.naturalWidth") == 640
    assert "Mosaic" in page.inner_text("#image-status")
    page.screenshot(path=str(shots / "web-image.png"))

    with page.expect_download() as info:
        page.click("#download-image")
    download = info.value
    assert download.suggested_filename == "raccoon_mosaic.jpg"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with Image.open(saved) as im:
        assert im.format == "JPEG" and im.size == (256, 192)

    # Another style restyles the image shown; a dropped file replaces it.
    page.keyboard.press("2")
    page.wait_for_selector("#result-image[data-ready='1'][data-style='randomstyle']")
    dropped = base64.b64encode(encode(photo_rgb(120, 90))).decode()
    page.evaluate("""async (data) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        const zone = document.querySelector('#drop-zone');
        for (const type of ['dragenter', 'dragover', 'drop'])
            zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}));
    }""", dropped)
    page.wait_for_function("document.querySelector('#original-image').naturalWidth === 120")
    page.wait_for_selector("#result-image[data-ready='1'][data-style='randomstyle']")
    assert page.evaluate("document.querySelector('#result-image').naturalWidth") == 120
    assert page.get_attribute("#download-image", "download") == "dropped_randomstyle.png"


def test_upload_a_clip_watch_the_job_and_play_the_result(page, shots, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=30, width=160, height=120)
    page.set_input_files("#file-input", str(clip))
    job = page.locator(".job").first
    job.wait_for()
    seen = set()
    page.wait_for_function("document.querySelector('.job').dataset.state !== 'uploading'")
    while job.get_attribute("data-state") in ("queued", "running", "uploading"):
        seen.add(job.get_attribute("data-state"))
        page.wait_for_timeout(100)
    assert job.get_attribute("data-state") == "done", job.inner_text()
    assert job.locator(".job-progress").evaluate("p => p.value") == 100
    assert "done: 30 frames, 160x120" in job.locator(".job-text").inner_text()
    result = job.locator(".job-result")
    result.evaluate("v => new Promise(ok => v.readyState >= 2 ? ok() : v.addEventListener('loadeddata', ok))")
    assert result.evaluate("v => [v.videoWidth, v.videoHeight]") == [160, 120]
    assert result.evaluate("v => v.duration") == pytest.approx(3.0, abs=0.2)
    result.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("document.querySelector('.job-result').currentTime > 0.3")
    result.evaluate("v => v.pause()")
    assert job.locator(".job-download").get_attribute("download") == "clip_mosaic.mp4"
    job.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "web-video.png"), full_page=True)


def test_live_camera_shows_stylized_frames_and_switches_styles(page, shots):
    page.click("#mode-camera")
    page.select_option("#live-size", "240")
    page.click("#camera-start")
    page.wait_for_function("+document.querySelector('#live-stats').dataset.frames >= 3")
    image = page.locator("#live-image")
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [240, 180]
    stats = page.inner_text("#live-stats")
    assert "mosaic" in stats and "fps" in stats and float(page.get_attribute("#live-stats", "data-fps")) > 0
    # What is shown is the camera stylized, not the camera: compare the two pictures at the same size.
    difference = page.evaluate("""() => {
        const img = document.querySelector('#live-image'), video = document.querySelector('#camera-video');
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0); const a = g.getImageData(0, 0, c.width, c.height).data;
        g.drawImage(video, 0, 0, c.width, c.height); const b = g.getImageData(0, 0, c.width, c.height).data;
        let sum = 0; for (let i = 0; i < a.length; i += 4) sum += Math.abs(a[i] - b[i]) + Math.abs(a[i+1] - b[i+1]);
        return sum / (a.length / 2);
    }""")
    assert difference > 10, difference
    page.screenshot(path=str(shots / "web-camera.png"))
    page.keyboard.press("n")
    page.wait_for_function("document.querySelector('#live-stats').textContent.startsWith('randomstyle')")
    frames = int(page.get_attribute("#live-stats", "data-frames"))
    page.keyboard.press(" ")  # the original instead: no frames are sent meanwhile
    assert page.locator("#live-original").is_visible() and not image.is_visible()
    page.keyboard.press(" ")
    page.wait_for_function(f"+document.querySelector('#live-stats').dataset.frames > {frames + 1}")
    page.click("#camera-stop")
    assert page.inner_text("#live-stats") == "camera off"
