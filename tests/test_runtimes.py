"""CPU runtimes behind the Stylizer: the same pictures from every backend, the same post-processing and
batching, the graph cache (reused, rebuilt when damaged, safe under concurrent processes), and clear errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from nst_video.errors import NstError
from nst_video.images import load_image
from nst_video.runtimes import choose_backend, graphs, installed
from nst_video.styles import StyleRegistry
from nst_video.stylizer import Stylizer

GRAPH_BACKENDS = [b for b in ("openvino", "onnxruntime") if installed(b)]


@pytest.fixture(scope="module")
def photos():
    """The sample photos, scaled down (the runtimes' agreement does not depend on size), plus an odd size."""
    out = [load_image(p, max_size=200).rgb for p in sorted((ROOT / "samples" / "photos").iterdir())
           if p.suffix in (".jpg", ".png")]
    out.append(out[0][:77, :101].copy())
    return out


@pytest.fixture(scope="module")
def mosaic():
    return StyleRegistry().load("mosaic")[1]


def _mae(a, b) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
@pytest.mark.parametrize("options", [{}, {"strength": 0.6, "preserve_color": True}], ids=["plain", "post"])
def test_every_backend_matches_pytorch_within_one_level(backend, options, photos, mosaic):
    reference = Stylizer(mosaic, device="cpu", backend="torch", **options).stylize(photos)
    stylizer = Stylizer(mosaic, device="cpu", backend=backend, batch_size=2, **options)
    assert stylizer.backend.startswith(backend)
    for ref, out, photo in zip(reference, stylizer.stylize(photos), photos, strict=True):
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert _mae(out, ref) < 1.0, backend  # within 1/255 on average
        assert _mae(out, photo) > 10  # and it is the style, not the photo


def test_auto_takes_the_fastest_installed_cpu_runtime():
    expected = "openvino" if installed("openvino") else "onnxruntime" if installed("onnxruntime") else "torch"
    assert choose_backend("auto", torch.device("cpu")) == expected
    if torch.cuda.is_available():
        assert choose_backend("auto", torch.device("cuda")) == "torch"


def test_graph_backends_refuse_a_gpu_device():
    with pytest.raises(NstError, match="runs on the CPU"):
        choose_backend("openvino", torch.device("cuda"))


def test_cache_is_reused_and_a_damaged_entry_is_rebuilt(mosaic, photos, tmp_path, monkeypatch, capfd):
    if not GRAPH_BACKENDS:
        pytest.skip("no graph runtime installed")
    backend = GRAPH_BACKENDS[0]
    monkeypatch.setenv("NST_VIDEO_CACHE", str(tmp_path))
    exports = []
    real_write = graphs.write_graph
    monkeypatch.setattr(graphs, "write_graph", lambda *a: (exports.append(a[1]), real_write(*a)))
    first = Stylizer(mosaic, device="cpu", backend=backend).stylize(photos[:1])[0]
    Stylizer(mosaic, device="cpu", backend=backend)
    assert len(exports) == 1  # the second run took the cached graph
    (entry,) = (tmp_path / "graphs").iterdir()
    for f in entry.iterdir():
        f.write_bytes(f.read_bytes()[:100])  # truncated, as by a full disk
    again = Stylizer(mosaic, device="cpu", backend=backend).stylize(photos[:1])[0]
    assert len(exports) == 2 and "rebuilding" in capfd.readouterr().err
    assert _mae(first, again) == 0
    assert [p.name for p in (tmp_path / "graphs").iterdir()] == [entry.name]  # no temporary folders left


def test_concurrent_processes_share_one_cache_entry(tmp_path):
    if not GRAPH_BACKENDS:
        pytest.skip("no graph runtime installed")
    code = ("import numpy as np; from nst_video.stylizer import Stylizer; "
            f"s = Stylizer.from_style('udnie', device='cpu', backend='{GRAPH_BACKENDS[0]}', threads=1); "
            "print(int(s.stylize([np.full((40, 48, 3), 100, np.uint8)])[0].sum()))")
    env = dict(os.environ, NST_VIDEO_CACHE=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    assert len({out for out, _ in results}) == 1  # the same picture from each
    assert len(list((tmp_path / "graphs").iterdir())) == 1  # one entry, no half-built folders


def test_backend_option_on_the_cli(photo, tmp_path):
    for backend in ["torch", *GRAPH_BACKENDS]:
        r = run_cli("image", photo, tmp_path / f"{backend}.png", "--style", "mosaic", "--backend", backend,
                    "--threads", "1")
        assert r.returncode == 0, r.stderr
    r = run_cli("image", photo, tmp_path / "x.png", "--backend", "tensorrt")
    assert r.returncode == 2 and "tensorrt" in r.stderr


def test_a_runtime_that_is_not_installed_names_the_extra(photo, tmp_path):
    blocker = tmp_path / "block"
    (blocker / "onnxruntime").mkdir(parents=True)
    (blocker / "onnxruntime" / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    r = run_cli("image", photo, tmp_path / "x.png", "--backend", "onnxruntime",
                env_extra={"PYTHONPATH": str(blocker)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "pip install 'nst-video[onnxruntime]'" in r.stderr and not (tmp_path / "x.png").exists()


def _cpu_can_bf16() -> bool:
    import openvino as ov
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_is_what_runs_and_what_is_shown(photos, mosaic, precision):
    if precision == "bf16" and not _cpu_can_bf16():
        pytest.skip("this CPU has no AMX or AVX512-BF16")
    reference = Stylizer(mosaic, device="cpu", backend="torch").stylize(photos[:1])[0]
    for backend in ("openvino", "torch"):
        stylizer = Stylizer(mosaic, device="cpu", backend=backend, precision=precision, threads=1)
        assert stylizer.backend.endswith(f", {precision.upper()})")
        difference = _mae(stylizer.stylize(photos[:1])[0], reference)
        # fp32 is the reference's own arithmetic; bf16 keeps 8 bits of mantissa, so it differs, but slightly
        assert (difference < 0.5) if precision == "fp32" else (0.05 < difference < 6), (backend, difference)


def test_a_precision_the_cpu_or_runtime_cannot_do_is_one_line(photo, tmp_path):
    r = run_cli("image", photo, tmp_path / "x.png", "--backend", "onnxruntime", "--precision", "bf16")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "--precision bf16: onnxruntime cannot compute in bf16" in r.stderr and not (tmp_path / "x.png").exists()
    if not _cpu_can_bf16():
        r = run_cli("image", photo, tmp_path / "x.png", "--precision", "bf16")
        assert r.returncode == 1 and "no AMX or AVX512-BF16" in r.stderr, r.stderr
    r = run_cli("image", photo, tmp_path / "x.png", "--precision", "int3")
    assert r.returncode == 2 and "int3" in r.stderr


def test_int8_runs_a_quantised_graph_close_to_fp32(photos):
    pytest.importorskip("nncf", reason="--precision int8 needs the int8 extra (NNCF)")
    from nst_video.paths import graph_cache_dir

    fast = StyleRegistry().load("mosaic-fast")[1]  # what a CPU without AMX runs, and int8 is for
    reference = Stylizer(fast, device="cpu", backend="openvino", precision="fp32", threads=1).stylize(photos[:1])[0]
    stylizer = Stylizer(fast, device="cpu", backend="openvino", precision="int8", threads=1)
    assert stylizer.backend.endswith(", INT8)")
    graphs = [p for p in graph_cache_dir().glob("*int8*/graph.xml")]
    assert len(graphs) == 1 and graphs[0].read_text().count('type="FakeQuantize"') >= 10  # weights and activations
    difference = _mae(stylizer.stylize(photos[:1])[0], reference)
    # 8-bit activations: a little off everywhere (bench_int8.py measures what it costs the picture)
    assert 0.05 < difference < 6, difference
    # the odd size too (the graph pads as the FP32 one does)
    assert stylizer.stylize(photos[-1:])[0].shape == photos[-1].shape


def test_int8_without_nncf_or_on_another_runtime_is_one_line(photo, tmp_path):
    blocker = tmp_path / "block"
    (blocker / "nncf").mkdir(parents=True)
    (blocker / "nncf" / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    r = run_cli("image", photo, tmp_path / "x.png", "--precision", "int8", env_extra={"PYTHONPATH": str(blocker)})
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "pip install 'nst-video[int8]'" in r.stderr and not (tmp_path / "x.png").exists()
    r = run_cli("image", photo, tmp_path / "x.png", "--backend", "torch", "--precision", "int8")
    assert r.returncode == 1 and "--precision int8: torch cannot compute in int8" in r.stderr, r.stderr


@pytest.mark.parametrize("args, expected", [
    (["styles"], "PASSIVE"),  # stylizing commands: torch's OpenMP workers sleep, OpenVINO keeps both cores
    (["train", "--help"], None),  # torch's own training is faster with them spinning
    (["distill", "--help"], None),
])
def test_openmp_workers_sleep_where_a_graph_runtime_paints(args, expected):
    code = ("import os, sys\nfrom nst_video.cli import main\n"
            "try:\n    main(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print('policy', os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120).stdout
    assert out.strip().splitlines()[-1].endswith(f"policy {expected}")
    # A user's own setting wins.
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, cwd=ROOT, timeout=120).stdout
    assert out.strip().splitlines()[-1].endswith("policy ACTIVE")
