"""CascadedASPPNet: UVR's older VR network family (the HP/SP models, seed 002's ``layers_123812KB``).

One class covers every capacity UVR ships; the capacity is named by UVR's
``nn_architecture`` number (the checkpoint's approximate size in KiB) so
checkpoints load into it with ``load_state_dict(strict=True)``:

=========================  ====  ========  ====  ================================
nn_arch                    ch    branches  enc5  UVR models
=========================  ====  ========  ====  ================================
31191                      16    5         no    SP models
33966                      16    7         no    SP models
129605                     16    6         yes   —
123812, 123821             32    5         no    HP, HP-Vocal, HP-Karaoke
537238, 537227             64    7         no    HP2
=========================  ====  ========  ====  ================================

The weights do not depend on ``n_fft``: the net is fully convolutional, so
one checkpoint runs on any band table whose bins fit the encoders' strides.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stemforge.model.aspp_layers import BaseASPPNet
from stemforge.model.layers import Conv2DBNActiv


@dataclass(frozen=True)
class AsppCapacity:
    """One UVR capacity class: first-stage width ``ch``, ASPP branch count, and whether ``enc5`` exists."""

    ch: int
    branches: int
    deep: bool

    @property
    def depth(self) -> int:
        """Number of stride-2 encoders: frequency and time must be multiples of ``2**depth``."""
        return 5 if self.deep else 4


ASPP_CAPACITIES: dict[int, AsppCapacity] = {
    31191: AsppCapacity(16, 5, False),
    33966: AsppCapacity(16, 7, False),
    129605: AsppCapacity(16, 6, True),
    123812: AsppCapacity(32, 5, False),
    123821: AsppCapacity(32, 5, False),
    537238: AsppCapacity(64, 7, False),
    537227: AsppCapacity(64, 7, False),
}


class CascadedASPPNet(nn.Module):
    """Low/high band stage 1, bridged full-band stages 2 and 3; a sigmoid mask over ``n_fft//2+1`` bins.

    Input is a magnitude batch ``[N, 2, n_fft//2+1, frames]``: the top bin is
    dropped, the rest split in two halves for stage 1, and the mask's last row
    is replicated back. ``(n_fft//4)`` and ``frames`` must be multiples of
    ``frame_multiple`` (16, or 32 for 129605). In eval mode ``forward``
    returns the mask; in training mode ``(mask, aux1_mask, aux2_mask)``
    (UVR multiplies each by the input; masks are returned here, as
    CascadedNet does). ``offset`` frames on each side are context that
    ``predict_mask`` discards.
    """

    def __init__(self, n_fft: int, nn_arch: int = 123812) -> None:
        super().__init__()
        if nn_arch not in ASPP_CAPACITIES:
            raise ValueError(f"unknown CascadedASPPNet capacity {nn_arch}; known: {sorted(ASPP_CAPACITIES)}")
        capacity = ASPP_CAPACITIES[nn_arch]
        self.frame_multiple = 2**capacity.depth
        if n_fft <= 0 or n_fft % (4 * self.frame_multiple):
            raise ValueError(
                f"CascadedASPPNet({nn_arch}) needs n_fft a positive multiple of {4 * self.frame_multiple} "
                f"(each half of n_fft//2 bins must halve {capacity.depth} times), got n_fft={n_fft}"
            )
        self.nn_arch = nn_arch
        self.max_bin = n_fft // 2
        self.output_bin = n_fft // 2 + 1
        self.offset = 128

        ch, branches, deep = capacity.ch, capacity.branches, capacity.deep
        self.stg1_low_band_net = BaseASPPNet(2, ch, branches=branches, deep=deep)
        self.stg1_high_band_net = BaseASPPNet(2, ch, branches=branches, deep=deep)

        self.stg2_bridge = Conv2DBNActiv(ch + 2, ch // 2, 1, 1, 0)
        self.stg2_full_band_net = BaseASPPNet(ch // 2, ch, branches=branches, deep=deep)

        self.stg3_bridge = Conv2DBNActiv(2 * ch + 2, ch, 1, 1, 0)
        self.stg3_full_band_net = BaseASPPNet(ch, 2 * ch, branches=branches, deep=deep)

        self.out = nn.Conv2d(2 * ch, 2, 1, bias=False)
        self.aux1_out = nn.Conv2d(ch, 2, 1, bias=False)
        self.aux2_out = nn.Conv2d(ch, 2, 1, bias=False)

    @property
    def n_fft(self) -> int:
        """FFT size the network was built for (UVR's ``2 * bins``)."""
        return self.max_bin * 2

    def _pad_bins(self, mask: torch.Tensor) -> torch.Tensor:
        """Replicate the top row so the mask covers all ``output_bin`` bins (the net drops the last bin)."""
        return F.pad(mask, (0, 0, 0, self.output_bin - mask.shape[2]), mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.shape[3] % self.frame_multiple:
            raise ValueError(
                f"CascadedASPPNet({self.nn_arch}) needs a window width that is a multiple of "
                f"{self.frame_multiple}, got {x.shape[3]} frames"
            )
        x = x[:, :, : self.max_bin]
        bandw = x.shape[2] // 2
        aux1 = torch.cat(
            [self.stg1_low_band_net(x[:, :, :bandw]), self.stg1_high_band_net(x[:, :, bandw:])], dim=2
        )
        aux2 = self.stg2_full_band_net(self.stg2_bridge(torch.cat([x, aux1], dim=1)))
        h = self.stg3_full_band_net(self.stg3_bridge(torch.cat([x, aux1, aux2], dim=1)))

        mask = self._pad_bins(torch.sigmoid(self.out(h)))
        if self.training:
            aux1_mask = self._pad_bins(torch.sigmoid(self.aux1_out(aux1)))
            aux2_mask = self._pad_bins(torch.sigmoid(self.aux2_out(aux2)))
            return mask, aux1_mask, aux2_mask
        return mask

    def predict_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Mask for the window's centre: ``forward`` with ``offset`` frames cropped on each side."""
        width = x.shape[3]
        if width <= 2 * self.offset:
            raise ValueError(
                f"window of {width} frames leaves nothing after cropping offset={self.offset} on each side"
            )
        out = self.forward(x)
        mask = out[0] if isinstance(out, tuple) else out
        return mask[:, :, :, self.offset : -self.offset]
