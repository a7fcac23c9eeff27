"""The house's shape, checked: the import-order rule (OpenCV before PyAV, nst_video/__init__.py), and the layers
of docs/architecture.md."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "nst_video"


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          **kwargs)


# --- OpenCV before PyAV -------------------------------------------------------------------------------------
# Both wheels bundle libxcb-shm under one name; the copy loaded first is the one used, and PyAV's makes
# OpenCV's Qt window hang. Which one a process loaded is in /proc/self/maps (window._pyav_xcb_loaded_first).

PYAV_FIRST = "from nst_video.window import _pyav_xcb_loaded_first; print('PYAV_FIRST', _pyav_xcb_loaded_first())"


def pyav_loaded_first(imports: str) -> bool:
    r = run_python(f"{imports}\n{PYAV_FIRST}")
    assert r.returncode == 0, r.stderr
    return "PYAV_FIRST True" in r.stdout


def modules_importing_pyav() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if re.search(r"^\s*(import av\b|from av\b)", path.read_text(), re.MULTILINE):
            found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


@pytest.fixture(scope="module")
def order_is_visible():
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs Linux's /proc/self/maps to see which library a process loaded")
    if not pyav_loaded_first("import av"):
        pytest.skip("this PyAV does not bundle its own libxcb-shm: the order does not matter here")


def test_the_check_sees_pyav_first(order_is_visible):
    """The control: PyAV imported on its own, before nst_video, is seen."""
    assert pyav_loaded_first("import av\nimport nst_video")


def test_modules_using_pyav_are_found():
    assert {"nst_video.video_io", "nst_video.audio_io"} <= set(modules_importing_pyav())


@pytest.mark.parametrize("module", modules_importing_pyav())
def test_every_module_using_pyav_loads_opencv_first(order_is_visible, module):
    assert not pyav_loaded_first(f"import {module}")


def test_pyav_after_nst_video_loads_opencv_first(order_is_visible):
    """Any later `import av` (a test, a script) keeps the order once nst_video is imported."""
    assert not pyav_loaded_first("import nst_video\nimport av")


def test_help_loads_neither():
    r = run_python("import sys\nsys.argv = ['nst-video', '--help']\nimport nst_video.cli\n"
                   "try:\n    nst_video.cli.main()\nexcept SystemExit:\n    pass\n"
                   "print('LOADED', sorted(m for m in ('cv2', 'av') if m in sys.modules))")
    assert "LOADED []" in r.stdout, r.stdout + r.stderr


# --- user folders -------------------------------------------------------------------------------------------


def test_user_folders_are_the_platforms_and_the_env_overrides_win(tmp_path, monkeypatch):
    import platformdirs

    from nst_video import paths
    monkeypatch.delenv("NST_VIDEO_STYLES", raising=False)
    monkeypatch.delenv("NST_VIDEO_CACHE", raising=False)
    assert paths.user_styles_dir() == Path(platformdirs.user_data_dir("nst-video", appauthor=False)) / "styles"
    assert paths.graph_cache_dir().parent == paths.thumbnail_dir().parent == Path(
        platformdirs.user_cache_dir("nst-video", appauthor=False))
    if sys.platform.startswith("linux"):  # the XDG variables, as before platformdirs
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        assert paths.user_styles_dir() == tmp_path / "data" / "nst-video" / "styles"
        assert paths.graph_cache_dir() == tmp_path / "cache" / "nst-video" / "graphs"
    monkeypatch.setenv("NST_VIDEO_STYLES", "~/my-styles")
    monkeypatch.setenv("NST_VIDEO_CACHE", str(tmp_path / "c"))
    assert paths.user_styles_dir() == Path.home() / "my-styles"
    assert paths.graph_cache_dir() == tmp_path / "c" / "graphs"
    assert paths.thumbnail_dir() == tmp_path / "c" / "thumbnails"


def test_graphs_live_with_the_runtimes():
    """No arrow back up: the exported graphs are the runtimes' own module (runtimes/graphs.py)."""
    import importlib.util

    assert importlib.util.find_spec("nst_video.graphs") is None
    assert importlib.util.find_spec("nst_video.runtimes.graphs") is not None


# --- a checkout runs without installing -----------------------------------------------------------------------


def test_a_fresh_checkout_runs_without_installing(tmp_path):
    """`python nst_video_main.py ...` from the repository's tracked files alone: training/ and checkpoints/ at
    the top are found as nst_video.training and nst_video.checkpoints, from the checkout itself, not from an
    installed (or editable) nst-video."""
    checkout = tmp_path / "checkout"
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listing.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are not known")
    for name in filter(None, listing.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree is not there to copy
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, checkout / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NST_VIDEO_STYLES"] = str(tmp_path / "no-user-styles")
    probe = ("import nst_video.cli, nst_video.training.train, nst_video.checkpoints\n"
             "for m in (nst_video.cli, nst_video.training.train, nst_video.checkpoints): print(m.__file__)")
    r = subprocess.run([sys.executable, "-s", "-c", probe], cwd=checkout, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    files = r.stdout.split()
    assert len(files) == 3 and all(Path(f).is_relative_to(checkout) for f in files), files
    r = subprocess.run([sys.executable, "-s", "nst_video_main.py", "styles"], cwd=checkout, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mosaic" in r.stdout  # the bundled styles, from the checkout (the probe above)
    r = subprocess.run([sys.executable, "-s", "nst_video_main.py", "diagnose", "none", "none.jpg"], cwd=checkout,
                       env=env, capture_output=True, text=True, timeout=300)  # loads the training code, then refuses
    assert r.returncode == 1 and "none: no such file" in r.stderr and "Traceback" not in r.stderr, r.stderr


# --- the layers (docs/architecture.md, pyproject.toml's [tool.importlinter]) ----------------------------------


def importlinter_layers() -> list[str]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    assert contract["containers"] == ["nst_video"]
    return contract["layers"]


def layer_names(layer: str) -> tuple[str, set[str]]:
    """A layer's kind ('|' independent, ':' not, '' one module) and its modules."""
    kind = "|" if "|" in layer else ":" if ":" in layer else ""
    return kind, {name.strip() for name in re.split(r"[|:]", layer)}


def installed_layout(tmp_path: Path) -> Path:
    """The package as a wheel installs it (pyproject's package-dir): training/ inside nst_video/, Python only."""
    top = tmp_path / "layout"
    shutil.copytree(PACKAGE, top / "nst_video",
                    ignore=shutil.ignore_patterns("__pycache__", "static", "training", "checkpoints"))
    shutil.copytree(ROOT / "training", top / "nst_video" / "training", ignore=shutil.ignore_patterns("__pycache__"))
    return top


def lint_imports(top: Path) -> subprocess.CompletedProcess:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if tool is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(top)  # this layout's nst_video, not the checkout's or an installed one
    return subprocess.run([tool, "--no-cache", str(ROOT / "pyproject.toml")], cwd=top, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_layers_are_kept(tmp_path):
    r = lint_imports(installed_layout(tmp_path))
    assert r.returncode == 0 and "KEPT" in r.stdout, r.stdout + r.stderr


def test_an_import_from_above_breaks_the_layers(tmp_path):
    """The control: the model importing the CLI is found."""
    top = installed_layout(tmp_path)
    model = top / "nst_video" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _up():\n    import nst_video.cli  # noqa\n")
    r = lint_imports(top)
    assert r.returncode != 0 and "BROKEN" in r.stdout and "nst_video.model -> nst_video.cli" in r.stdout, r.stdout


def test_every_module_has_a_layer():
    placed = set().union(*(layer_names(layer)[1] for layer in importlinter_layers()))
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = (modules | {"training"}) - {"checkpoints"}  # training/ is nst_video.training; checkpoints: data
    missing = sorted(modules - placed)
    assert not missing, (f"nst_video.{missing[0]} is in no layer: place it in pyproject.toml's "
                         "[tool.importlinter] layers and in docs/architecture.md's table")
    assert not placed - modules, f"layers name modules that do not exist: {sorted(placed - modules)}"


def test_the_architecture_doc_shows_the_checked_layers():
    """docs/architecture.md's table lists the same layers, in the same order, as the contract checks."""
    rows = []
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 3 and "`" in cells[1]:
            names = set(re.findall(r"`([\w.]+)`", cells[1]))
            kind = "|" if r"\|" in cells[1] else ":" if "` : `" in cells[1] else ""
            rows.append((kind, names))
    assert rows == [layer_names(layer) for layer in importlinter_layers()]
