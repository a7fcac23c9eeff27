"""PyTorch eager: any device. On CUDA: channels_last (cuDNN's fastest tensor-core kernels) and FP16 where
asked; on the CPU float32 (FP16 is slower there)."""
from __future__ import annotations

import torch
from torch import nn

from nst_video.runtimes import Network, Runtime


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(self, device: torch.device, fp16: bool, threads: int | None):
        super().__init__(device, threads)
        self.fp16 = bool(fp16) and device.type in ("cuda", "mps")
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        if device.type == "cpu":
            torch.set_num_threads(self.threads)

    def prepare(self, model: nn.Module) -> Network:
        model = model.eval().requires_grad_(False).to(self.device, self.dtype).to(memory_format=self.memory_format)
        dtype, memory_format = self.dtype, self.memory_format

        def network(x: torch.Tensor) -> torch.Tensor:
            return model(x.to(dtype).contiguous(memory_format=memory_format)).float()
        network.model = model  # type: ignore[attr-defined]
        return network

    def describe(self) -> str:
        precision = "FP16" if self.fp16 else "FP32"
        return super().describe().removesuffix(")") + f", {precision})"


def open_runtime(device: torch.device, fp16: bool = False, threads: int | None = None) -> TorchRuntime:
    return TorchRuntime(device, fp16, threads)
