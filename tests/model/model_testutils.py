"""Helpers shared by the model/ tests (a uniquely named module: other test folders have conftests too)."""

from __future__ import annotations

import torch
from torch import nn


def randomise_batchnorm(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, as a trained net has.

    A freshly built net has mean 0 / var 1 / weight 1 / bias 0, which would
    hide mistakes in BatchNorm folding.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = module.num_features
                module.running_mean.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
    return net


def spread_mask(net: nn.Module, x: torch.Tensor, target_std: float = 4.0) -> nn.Module:
    """Set ``net.out`` (no bias) so the eval mask on ``x`` spreads over (0, 1) instead of crowding at one value.

    A random net's output layer sees only post-ReLU (positive) features that
    vary little between positions, so its logits share one sign and sigmoid
    masks crowd together, where a wrong split, crop or branch hides. Each
    output channel gets one of the features' two principal directions, shifted
    along the features' mean so the logits on ``x`` have zero mean, scaled to
    ``target_std``. The features' small spread amplifies float32 rounding in
    the logits by roughly ``target_std`` over their raw spread.
    """
    captured: list[torch.Tensor] = []
    handle = net.out.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    with torch.no_grad():
        net.eval()(x)
    handle.remove()
    feats = captured[0].double().transpose(0, 1).reshape(captured[0].shape[1], -1)  # [C, positions]
    mean = feats.mean(dim=1)
    directions = torch.linalg.svd(feats - mean[:, None], full_matrices=False)[0][:, :2].T  # [2, C]
    weight = directions - (directions @ feats).mean(dim=1, keepdim=True) / (mean @ mean) * mean
    weight = weight * (target_std / (weight @ feats).std(dim=1, keepdim=True))
    with torch.no_grad():
        net.out.weight.copy_(weight[:, :, None, None].to(net.out.weight.dtype))
    return net
