"""Make docs/web-app.png, docs/web.md's picture of `nst-video serve`: the page in Debian's headless Chromium
with every bundled style in the gallery and the sample raccoon stylized.

    python scripts/web_screenshot.py [--style starry_night] [--out docs/web-app.png]

Needs /usr/bin/chromium and the playwright package (pip install -e '.[dev]'); starts its own server on a
free port with the bundled styles only."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from playwright.sync_api import sync_playwright  # noqa: E402
from web_helpers import Server  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web-app.png")
    parser.add_argument("--width", type=int, default=800, help="width of the PNG written")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nst-web-shot-"))
    env = dict(os.environ, NST_VIDEO_STYLES=str(tmp / "no-user-styles"))
    server = Server(["--device", "cpu"], env, tmp / "server")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(tmp / "profile"), executable_path="/usr/bin/chromium",
                                                           headless=True, viewport={"width": 1200, "height": 980},
                                                           args=FLAGS)
            context.set_default_timeout(600_000)
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']")
            page.wait_for_function("[...document.querySelectorAll('.style-card img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            page.click(f".style-card[data-style='{args.style}']")
            page.select_option("#max-size", "512")
            page.set_input_files("#file-input", str(ROOT / "samples" / "photos" / "raccoon.jpg"))
            page.wait_for_selector("#result-image[data-ready='1']")
            shot = tmp / "page.png"
            page.screenshot(path=str(shot))
            context.close()
    finally:
        server.stop(signal.SIGTERM)
    im = Image.open(shot).convert("RGB")
    im = im.resize((args.width, round(im.height * args.width / im.width)), Image.Resampling.LANCZOS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
