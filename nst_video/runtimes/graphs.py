"""Exported graphs of a network - ONNX, OpenVINO IR, TorchScript - and the user cache that keeps them.

Every graph takes float32 RGB in [0, 1], NCHW, any batch, height and width (at least 5 px), and returns the
stylized batch in the same layout and range: the input `image`, the output `stylized`. The padding to a
multiple of 4 is part of the graph (model.pad_reflect_traceable), so a graph needs nothing from this package.

The cache (nst_video/paths.py: `$NST_VIDEO_CACHE/graphs`, by default the platform's user cache folder) holds
one folder per (network weights, format,
size class, nst-video and runtime versions). A folder is built under a temporary name and renamed into
place in one step, so concurrent processes never see half of one; an entry that does not load (stale,
truncated) is removed and rebuilt."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, TypeVar

import torch
from torch import nn

from nst_video import __version__
from nst_video.errors import NstError
from nst_video.paths import graph_cache_dir
from nst_video.report import warn
from nst_video.runtimes import INSTALL

FORMATS = {"onnx": ".onnx", "openvino": ".xml", "torchscript": ".pt"}
RUNTIME_FOR = {"onnx": "onnxruntime", "openvino": "openvino"}  # whose install brings the exporter
SIZE_CLASS = "anysize"  # one graph with dynamic height and width serves every size (measured as fast as static)
INPUT, OUTPUT = "image", "stylized"
_EXAMPLE = (1, 3, 64, 96)
T = TypeVar("T")


def write_graph(model: nn.Module, fmt: str, path: Path) -> None:
    """Export `model` (not modified) as `fmt` to `path` (OpenVINO also writes the .bin beside the .xml)."""
    if fmt not in FORMATS:
        raise NstError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    model = copy.deepcopy(model).cpu().float().eval().requires_grad_(False)
    example = torch.rand(_EXAMPLE)
    with warnings.catch_warnings():  # tracing explains, at length, what it records; it records what we mean
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            _require("onnx", "onnx")
            dynamic = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(model, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: dynamic, OUTPUT: dynamic}, opset_version=17, dynamo=False)
        elif fmt == "openvino":
            write_openvino_graph(model, example, path)
        else:
            with torch.no_grad():
                torch.jit.trace(model, example).save(str(path))


def write_openvino_graph(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """`model` (a plain or a quantised network, in eval mode) traced on `example` as an OpenVINO graph of any
    batch, height and width, with the input and output names every graph has."""
    ov = _require("openvino", "openvino")
    graph = ov.convert_model(model, example_input=example, input=[ov.PartialShape([-1, 3, -1, -1])])
    graph.inputs[0].get_tensor().set_names({INPUT})
    graph.outputs[0].get_tensor().set_names({OUTPUT})
    ov.save_model(graph, str(path))


def _require(module: str, fmt: str):
    try:
        return __import__(module)
    except ImportError:
        raise NstError(f"{fmt} export needs the {module} package: {INSTALL[RUNTIME_FOR[fmt]]}") from None


def network_digest(model: nn.Module) -> str:
    """A short hash of the network's class and weights: the identity of a style for the cache."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def cached_graph(model: nn.Module, fmt: str, runtime_version: str, load: Callable[[Path], T],
                 write: Callable[[nn.Module, Path], None] | None = None) -> T:
    """`load(graph file)` of the cached graph of `model` in `fmt`, exporting it first if it is not cached
    (with `write(model, file)` where given: quantize.py's INT8 graph, whose version is in runtime_version)."""
    key = f"{network_digest(model)}-{fmt}-{SIZE_CLASS}-nst{__version__}-{runtime_version}"
    key = re.sub(r"[^\w.+-]+", "_", key)  # versions may hold slashes (OpenVINO's does)
    folder = graph_cache_dir()
    entry = folder / key
    graph = entry / f"graph{FORMATS[fmt]}"
    if entry.is_dir():
        try:
            return load(graph)
        except Exception as e:  # stale or damaged: rebuild it rather than fail the user's job
            warn(f"cached graph {entry} does not load ({type(e).__name__}); rebuilding it")
            _remove(entry)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder))
    except OSError as e:
        raise NstError(f"cannot write the graph cache in {folder}: {e.strerror or e} "
                       "(set NST_VIDEO_CACHE to a writable folder)") from None
    try:
        if write is not None:
            write(model, building / graph.name)
        else:
            write_graph(model, fmt, building / graph.name)
        try:
            os.rename(building, entry)  # atomic; fails if another process got there first, whose copy we use
        except OSError:
            if not entry.is_dir():
                raise
    finally:
        _remove(building)
    return load(graph)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
