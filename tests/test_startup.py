"""`nst-video --help`, every subcommand's `--help` and `nst-video styles` answer at once: they load no torch,
no runtime, no OpenCV or PyAV and no training code (those take seconds to import; benchmarks/bench_startup.py
times it). What a command imported is read from the real command's process, at its exit."""
import json
import os
import subprocess
import sys

import pytest

from nst_video.cli import main
from tests.conftest import ROOT

# Heavy packages, and the training code: only its plain-data settings (training/config.py) may load for --help.
HEAVY = ("torch", "torchvision", "openvino", "onnxruntime", "cv2", "av", "numpy", "PIL", "starlette", "uvicorn")
TRAINING_ALLOWED = {"nst_video.training", "nst_video.training.config"}

PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["nst-video", *sys.argv[1:]]
runpy.run_module("nst_video", run_name="__main__", alter_sys=True)
"""


def imported_by(*args: str, returncode: int = 0) -> set[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ), timeout=120)
    assert r.returncode == returncode, r.stderr
    line = next(line for line in r.stderr.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def heavy_in(modules: set[str]) -> list[str]:
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    training = [m for m in modules if m.startswith("nst_video.training") and m not in TRAINING_ALLOWED]
    return sorted(heavy + training)


COMMANDS = [("--help",), ("styles",)] + [(name, "--help") for name in sorted(main.commands)]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_help_and_styles_load_no_heavy_module(args):
    modules = imported_by(*args)
    assert "nst_video.cli" in modules  # the probe did run the command
    assert heavy_in(modules) == []


def test_the_check_sees_heavy_imports(tmp_path):
    """The probe is not blind: a command that goes to work (here `diagnose`, which fails on its missing
    input after loading the training code) shows torch and the training modules."""
    found = heavy_in(imported_by("diagnose", tmp_path / "none", tmp_path / "none.jpg", returncode=1))
    assert "torch" in found and "nst_video.training.diagnose" in found


def test_styles_lists_from_headers_alone(style_dir):
    """`styles` lists the styles without torch, and still skips a file that is not a whole style file."""
    broken = style_dir.parent / "broken-styles"
    broken.mkdir(exist_ok=True)
    good = (style_dir / "randomstyle.safetensors").read_bytes()
    (broken / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (broken / "text.safetensors").write_text("hello")
    (broken / "whole.safetensors").write_bytes(good)
    r = subprocess.run([sys.executable, "-m", "nst_video", "styles"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, NST_VIDEO_STYLES=str(broken)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "whole" in r.stdout and "truncated" not in r.stdout and "text.safetensors" not in r.stdout
