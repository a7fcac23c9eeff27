"""OpenVINO on the CPU. The network is converted once per style to OpenVINO's graph (cached), and compiled
with dynamic shapes, so one compiled model serves every frame size. `--precision auto` lets OpenVINO pick the
CPU's fastest precision (bfloat16 where the CPU has AMX or AVX512-BF16; outputs stay within 1/255 of
PyTorch's on average, see tests/test_runtimes.py); fp32 and bf16 ask for one; int8 runs a quantised graph
(quantize.py), the rest of it in fp32."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import torch
from torch import nn

from nst_video.runtimes import Network, Runtime, default_threads, quantize, refuse_precision
from nst_video.runtimes.graphs import cached_graph

# --precision -> OpenVINO's INFERENCE_PRECISION_HINT (int8: for what the quantised graph leaves in float)
HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


class OpenVinoRuntime(Runtime):
    name = "openvino"

    def __init__(self, device: torch.device, threads: int | None, precision: str = "auto"):
        super().__init__(device, threads, precision)
        self.core = ov.Core()
        # BF16 in OPTIMIZATION_CAPABILITIES: the CPU has AMX or AVX512-BF16 (elsewhere OpenVINO would emulate it
        # slowly or refuse).
        capabilities = self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        has_bf16 = "BF16" in capabilities
        offered = ("fp32", "bf16") if has_bf16 else ("fp32",)
        refuse_precision("openvino", precision, offered + (("int8",) if "INT8" in capabilities else ()),
                         "" if has_bf16 else " (this CPU has no AMX or AVX512-BF16)")
        self.quantizer = quantize.nncf_version() if precision == "int8" else None
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
                       # OpenVINO pins its threads to the first cores: two processes of one thread each (Ray
                       # tasks, --threads 1 beside other work) then share one core and run at half speed
                       # (measured: 356 ms a frame alone, 712 ms each side by side, on 2 cores). Pin only a
                       # process that takes every core.
                       "ENABLE_CPU_PINNING": self.threads >= default_threads()}
        if precision != "auto":
            self.config["INFERENCE_PRECISION_HINT"] = HINTS[precision]
        self.computes_in = precision if precision != "auto" else ("bf16" if has_bf16 else "fp32")

    def compile(self, graph: Path):
        return self.core.compile_model(self.core.read_model(str(graph)), "CPU", self.config)

    def prepare(self, model: nn.Module) -> Network:
        version, write = f"ov{ov.__version__}", None
        if self.quantizer:  # the INT8 graph: its own cache entry, made by NNCF
            version, write = f"{version}-int8-nncf{self.quantizer}", quantize.write_int8_graph
        compiled = cached_graph(model, "openvino", version, self.compile, write=write)
        request = compiled.create_infer_request()

        def network(x: torch.Tensor) -> torch.Tensor:
            request.infer({0: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
            return torch.from_numpy(request.get_output_tensor(0).data.copy())
        return network

    def describe(self) -> str:
        return super().describe().removesuffix(")") + f", {self.computes_in.upper()})"


def open_runtime(device: torch.device, fp16: bool = False, threads: int | None = None,
                 precision: str = "auto") -> OpenVinoRuntime:
    return OpenVinoRuntime(device, threads, precision)
