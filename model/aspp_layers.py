"""Building blocks of UVR's CascadedASPPNet (the ``layers_123812KB`` family of seed 002).

As in model/layers.py, attribute names are the checkpoint format: each
``nn.Module`` attribute is a state-dict key prefix, spelled as UVR spells it
(``SeperableConv2DBNActiv`` keeps its depthwise, pointwise and BatchNorm in
one ``conv`` Sequential, so their keys are ``conv.0``, ``conv.1``, ``conv.2``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stemforge.model.layers import Conv2DBNActiv, crop_center


class SeparableConv2DBNActiv(nn.Module):
    """Depthwise (dilated) conv → pointwise 1×1 conv → BatchNorm2d → activation, in one ``conv`` Sequential.

    ``fold_batchnorm`` folds the BatchNorm into the pointwise conv, its
    neighbour in the Sequential.
    """

    def __init__(
        self,
        nin: int,
        nout: int,
        ksize: int = 3,
        stride: int = 1,
        pad: int = 1,
        dilation: int = 1,
        activ: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(nin, nin, ksize, stride, pad, dilation, groups=nin, bias=False),
            nn.Conv2d(nin, nout, kernel_size=1, bias=False),
            nn.BatchNorm2d(nout),
            activ(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SkipEncoder(nn.Module):
    """UVR's ASPP-family ``Encoder``: a 3×3 block, then a strided 3×3 block; returns ``(down, skip)``.

    Unlike CascadedNet's encoder the stride is on the second block, and the
    first block's output is kept as the decoder's skip connection.
    """

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.conv1 = Conv2DBNActiv(nin, nout, 3, 1, 1, activ=nn.LeakyReLU)
        self.conv2 = Conv2DBNActiv(nout, nout, 3, 2, 1, activ=nn.LeakyReLU)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.conv1(x)
        return self.conv2(skip), skip


class SkipDecoder(nn.Module):
    """Bilinear ×2 up-sampling, concatenation with the time-cropped skip, one 3×3 ReLU block (``conv``)."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.conv = Conv2DBNActiv(nin, nout, 3, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.conv(torch.cat([x, crop_center(skip, x)], dim=1))


class SeparableASPPModule(nn.Module):
    """ASPP with separable dilated branches: pooled, 1×1, three dilated branches, and 0, 1 or 2 more.

    ``branches`` is 5, 6 or 7. The extra branches repeat the widest dilation.
    With 7 branches, ``conv6`` and ``conv7`` are one module registered under
    both names, as in audio-separator (0.47.1) and current UVR: the state dict
    holds both key sets, ``load_state_dict`` fills conv6 and then conv7 into
    the same tensors, so after loading both branches use the checkpoint's
    ``conv7`` weights. Older UVR (``layers_537238KB``/``layers_33966KB``) had
    two independent modules; this follows audio-separator. Because the two
    branches are then identical, ``forward`` computes that branch once.
    """

    def __init__(self, nin: int, nout: int, dilations: Sequence[int] = (4, 8, 16), branches: int = 5) -> None:
        super().__init__()
        if branches not in (5, 6, 7):
            raise ValueError(f"an ASPP module has 5, 6 or 7 branches, got {branches}")
        self.conv1 = nn.Sequential(nn.AdaptiveAvgPool2d((1, None)), Conv2DBNActiv(nin, nin, 1, 1, 0))
        self.conv2 = Conv2DBNActiv(nin, nin, 1, 1, 0)
        self.conv3 = SeparableConv2DBNActiv(nin, nin, 3, 1, dilations[0], dilations[0])
        self.conv4 = SeparableConv2DBNActiv(nin, nin, 3, 1, dilations[1], dilations[1])
        self.conv5 = SeparableConv2DBNActiv(nin, nin, 3, 1, dilations[2], dilations[2])
        if branches >= 6:
            self.conv6 = SeparableConv2DBNActiv(nin, nin, 3, 1, dilations[2], dilations[2])
        if branches == 7:
            self.conv7 = self.conv6
        self.branches = branches
        self.bottleneck = nn.Sequential(Conv2DBNActiv(nin * branches, nout, 1, 1, 0), nn.Dropout2d(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        pooled = F.interpolate(self.conv1(x), size=(height, width), mode="bilinear", align_corners=True)
        feats = [pooled, self.conv2(x), self.conv3(x), self.conv4(x), self.conv5(x)]
        if self.branches >= 6:
            feats.append(self.conv6(x))
        if self.branches == 7:
            feats.append(feats[-1])
        return self.bottleneck(torch.cat(feats, dim=1))


class BaseASPPNet(nn.Module):
    """U-Net of four (five when ``deep``) skip encoders, a separable ASPP and matching decoders.

    ``deep`` adds ``enc5``/``dec5`` (UVR's 129605 KB class) and doubles the
    ASPP width. Frequency is never cropped, so the input's bins and frames
    must both be multiples of 2**depth.
    """

    def __init__(
        self,
        nin: int,
        ch: int,
        dilations: Sequence[int] = (4, 8, 16),
        branches: int = 5,
        deep: bool = False,
    ) -> None:
        super().__init__()
        self.enc1 = SkipEncoder(nin, ch)
        self.enc2 = SkipEncoder(ch, ch * 2)
        self.enc3 = SkipEncoder(ch * 2, ch * 4)
        self.enc4 = SkipEncoder(ch * 4, ch * 8)
        if deep:
            self.enc5 = SkipEncoder(ch * 8, ch * 16)
            self.aspp = SeparableASPPModule(ch * 16, ch * 32, dilations, branches)
            self.dec5 = SkipDecoder(ch * (16 + 32), ch * 16)
        else:
            self.aspp = SeparableASPPModule(ch * 8, ch * 16, dilations, branches)
        self.dec4 = SkipDecoder(ch * (8 + 16), ch * 8)
        self.dec3 = SkipDecoder(ch * (4 + 8), ch * 4)
        self.dec2 = SkipDecoder(ch * (2 + 4), ch * 2)
        self.dec1 = SkipDecoder(ch * (1 + 2), ch)
        self.deep = deep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, e1 = self.enc1(x)
        h, e2 = self.enc2(h)
        h, e3 = self.enc3(h)
        h, e4 = self.enc4(h)
        if self.deep:
            h, e5 = self.enc5(h)
            h = self.dec5(self.aspp(h), e5)
        else:
            h = self.aspp(h)
        h = self.dec4(h, e4)
        h = self.dec3(h, e3)
        h = self.dec2(h, e2)
        return self.dec1(h, e1)
