"""Runtimes: what executes the network. One small module each, behind one interface; the Stylizer picks one.

  torch_runtime.py        PyTorch eager, on any device (the CUDA streaming path builds on it)
  openvino_runtime.py     OpenVINO on the CPU: a default dependency, the fastest CPU runtime measured here
  onnxruntime_runtime.py  ONNX Runtime on the CPU: an extra (`pip install 'nst-video[onnxruntime]'`)
  graphs.py, quantize.py  the exported graphs and their cache; the INT8 graph (`--precision int8`)

A runtime turns a network (an nn.Module from nst_video.model) into a `Network`: a callable from
(N, 3, H, W) float32 RGB in [0, 1] on the runtime's device to the stylized batch of the same shape. H and W
are multiples of 4 and at least 8 (the Stylizer pads). Graph runtimes export each network once and keep
the graph in the user cache folder (graphs.py), so a second run starts at once.

`--backend auto` takes torch on a GPU, and on the CPU the fastest runtime installed (BACKEND_PREFERENCE,
from benchmarks/bench_backends.py)."""
from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable

from nst_video.errors import NstError

if TYPE_CHECKING:  # torch loads with a runtime, not with these names (the CLI's --help and choices use them)
    import torch
    from torch import nn

Network = Callable[["torch.Tensor"], "torch.Tensor"]

BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
# What the CPU runtimes compute in. auto: the CPU's best (bfloat16 where it has AMX or AVX512-BF16, else
# float32); fp32 on such a CPU stands in for one without them (docs/cpu-runtimes.md); int8: OpenVINO with a
# quantised graph (an extra, quantize.py), never chosen by auto, as it costs the picture a little.
PRECISIONS = ("auto", "fp32", "bf16", "int8")
# CPU runtimes, fastest first (measured: see the README's CPU runtime table); torch is always there.
BACKEND_PREFERENCE = ("openvino", "onnxruntime", "torch")
MODULES = {"torch": "torch_runtime", "openvino": "openvino_runtime", "onnxruntime": "onnxruntime_runtime"}
# Each backend is named after its Python package. How to get it: onnxruntime is an extra; openvino is one of
# nst-video's own dependencies, so a missing one means a broken install (graphs.py's exporters say the same).
INSTALL = {"onnxruntime": "pip install 'nst-video[onnxruntime]'", "openvino": "pip install 'openvino>=2024.0'"}


class Runtime(ABC):
    """A way of running networks on one device. `name` is shown in the webcam overlay and job summaries."""

    name: str
    device: torch.device
    computes_in = "fp32"  # what the network's arithmetic is done in: fp32, bf16 or fp16 (set by each runtime)

    def __init__(self, device: torch.device, threads: int | None, precision: str = "auto"):
        self.device = device
        self.threads = threads or default_threads()
        self.precision = check_precision(precision)

    @abstractmethod
    def prepare(self, model: nn.Module) -> Network:
        """Make `model` runnable here (move, compile, export or load from the cache)."""

    def describe(self) -> str:
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        where = self.device.type.upper() if self.device.type != "cpu" else f"CPU, {threads}"
        return f"{self.name} ({where})"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise NstError(f"unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}")
    return precision


def refuse_precision(runtime: str, precision: str, supported: tuple[str, ...], why: str = "") -> None:
    """One line naming what cannot compute in `precision` here, and what can."""
    if precision not in ("auto", *supported):
        raise NstError(f"--precision {precision}: {runtime} cannot compute in {precision} here{why}; "
                       f"choose {' or '.join(('auto', *supported))}")


def default_threads() -> int:
    """Every core this process may use (all of them by default; `--threads N` leaves some to the user)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def installed(backend: str) -> bool:
    """Whether the backend's package (or any module so named) imports; a broken install counts as missing."""
    try:
        importlib.import_module(backend)
    except Exception:
        return False
    return True


def choose_backend(backend: str, device: torch.device) -> str:
    """The backend `auto` means on this device, or the one asked for after checking that it can run here."""
    if backend not in BACKENDS:
        raise NstError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if device.type != "cpu":
            return "torch"
        return next(b for b in BACKEND_PREFERENCE if installed(b))
    if backend != "torch" and device.type != "cpu":
        raise NstError(f"--backend {backend} runs on the CPU; use --device cpu, or --backend torch on "
                       f"{device.type}")
    if not installed(backend):
        raise NstError(f"--backend {backend}: {backend} is not installed; install it with {INSTALL[backend]}")
    return backend


def open_runtime(backend: str, device: torch.device, fp16: bool = False, threads: int | None = None,
                 precision: str = "auto") -> Runtime:
    check_precision(precision)
    name = choose_backend(backend, device)
    if device.type != "cpu" and precision in ("bf16", "int8"):
        raise NstError(f"--precision {precision} is for the CPU runtimes; on {device.type} use --fp16 (or nothing "
                       "for fp32)")
    if device.type != "cpu" and precision == "fp32" and fp16:
        raise NstError("--precision fp32 and --fp16 ask for two precisions; give one")
    module = importlib.import_module(f"nst_video.runtimes.{MODULES[name]}")
    return module.open_runtime(device, fp16=fp16, threads=threads, precision=precision)
