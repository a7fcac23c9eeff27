"""`nst-video export`: a style's network as a standalone graph (ONNX, OpenVINO IR, TorchScript) for other
programs, checked against PyTorch on three sizes before it is put in place.

The graph's interface is in nst_video/runtimes/graphs.py: float32 RGB in [0, 1], NCHW, dynamic batch/height/width."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nst_video.atomic import move_into_place
from nst_video.errors import NstError
from nst_video.runtimes.graphs import FORMATS, INPUT, write_graph

CHECK_SIZES = ((64, 96), (37, 53), (240, 320))  # (H, W): a multiple of 4, odd sizes, and a larger one
MAX_DIFFERENCE = 1e-3


@dataclass
class ExportResult:
    path: Path
    files: list[Path]
    max_difference: dict[tuple[int, int], float]  # per checked size: the largest |graph - PyTorch|


def default_output(style_key: str, fmt: str) -> Path:
    return Path(f"{style_key}{FORMATS[fmt]}")


def export_style(model: nn.Module, fmt: str, output: Path) -> ExportResult:
    if fmt not in FORMATS:
        raise NstError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    output = Path(output)
    if output.suffix.lower() != FORMATS[fmt]:
        raise NstError(f"{output}: a {fmt} graph is written as a {FORMATS[fmt]} file (e.g. "
                       f"{output.with_suffix(FORMATS[fmt]).name})")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise NstError(f"output folder does not exist or is not a folder: {folder}")
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{output.stem}.", suffix=".partial", dir=folder))
    except OSError as e:
        raise NstError(f"cannot write to {folder}: {e.strerror or e}") from None
    try:
        graph = building / output.name
        write_graph(model, fmt, graph)
        differences = check_graph(model, fmt, graph)
        worst = max(differences.values())
        if worst > MAX_DIFFERENCE:
            raise NstError(f"the exported {fmt} graph differs from PyTorch by up to {worst:.2g} "
                           f"(more than {MAX_DIFFERENCE:g}); not written")
        # OpenVINO's weights file first: the .xml that names it appears only once both are complete.
        written = []
        for part in sorted(building.iterdir(), key=lambda p: p.suffix == FORMATS[fmt]):
            move_into_place(part, folder / part.name)
            written.append(folder / part.name)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(building)
    return ExportResult(output, written, differences)


def check_graph(model: nn.Module, fmt: str, graph: Path) -> dict[tuple[int, int], float]:
    """Run the graph with its own runtime (in full precision) and PyTorch on random images of CHECK_SIZES."""
    run = _graph_runner(fmt, graph)
    model = model.cpu().float().eval()
    generator = torch.Generator().manual_seed(0)
    differences = {}
    for h, w in CHECK_SIZES:
        x = torch.rand((1, 3, h, w), generator=generator)
        with torch.inference_mode():
            expected = model(x).numpy()
        got = run(x.numpy())
        if got.shape != expected.shape:
            raise NstError(f"the exported {fmt} graph returned shape {got.shape} for {expected.shape}")
        differences[(h, w)] = float(np.abs(got - expected).max())
    return differences


def _graph_runner(fmt: str, graph: Path):
    if fmt == "torchscript":
        with warnings.catch_warnings():  # torch.jit.load warns that TorchScript is deprecated; we export it
            warnings.simplefilter("ignore")
            scripted = torch.jit.load(str(graph))
        return lambda x: scripted(torch.from_numpy(x)).detach().numpy()
    try:  # ONNX with ONNX Runtime where installed; OpenVINO reads ONNX too
        if fmt == "onnx":
            import onnxruntime as ort
            session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
            return lambda x: session.run(None, {INPUT: x})[0]
    except ImportError:
        pass
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(graph)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: compiled(x)[0]
