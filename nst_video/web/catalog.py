"""The styles the server offers, and their thumbnails.

Styles are listed at start from their files' headers (fast) and each network is loaded on first use, then
kept. A thumbnail is the style's own network run on a small photo shipped with the package (a crop of
samples/photos/raccoon.jpg, public domain), rendered on the device worker once and kept in memory and in the
user cache (nst_video/paths.py: `$NST_VIDEO_CACHE/thumbnails`, keyed by the style file's contents), so a style
trained yesterday gets its thumbnail like the bundled ones, and a restarted server shows them at once."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.resources
import io
import threading
from concurrent.futures import Future
from pathlib import Path
from urllib.parse import quote

from nst_video import __version__
from nst_video.atomic import atomic_output
from nst_video.errors import NstError
from nst_video.images import encode_image, load_image
from nst_video.model import TransformerNet
from nst_video.paths import thumbnail_dir
from nst_video.styles import (
    FAST_SUFFIX,
    LITE_SUFFIX,
    StyleInfo,
    StyleRegistry,
    base_name,
    counterpart,
    load_model,
    one_per_style,
    read_info,
)
from nst_video.stylizer import Stylizer
from nst_video.web.httperrors import ApiError
from nst_video.web.worker import DeviceWorker

STATIC = Path(str(importlib.resources.files("nst_video.web") / "static"))
SAMPLE_PHOTO = STATIC / "sample.jpg"


class StyleCatalog:
    def __init__(self, names: list[str] | None = None, registry: StyleRegistry | None = None):
        """`names`: style names or files (an unknown one is an NstError now, before the server starts);
        None: every installed style, each once (NAME-lite not beside NAME: live frames on a CPU use it)."""
        registry = registry or StyleRegistry()
        installed = {info.key: info for info in registry.available()}
        if names:
            infos = [read_info(registry.resolve(n)) for n in names]
        else:
            infos = [installed[n] for n in one_per_style(list(installed))]
        if not infos:
            raise NstError("no styles installed; train one with `nst-video train` or pass --styles FILE")
        self.infos: dict[str, StyleInfo] = {}
        for info in infos:
            self.infos.setdefault(info.key, info)
        # The lite network of each listed full style, where one is installed (NAME-lite), for the live camera
        # on a CPU: real time there needs it (see live.py). Not listed itself unless asked for.
        self.lite: dict[str, StyleInfo] = {
            key: installed[counterpart(key)] for key, info in self.infos.items()
            if not key.endswith(LITE_SUFFIX) and info.architecture != "lite" and counterpart(key) in installed}
        # ... and its fast network (NAME-fast), for a CPU that computes in fp32, where that one is too slow.
        self.fast: dict[str, StyleInfo] = {
            key: installed[base_name(key) + FAST_SUFFIX] for key, info in self.infos.items()
            if info.architecture == "johnson" and base_name(key) + FAST_SUFFIX in installed}
        self._models: dict[str, TransformerNet] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> str:
        return next(iter(self.infos))

    def names(self) -> list[str]:
        return list(self.infos)

    def info(self, name: str) -> StyleInfo:
        if name not in self.infos:
            raise ApiError(404, f"unknown style '{name}'; available styles: {', '.join(self.infos)}")
        return self.infos[name]

    def network_info(self, name: str, lite: bool = False, fast: bool = False) -> StyleInfo:
        """The style file behind `name`: with `lite`, its lite network where one is installed; with `fast` too,
        its fast one first."""
        info = self.info(name)
        if fast and lite and name in self.fast:
            return self.fast[name]
        return self.lite[name] if lite and name in self.lite else info

    def model(self, name: str, lite: bool = False, fast: bool = False) -> TransformerNet:
        """The style's network (see `network_info`), loaded on first use (any thread)."""
        info = self.network_info(name, lite, fast)
        with self._lock:
            if info.key not in self._models:
                self._models[info.key] = load_model(info.path)[1]
            return self._models[info.key]

    def describe(self, name: str) -> dict:
        info = self.info(name)
        return {"name": name, "title": info.title or name, "credit": info.credit, "network": info.architecture,
                "thumbnail": f"styles/{quote(name, safe='')}/thumbnail.jpg"}


def use_style(stylizer: Stylizer, catalog: StyleCatalog, style: str, strength: float, preserve_color: bool,
              lite: bool = False, fast: bool = False) -> None:
    """Set the Stylizer up for one task (each task sets all of it: tasks share the worker's Stylizer)."""
    stylizer.set_model(catalog.model(style, lite, fast))
    stylizer.strength = strength
    stylizer.preserve_color = preserve_color


class Thumbnails:
    """Each style's thumbnail as JPEG bytes: from memory, else the disk cache, else rendered on the worker."""

    def __init__(self, catalog: StyleCatalog, worker: DeviceWorker):
        self.catalog, self.worker = catalog, worker
        self._done: dict[str, bytes] = {}
        self._rendering: dict[str, Future] = {}
        self._lock = threading.Lock()

    async def get(self, name: str) -> bytes:
        self.catalog.info(name)  # 404 for an unknown style
        if name in self._done:
            return self._done[name]
        with self._lock:
            future = self._rendering.get(name)
            if future is None:
                future = self._rendering[name] = Future()
                threading.Thread(target=self._make, args=(name, future), name="nst-serve-thumbnail",
                                 daemon=True).start()
        return await asyncio.wrap_future(future)

    def _make(self, name: str, future: Future) -> None:
        try:
            path = self._cache_path(name)
            data = path.read_bytes() if path.is_file() else None
            if data is None:
                # In the background lane: thumbnails (one per style) never take a request's place
                data = self.worker.submit(lambda stylizer: self._render(stylizer, name), background=True).result()
                with contextlib.suppress(OSError, NstError):  # a read-only cache only costs a re-render
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_output(path) as tmp:
                        tmp.write_bytes(data)
            self._done[name] = data
            future.set_result(data)
        except BaseException as e:
            future.set_exception(e)
        finally:
            with self._lock:
                self._rendering.pop(name, None)

    def _render(self, stylizer: Stylizer, name: str) -> bytes:
        use_style(stylizer, self.catalog, name, 1.0, False)
        photo = load_image(SAMPLE_PHOTO)
        out = io.BytesIO()
        encode_image(out, stylizer.stylize_image(photo.rgb), suffix=".jpg", quality=88)
        return out.getvalue()

    def _cache_path(self, name: str) -> Path:
        digest = hashlib.sha256(f"nst-video {__version__} thumbnail\n".encode())
        digest.update(SAMPLE_PHOTO.read_bytes())
        digest.update(Path(self.catalog.info(name).path).read_bytes())
        return thumbnail_dir() / f"{digest.hexdigest()[:24]}.jpg"
