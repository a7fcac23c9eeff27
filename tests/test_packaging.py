"""Installed as a user installs it (`pip install .`, pipx, a wheel), not from the checkout: the wheel must carry
the bundled styles, and must not put a top-level `training` module into site-packages."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

pytestmark = pytest.mark.slow  # builds a wheel and a venv

BUNDLED = sorted(p.name.removesuffix(".safetensors") for p in (ROOT / "checkpoints").glob("*.safetensors"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel built from the checkout, installed into a fresh venv outside it. The venv finds its
    dependencies (torch, ...) through a .pth line to this venv's site-packages, so nothing is downloaded;
    .pth files inside that folder (such as the checkout's editable-install hook) are not run from there."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp / "dist").glob("nst_video-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=600, cwd=tmp)
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


def _run(venv: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NST_VIDEO_STYLES")}
    env["NST_VIDEO_STYLES"] = str(cwd / "no-user-styles")  # only what the wheel brings
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_wheel_holds_styles_and_no_top_level_training(installed):
    wheel = next((installed.parent / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"nst_video"}, tops
    assert {f"nst_video/checkpoints/{s}.safetensors" for s in BUNDLED} <= set(names)
    assert sum(n.startswith("nst_video/runtimes/calibration/") for n in names) == 3  # --precision int8's photos
    assert "nst_video/training/train.py" in names and "nst_video/py.typed" in names


def test_installed_tool_lists_and_uses_every_bundled_style(installed, tmp_path):
    assert len(BUNDLED) >= 6
    python, tool = installed / "bin" / "python", installed / "bin" / "nst-video"
    where = _run(installed, python, "-c", "import nst_video, nst_video.styles as s; "
                 "print(nst_video.__file__); print(s.BUNDLED_DIR)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(installed)) for line in where.stdout.split()), where.stdout
    assert _run(installed, python, "-c", "import training", cwd=tmp_path).returncode != 0

    listing = _run(installed, tool, "styles", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    for name in BUNDLED:
        assert name in listing.stdout

    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    default = _run(installed, tool, photo, tmp_path / "default.png", cwd=tmp_path)  # the default style
    assert default.returncode == 0, default.stderr
    one = _run(installed, tool, "image", photo, tmp_path / "one.png", "--style", BUNDLED[-1], "--backend", "torch",
               cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    # every bundled style from the installed package, in one process (a tool start per style costs ~4 s each), on
    # torch: the graph runtimes' export and compile would add ~3 s a style (tests/test_runtimes.py covers them)
    every = _run(installed, python, "-c", "import sys, numpy as np; from PIL import Image; "
                 "from nst_video.stylizer import Stylizer; photo = np.asarray(Image.open(sys.argv[1]).convert('RGB'))\n"
                 "for name in sys.argv[2:]:\n"
                 "    styled = Stylizer.from_style(name, backend='torch').stylize([photo])[0]\n"
                 "    Image.fromarray(styled).save(name + '.png')",
                 photo, *BUNDLED, cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one.png")),
                          np.asarray(Image.open(tmp_path / f"{BUNDLED[-1]}.png")))  # the tool paints the same
    for name in BUNDLED:
        styled = np.asarray(Image.open(tmp_path / f"{name}.png"))
        assert styled.shape == (48, 64, 3)
        assert np.abs(styled.astype(int) - np.asarray(Image.open(photo)).astype(int)).mean() > 5
