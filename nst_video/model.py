"""The image transformation network of Johnson et al., "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution" (ECCV 2016), with instance normalisation (Ulyanov et al. 2016) and nearest-neighbour
upsampling instead of transposed convolutions (no checkerboard artefacts; Odena et al. 2016); or, as
"johnson-fixed-norm", with those norms' statistics frozen after training (FixedNorm).

Input and output are RGB in [0, 1], shape (N, 3, H, W), any H and W.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nst_video.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE  # the networks by name (plain data)


class InstanceNorm(nn.InstanceNorm2d):
    """Affine instance norm that always computes its statistics in float32.

    Under FP16 the per-channel variance of a 1080p feature map overflows or loses all precision, which shows
    as black or blown-out frames; computing in fp32 costs little and keeps FP16 output close to FP32."""

    def __init__(self, channels: int):
        super().__init__(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.instance_norm(x.float(), weight=self.weight.float(), bias=self.bias.float(), eps=self.eps)
        return y.to(x.dtype)


def norm_affine(layer: nn.Module, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A norm layer with statistics (mean, var) as x * scale + shift, float32 per channel: weight * (x - mean) /
    sqrt(var + eps) + bias."""
    scale = layer.weight.float() * torch.rsqrt(var.float() + layer.eps)
    return scale, layer.bias.float() - mean.float() * scale


class FixedNorm(nn.Module):
    """Per-channel affine normalisation with statistics fixed after training (a frozen instance norm).

    Instance norm hands the network each picture's own mean and scale. That blinds it to the photo's
    brightness (a bright photo is spread over the painting's tones: udnie's near-black blobs), and a few
    spiking positions can steer a whole channel's statistics (the "droplets" of Karras et al. 2020). With
    fixed statistics every output pixel depends on its neighbourhood only (docs/training.md)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        return norm_affine(self, self.mean, self.var)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        return x * scale.to(x.dtype)[:, None, None] + shift.to(x.dtype)[:, None, None]


NORMS = {"instance": InstanceNorm, "fixed": FixedNorm}


class ConvLayer(nn.Sequential):
    """Reflection pad + convolution: padding by reflection avoids dark borders at the image edge."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride))


class ConvNormReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: type[nn.Module] = InstanceNorm):
        super().__init__(ConvLayer(cin, cout, kernel, stride), norm(cout), nn.ReLU(inplace=True))


class UpsampleConvNormReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: type[nn.Module] = InstanceNorm):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvNormReLU(cin, cout, 3, norm=norm))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int = 128, norm: type[nn.Module] = InstanceNorm):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3), norm(channels), nn.ReLU(inplace=True),
            ConvLayer(channels, channels, 3), norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Downsample x4, residual blocks, upsample x4. Johnson's widths (32, 64, 128) and five blocks: 1,679,235
    parameters. The same layers at other widths make the other architectures (ARCHITECTURES)."""

    # Two stride-2 convolutions: H and W must be multiples of 4 for the output to line up with the input,
    # and at least 8 so the reflection pads inside the network (up to 4 px, 1 px after downsampling) fit.
    # (An instance with pixel_shuffle f needs multiples of 4f: it pads itself.)
    SIZE_MULTIPLE = 4
    MIN_SIZE = 8

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), blocks: int = 5, pixel_shuffle: int = 1,
                 norm: str = "instance", first_norm: str | None = None):
        """pixel_shuffle f > 1: the layers run at 1/f of the picture's size on its f x f pixel blocks folded
        into channels (space to depth), and the last layer paints f x f pixels per position (depth to space):
        about 1/f^2 of the work, with every output pixel still painted by the network, not interpolated.
        norm: "instance" (each picture's own statistics) or "fixed" (FixedNorm: statistics frozen after training).
        first_norm: another norm for the first layer only (default: norm). An instance norm there, after a
        convolution of the photo itself, evens out the photo's contrast and detail, and no spike the network
        paints can steer it: its input is the photo's, not the network's."""
        super().__init__()
        c1, c2, c3 = widths
        self.pixel_shuffle = pixel_shuffle
        self.SIZE_MULTIPLE = TransformerNet.SIZE_MULTIPLE * pixel_shuffle
        self.MIN_SIZE = TransformerNet.MIN_SIZE * pixel_shuffle
        colours = 3 * pixel_shuffle ** 2
        n = NORMS[norm]
        self.down = nn.Sequential(ConvNormReLU(colours, c1, 9, norm=NORMS[first_norm or norm]),
                                  ConvNormReLU(c1, c2, 3, 2, norm=n), ConvNormReLU(c2, c3, 3, 2, norm=n))
        self.res = nn.Sequential(*[ResidualBlock(c3, n) for _ in range(blocks)])
        self.up = nn.Sequential(UpsampleConvNormReLU(c3, c2, n), UpsampleConvNormReLU(c2, c1, n))
        self.out = ConvLayer(c1, colours, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if torch.jit.is_tracing():  # exporting a graph: the padding must follow the input's size at run time
            x = pad_reflect_traceable(x, self.SIZE_MULTIPLE)
        else:
            x = pad_bottom_right(x, self.SIZE_MULTIPLE, self.MIN_SIZE)
        if self.pixel_shuffle > 1:
            x = F.pixel_unshuffle(x, self.pixel_shuffle)
        y = self.out(self.up(self.res(self.down(x))))
        if self.pixel_shuffle > 1:
            y = F.pixel_shuffle(y, self.pixel_shuffle)
        y = (torch.tanh(y) + 1) / 2
        return y[..., :h, :w]



def build_network(architecture: str = DEFAULT_ARCHITECTURE) -> TransformerNet:
    """A fresh network of a named architecture (KeyError for a name not in ARCHITECTURES)."""
    return TransformerNet(**ARCHITECTURES[architecture])


def pad_bottom_right(x: torch.Tensor, multiple: int, min_size: int) -> torch.Tensor:
    """Pad bottom/right so H and W are multiples of `multiple` and at least `min_size`; by reflection where
    the image is large enough (reflection needs pad < size), by replication for slivers of a few pixels."""
    h, w = x.shape[-2:]
    th, tw = max(-(-h // multiple) * multiple, min_size), max(-(-w // multiple) * multiple, min_size)
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def pad_reflect_traceable(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflection-pad bottom/right to a multiple, with no Python branch on the size: traced into an exported
    graph (ONNX, OpenVINO, TorchScript), the pad amounts stay computed from the input's shape, so one graph
    takes any height and width (of at least 5 px; the Stylizer pads slivers before calling a graph)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (multiple - w % multiple) % multiple, 0, (multiple - h % multiple) % multiple),
                 mode="reflect")
