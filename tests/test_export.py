"""`nst-video export`: standalone graphs that match PyTorch, load without this package, and fail cleanly."""
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, run_cli
from PIL import Image

from nst_video.runtimes import installed


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("openvino", ".xml"), ("torchscript", ".pt")])
def test_export_writes_a_checked_graph(fmt, suffix, tmp_path):
    needed = {"onnx": "onnx", "openvino": "openvino"}.get(fmt)
    if needed and not installed(needed):
        pytest.skip(f"{needed} not installed")
    out = tmp_path / f"udnie{suffix}"
    r = run_cli("export", "--style", "udnie", "--format", fmt, "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.is_file() and "max difference from PyTorch" in r.stderr
    differences = [float(x) for x in re.findall(r"\d+x\d+ ([0-9.e+-]+)", r.stderr)]
    assert len(differences) == 3 and max(differences) <= 1e-3
    if fmt == "openvino":
        assert out.with_suffix(".bin").is_file()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_docs_snippet_runs_with_plain_onnxruntime(tmp_path):
    if not (installed("onnx") and installed("onnxruntime")):
        pytest.skip("onnx / onnxruntime not installed")
    page = (ROOT / "docs" / "cpu-runtimes.md").read_text()
    snippet = re.search(r"<!-- tested: tests/test_export.py -->\s*```python\n(.*?)```", page, re.S)
    assert snippet, "the ONNX Runtime snippet of docs/cpu-runtimes.md (Export) is missing"
    r = run_cli("export", "--style", "mosaic", "-o", tmp_path / "mosaic.onnx")
    assert r.returncode == 0, r.stderr
    rgb = np.random.default_rng(0).integers(0, 256, (61, 83, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg")
    # The snippet must not need nst-video: importing it would fail here.
    code = "import sys; sys.modules['nst_video'] = None\n" + snippet.group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    styled = np.asarray(Image.open(tmp_path / "photo_mosaic.png"))
    assert styled.shape == rgb.shape and np.abs(styled.astype(int) - rgb).mean() > 10


def test_bad_exports_are_one_line_and_leave_nothing(tmp_path):
    r = run_cli("export", "--style", "mosaic", "-o", tmp_path / "missing" / "m.onnx")
    assert r.returncode == 1 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("export", "--style", "mosaic", "--format", "tflite")
    assert r.returncode == 2 and "tflite" in r.stderr
    r = run_cli("export", "--style", "mosaic", "--format", "onnx", "-o", tmp_path / "m.xml")
    assert r.returncode == 1 and ".onnx" in r.stderr
    r = run_cli("export", "--style", "nosuchstyle", "-o", tmp_path / "m.onnx")
    assert r.returncode == 1 and "unknown style" in r.stderr
    assert list(tmp_path.iterdir()) == []
