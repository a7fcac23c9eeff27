"""A fixed-norm network (nst_video.model.FixedNorm) from an instance-norm one: the statistics each instance
norm computed per picture, averaged over training photos, become its fixed statistics. The network then
paints about as before on an average photo and starts its fine-tune close to the style it came from, while
it sees a photo's brightness and no spot steers a whole channel (docs/training.md, "Udnie's blobs")."""
from __future__ import annotations

from typing import Iterable

import torch

from nst_video.model import FixedNorm, InstanceNorm, build_network


def needs_statistics(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> bool:
    """Whether `weights` (an instance-norm style) lack the fixed statistics `model`'s norms need."""
    names = [name for name, m in model.named_modules() if isinstance(m, FixedNorm)]
    return bool(names) and f"{names[0]}.mean" not in weights


@torch.no_grad()
def norm_input_statistics(net: torch.nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, tuple[torch.Tensor,
                                                                                                     torch.Tensor]]:
    """Per norm layer of `net` (instance or fixed): the mean over `batches`' pictures of the per-picture,
    per-channel mean and variance of its input. Batches may differ in picture size."""
    norms = {name: m for name, m in net.named_modules() if isinstance(m, (InstanceNorm, FixedNorm))}
    sums: dict[str, list] = {name: [0.0, 0.0, 0] for name in norms}

    def record(name: str):
        def hook(_module, inputs, _output):
            x = inputs[0].float()
            sums[name][0] += x.mean((2, 3)).sum(0)
            sums[name][1] += x.var((2, 3), unbiased=False).sum(0)
            sums[name][2] += x.shape[0]
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in norms.items()]
    try:
        for batch in batches:
            net(batch.float())
    finally:
        for handle in handles:
            handle.remove()
    return {name: (mean_sum / count, var_sum / count) for name, (mean_sum, var_sum, count) in sums.items()}


def with_frozen_statistics(architecture: str, weights: dict[str, torch.Tensor],
                           batches: Iterable[torch.Tensor], into: torch.nn.Module) -> dict[str, torch.Tensor]:
    """`weights` of an `architecture` network with instance norms, plus "<norm>.mean" and "<norm>.var" for each
    norm that is a FixedNorm in `into` (the network the weights are for): the statistics it normalised with,
    averaged over `batches`' photos (norm_input_statistics). Photos at the training crop size, so the statistics
    are those the fine-tune will see."""
    source = build_network(architecture)
    source.load_state_dict(weights)
    source.eval()
    fixed = {name for name, m in into.named_modules() if isinstance(m, FixedNorm)}
    frozen = dict(weights)
    for name, (mean, var) in norm_input_statistics(source, batches).items():
        if name in fixed:
            frozen[f"{name}.mean"], frozen[f"{name}.var"] = mean, var
    return frozen
