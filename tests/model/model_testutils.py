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
