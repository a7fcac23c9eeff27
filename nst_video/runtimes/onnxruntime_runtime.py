"""ONNX Runtime on the CPU: the network exported once per style to ONNX (cached), one session per style."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from nst_video.runtimes import Network, Runtime, refuse_precision
from nst_video.runtimes.graphs import INPUT, cached_graph


class OnnxRuntime(Runtime):
    name = "onnxruntime"

    def session(self, graph: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # its warnings about unused initialisers are not the user's business
        return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def prepare(self, model: nn.Module) -> Network:
        session = cached_graph(model, "onnx", f"ort{ort.__version__}", self.session)

        def network(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {INPUT: np.ascontiguousarray(x.numpy(), np.float32)})[0])
        return network

    def describe(self) -> str:
        return super().describe().removesuffix(")") + ", FP32)"


def open_runtime(device: torch.device, fp16: bool = False, threads: int | None = None,
                 precision: str = "auto") -> OnnxRuntime:
    refuse_precision("onnxruntime", precision, ("fp32",), " (its CPU provider runs this network in fp32 only; "
                     "--backend openvino computes in bf16)")
    return OnnxRuntime(device, threads, precision)
