"""The perceptual loss of Johnson et al.: a frozen VGG16 (ImageNet) compares feature maps.

  content loss  MSE of relu2_2 features (output vs photo)
  style loss    MSE of Gram matrices (normalised by C*H*W) at relu1_2, relu2_2, relu3_3, relu4_3
                (output vs style image; the style's Grams are computed once and cached)
  TV loss       total variation of the output, for smoothness
Gram matrices and sums are computed in float32 even under autocast: fp16 Grams overflow.

The same module serves `nst-video optimize` (Gatys et al.), which picks other layers and `scale_free` terms:
content and each style layer measured relative to the target's mean square (+ eps, so a flat style image
cannot divide by zero), TV as a per-pixel mean, so the weights mean the same at every image size (its
coarse-to-fine levels) and every layer counts alike. Several style images mix their Grams by weight. The
defaults are the training recipe's, unchanged."""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nst_video.errors import NstError

VGG_ENV = "NST_VIDEO_VGG_WEIGHTS"
# Indices into torchvision's vgg16().features of the ReLUs the recipes use (Johnson: *_2/*_3, Gatys: *_1, 4_2).
LAYERS = {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_3": 15, "relu4_1": 18,
          "relu4_2": 20, "relu4_3": 22}
CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_features_to_relu4_3() -> nn.Sequential:
    """torchvision's vgg16().features[:23] layout, built here so no download is needed."""
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
    layers: list[nn.Module] = []
    cin = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


def load_vgg_weights(path: str | Path | None) -> dict[str, torch.Tensor]:
    """VGG16 `features` weights from a file (any of the two layouts in ../shared/data/vgg, or torchvision's
    full vgg16 state dict), from $NST_VIDEO_VGG_WEIGHTS, or torchvision's download as a last resort."""
    path = path or os.environ.get(VGG_ENV)
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise NstError(f"VGG weights not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if "Unsupported global" not in str(e):  # garbage, not a pickle of objects
                raise NstError(f"{path}: not a readable VGG16 weights file (not a PyTorch file)") from None
            # torch's own message here is eight lines of advice meant for code authors
            raise NstError(f"{path}: not a VGG16 weights file: it holds Python objects besides tensors, which "
                           "are never unpickled (expected a state dict of tensors)") from None
        except Exception as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise NstError(f"{path}: not a readable VGG16 weights file ({reason})") from None
    else:
        state = _torchvision_download()
    if not isinstance(state, dict):
        raise NstError(f"{path}: expected a state dict of VGG16 weights")
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    wanted = vgg16_features_to_relu4_3().state_dict()
    missing = [k for k in wanted if k not in features]
    if missing:
        raise NstError(f"{path}: not VGG16 features weights (missing features.{missing[0]})")
    for k, v in wanted.items():
        if tuple(features[k].shape) != tuple(v.shape):
            raise NstError(f"{path}: features.{k} has shape {tuple(features[k].shape)}, not VGG16's {tuple(v.shape)}")
        if not torch.isfinite(features[k]).all():
            raise NstError(f"{path}: features.{k} holds NaN or Inf values; the file is corrupt")
    return {k: features[k].float() for k in wanted}


def _torchvision_download() -> dict[str, torch.Tensor]:
    try:
        from torchvision.models import VGG16_Weights, vgg16
        return vgg16(weights=VGG16_Weights.IMAGENET1K_V1).state_dict()
    except Exception as e:
        raise NstError("no VGG16 weights: pass --vgg-weights PATH (a torchvision vgg16 state dict or its "
                       f"'features' part) or set ${VGG_ENV}; downloading them failed ({type(e).__name__})") from None


class PerceptualLoss(nn.Module):
    def __init__(self, vgg_state: dict[str, torch.Tensor], content_weight: float, style_weight: float,
                 tv_weight: float, *, content_layer: str = CONTENT_LAYER, style_layers: Sequence[str] = STYLE_LAYERS,
                 scale_free: bool = False, eps: float = 1e-8):
        super().__init__()
        self.vgg = vgg16_features_to_relu4_3()
        self.vgg.load_state_dict(vgg_state)
        self.vgg.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.weights = {"content": content_weight, "style": style_weight, "tv": tv_weight}
        self.content_layer, self.style_layers = content_layer, tuple(style_layers)
        self.deepest = max((content_layer, *self.style_layers), key=LAYERS.__getitem__)
        self.scale_free, self.eps = scale_free, eps
        self.style_grams: list[torch.Tensor] | None = None
        self.content_target: torch.Tensor | None = None

    def features(self, x: torch.Tensor, upto: str = "relu4_3") -> dict[str, torch.Tensor]:
        """Feature maps at the named ReLUs, for x RGB in [0, 1]."""
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        last = LAYERS[upto]
        wanted = {i: name for name, i in LAYERS.items() if i <= last}
        out = {}
        for i, layer in enumerate(self.vgg):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out

    @torch.no_grad()
    def set_style(self, style: torch.Tensor | Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> None:
        """Cache the style's Gram matrices once: one image (1, 3, H, W), or several (any sizes) whose Grams are
        mixed by `weights` (relative; normalised to sum 1; default equal)."""
        images = [style] if isinstance(style, torch.Tensor) else list(style)
        weights = [1.0] * len(images) if weights is None else [float(w) for w in weights]
        if not images or len(weights) != len(images) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("set_style: one weight >= 0 per image, not all 0")
        upto = max(self.style_layers, key=LAYERS.__getitem__)
        mixed: list[torch.Tensor] | None = None
        for image, w in zip(images, weights, strict=True):
            feats = self.features(image, upto=upto)
            grams = [gram(feats[name]) * (w / sum(weights)) for name in self.style_layers]
            mixed = grams if mixed is None else [m + g for m, g in zip(mixed, grams, strict=True)]
        self.style_grams = mixed

    @torch.no_grad()
    def set_content(self, content: torch.Tensor) -> None:
        """Cache the content target (one photo whose features do not change, as in optimisation)."""
        self.content_target = self.features(content, upto=self.content_layer)[self.content_layer]

    def forward(self, output: torch.Tensor, content: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Weighted loss terms and their sum ('total'), each a float32 scalar. Without `content`, the target
        cached by set_content()."""
        if self.style_grams is None:
            raise RuntimeError("set_style() first")
        if content is not None:
            with torch.no_grad():
                target = self.features(content, upto=self.content_layer)[self.content_layer]
        elif self.content_target is not None:
            target = self.content_target
        else:
            raise RuntimeError("pass content, or set_content() first")
        feats = self.features(output, upto=self.deepest)
        content_loss = self._distance(feats[self.content_layer].float(), target.float())
        style_loss = sum(self._distance(gram(feats[name]), g.expand(output.shape[0], -1, -1))
                         for name, g in zip(self.style_layers, self.style_grams, strict=True))
        tv = total_variation(output.float(), mean=self.scale_free)
        terms = {"content": self.weights["content"] * content_loss,
                 "style": self.weights["style"] * style_loss,
                 "tv": self.weights["tv"] * tv}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms

    def _distance(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MSE; scale-free: relative to the target's mean square (eps keeps an all-zero target finite)."""
        mse = F.mse_loss(x, target)
        return mse / (target.square().mean() + self.eps) if self.scale_free else mse


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C) Gram matrices normalised by C*H*W, in float32."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def total_variation(x: torch.Tensor, mean: bool = False) -> torch.Tensor:
    """Sum of absolute differences of neighbouring pixels, averaged over the batch; with `mean`, the mean
    difference per pixel and direction (the same for any image size)."""
    dy, dx = (x[..., 1:, :] - x[..., :-1, :]).abs(), (x[..., :, 1:] - x[..., :, :-1]).abs()
    if mean:
        return (dy.mean() + dx.mean()) / 2
    return (dy.sum() + dx.sum()) / x.shape[0]
