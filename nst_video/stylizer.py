"""The Stylizer: everything about running the network lives here - device, dtype, memory layout, batching
- plus the post-processing every mode shares (strength, preserve colour). Callers hand in RGB uint8
frames (H, W, 3) and get RGB uint8 frames of the same size back."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nst_video.errors import NstError
from nst_video.model import TransformerNet
from nst_video.styles import StyleInfo, StyleRegistry

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    if name not in DEVICES and not name.startswith("cuda:"):
        raise NstError(f"unknown device '{name}'; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NstError("--device cuda: no CUDA GPU is available here (use --device cpu or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NstError("--device mps: Apple's Metal backend is not available here (use --device cpu or auto)")
    return torch.device(name)


class Stylizer:
    def __init__(self, model: TransformerNet, device: str = "auto", fp16: bool = False, strength: float = 1.0,
                 preserve_color: bool = False, batch_size: int = 4, info: StyleInfo | None = None):
        self.device = pick_device(device)
        # FP16 only where it is fast and supported; on the CPU it is slower than fp32, so it is ignored.
        self.fp16 = bool(fp16) and self.device.type in ("cuda", "mps")
        self.dtype = torch.float16 if self.fp16 else torch.float32
        # channels_last lets cuDNN pick its fastest (tensor-core) convolution kernels.
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        if batch_size < 1:
            raise NstError("--batch-size must be at least 1")
        self.batch_size = batch_size
        self.strength = strength
        self.preserve_color = preserve_color
        self.info = info
        self.model = self._prepare(model)

    @classmethod
    def from_style(cls, style: str, registry: StyleRegistry | None = None, **kwargs) -> "Stylizer":
        info, model = (registry or StyleRegistry()).load(style)
        return cls(model, info=info, **kwargs)

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise NstError(f"strength must be between 0 and 1, not {value}")
        self._strength = float(value)

    def set_model(self, model: TransformerNet, info: StyleInfo | None = None) -> None:
        self.model, self.info = self._prepare(model), info

    def _prepare(self, model: TransformerNet) -> TransformerNet:
        model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        return model.to(memory_format=self.memory_format)

    @torch.inference_mode()
    def stylize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float in [0, 1] on any device -> the same shape on self.device, float32, post-processed."""
        x = x.to(self.device, non_blocking=True)
        y = self.model(x.to(self.dtype).contiguous(memory_format=self.memory_format)).float()
        return self.postprocess(x.float(), y)

    def postprocess(self, original: torch.Tensor, stylized: torch.Tensor) -> torch.Tensor:
        if self.preserve_color:
            stylized = transfer_luminance(stylized, original)
        if self.strength < 1.0:
            stylized = torch.lerp(original, stylized, self.strength)
        return stylized.clamp_(0.0, 1.0)

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """RGB uint8 (H, W, 3) frames -> stylized frames of the same sizes, run in batches of equal size."""
        out: list[np.ndarray | None] = [None] * len(frames)
        by_shape: dict[tuple, list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                batch = frames_to_tensor([frames[i] for i in chunk])
                for i, frame in zip(chunk, tensor_to_frames(self.stylize_tensor(batch))):
                    out[i] = frame
        return out  # type: ignore[return-value]

    def stylize_image(self, rgb: np.ndarray) -> np.ndarray:
        return self.stylize([rgb])[0]


def frames_to_tensor(frames: Sequence[np.ndarray]) -> torch.Tensor:
    """RGB uint8 (H, W, 3) frames -> (N, 3, H, W) float32 in [0, 1]."""
    batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
    return batch.float().div_(255.0)


def tensor_to_frames(batch: torch.Tensor) -> list[np.ndarray]:
    """(N, 3, H, W) float in [0, 1] -> RGB uint8 (H, W, 3) frames (rounded, not truncated)."""
    as_uint8 = batch.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return list(as_uint8.permute(0, 2, 3, 1).contiguous().cpu().numpy())


def transfer_luminance(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """The stylized image's luminance with the original's chroma (BT.601 YCbCr): keeps the photo's colours."""
    y_styled = _luma(stylized)
    y_orig = _luma(original)
    r, g, b = original.unbind(1)
    cb, cr = (b - y_orig) * 0.564, (r - y_orig) * 0.713
    y = y_styled
    return torch.stack((y + 1.403 * cr, y - 0.344 * cb - 0.714 * cr, y + 1.773 * cb), dim=1)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb.unbind(1)
    return 0.299 * r + 0.587 * g + 0.114 * b
