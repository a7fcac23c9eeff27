"""PyTorch eager: any device. On CUDA: channels_last (cuDNN's fastest tensor-core kernels) and FP16 where
asked; on the CPU float32 (FP16 is slower there), or bfloat16 autocast with `--precision bf16` where oneDNN
has bf16 kernels (AMX or AVX512-BF16)."""
from __future__ import annotations

import torch
from torch import nn

from nst_video.runtimes import Network, Runtime, refuse_precision


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(self, device: torch.device, fp16: bool, threads: int | None, precision: str = "auto"):
        super().__init__(device, threads, precision)
        if device.type == "cpu":
            has_bf16 = cpu_has_bf16()
            refuse_precision("torch", precision, ("fp32", "bf16") if has_bf16 else ("fp32",),
                             "" if has_bf16 else " (this CPU has no AMX or AVX512-BF16)")
        # auto stays fp32 on the CPU: OpenVINO is the fast CPU runtime; bf16 here is asked for, not assumed.
        self.autocast = device.type == "cpu" and precision == "bf16"
        self.fp16 = bool(fp16) and device.type in ("cuda", "mps")
        self.computes_in = "fp16" if self.fp16 else "bf16" if self.autocast else "fp32"
        self.dtype = torch.float16 if self.fp16 else torch.float32
        self.memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        if device.type == "cpu":
            torch.set_num_threads(self.threads)

    def prepare(self, model: nn.Module) -> Network:
        model = model.eval().requires_grad_(False).to(self.device, self.dtype).to(memory_format=self.memory_format)
        dtype, memory_format, autocast = self.dtype, self.memory_format, self.autocast

        def network(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return model(x.to(dtype).contiguous(memory_format=memory_format)).float()
        network.model = model  # type: ignore[attr-defined]
        return network

    def describe(self) -> str:
        return super().describe().removesuffix(")") + f", {self.computes_in.upper()})"


def open_runtime(device: torch.device, fp16: bool = False, threads: int | None = None,
                 precision: str = "auto") -> TorchRuntime:
    return TorchRuntime(device, fp16, threads, precision)
