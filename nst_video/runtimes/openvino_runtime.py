"""OpenVINO on the CPU. The network is converted once per style to OpenVINO's graph (cached), and compiled
with dynamic shapes, so one compiled model serves every frame size. OpenVINO picks the CPU's fastest
precision (bfloat16 where the CPU has AMX or AVX512-BF16; outputs stay within 1/255 of PyTorch's on
average, see tests/test_runtimes.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import torch
from torch import nn

from nst_video.graphs import cached_graph
from nst_video.runtimes import Network, Runtime


class OpenVinoRuntime(Runtime):
    name = "openvino"

    def __init__(self, device: torch.device, threads: int | None, precision: str | None = None):
        super().__init__(device, threads)
        self.core = ov.Core()
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads}
        if precision:
            self.config["INFERENCE_PRECISION_HINT"] = precision

    def compile(self, graph: Path):
        return self.core.compile_model(self.core.read_model(str(graph)), "CPU", self.config)

    def prepare(self, model: nn.Module) -> Network:
        compiled = cached_graph(model, "openvino", f"ov{ov.__version__}", self.compile)
        request = compiled.create_infer_request()

        def network(x: torch.Tensor) -> torch.Tensor:
            request.infer({0: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
            return torch.from_numpy(request.get_output_tensor(0).data.copy())
        return network

    def describe(self) -> str:
        precision = str(self._precision()).upper()
        return super().describe().removesuffix(")") + f", {precision})"

    def _precision(self) -> str:
        try:
            hint = self.core.get_property("CPU", "INFERENCE_PRECISION_HINT")  # an openvino.Type
            name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
            return {"f32": "fp32", "f16": "fp16"}.get(name, name)
        except Exception:
            return "default"


def open_runtime(device: torch.device, fp16: bool = False, threads: int | None = None) -> OpenVinoRuntime:
    return OpenVinoRuntime(device, threads)
