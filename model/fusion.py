"""Inference-time BatchNorm folding.

In eval mode BatchNorm is a fixed per-channel affine map, so it can be folded
into the convolution or linear layer in front of it. That removes one full
read and write of every activation tensor per block (CascadedNet has ~110
BatchNorms) without changing the function beyond float rounding.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def _bn_scale_shift(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)`` with ``bn(y) == y * scale + shift`` in eval mode, in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm that does not track running statistics")
    mean = bn.running_mean.double()
    var = bn.running_var.double()
    weight = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
    bias = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
    scale = weight / torch.sqrt(var + bn.eps)
    return scale, bias - mean * scale


@torch.no_grad()
def _fold_into(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """Rewrite ``layer``'s weight and bias so that ``layer`` alone computes ``bn(layer(x))``."""
    scale, shift = _bn_scale_shift(bn)
    weight = layer.weight.double()
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(shift)
    view = (-1,) + (1,) * (weight.dim() - 1)
    folded_weight = weight * scale.reshape(view)
    folded_bias = bias * scale + shift
    dtype = layer.weight.dtype
    layer.weight.copy_(folded_weight.to(dtype))
    if layer.bias is None:
        layer.bias = nn.Parameter(folded_bias.to(dtype=dtype, device=layer.weight.device))
    else:
        layer.bias.copy_(folded_bias.to(dtype))


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every ``Conv2d → BatchNorm2d`` and ``Linear → BatchNorm1d`` pair inside Sequentials.

    The BatchNorm is replaced by ``nn.Identity``, in place. Only for inference:
    the folded module no longer trains like the original. Returns the number of
    folds made.
    """
    folds = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        children = list(seq.named_children())
        for (_, layer), (bn_name, bn) in itertools.pairwise(children):
            pair_2d = isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
            pair_1d = isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d)
            if pair_2d or pair_1d:
                _fold_into(layer, bn)
                setattr(seq, bn_name, nn.Identity())
                folds += 1
    return folds
