"""The user's folders: where new styles go, and the cache (exported graphs, the web app's thumbnails).

The platform's own places (platformdirs): on Linux ~/.local/share/nst-video/styles and ~/.cache/nst-video
(or under $XDG_DATA_HOME and $XDG_CACHE_HOME), on macOS under ~/Library, on Windows under %LOCALAPPDATA%.
$NST_VIDEO_STYLES and $NST_VIDEO_CACHE choose other folders (the tests keep theirs apart this way)."""
from __future__ import annotations

import os
from pathlib import Path

APP = "nst-video"
STYLES_ENV = "NST_VIDEO_STYLES"
CACHE_ENV = "NST_VIDEO_CACHE"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def user_styles_dir() -> Path:
    """Where `nst-video train` and `distill` put new styles, and the registry looks after the bundled ones."""
    import platformdirs  # here, not at the top: --help needs no folder

    return _from_env(STYLES_ENV) or Path(platformdirs.user_data_dir(APP, appauthor=False)) / "styles"


def cache_dir() -> Path:
    """What can be made again: removing it costs only time."""
    import platformdirs

    return _from_env(CACHE_ENV) or Path(platformdirs.user_cache_dir(APP, appauthor=False))


def graph_cache_dir() -> Path:
    """Exported graphs of the networks (nst_video/runtimes/graphs.py)."""
    return cache_dir() / "graphs"


def thumbnail_dir() -> Path:
    """The web app's style thumbnails (nst_video/web/catalog.py)."""
    return cache_dir() / "thumbnails"
