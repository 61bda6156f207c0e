"""Building blocks of CascadedNet (vocal-remover's ``layers_new``).

Module names and attribute names are part of the checkpoint format: every
``nn.Module`` attribute below becomes a state-dict key prefix, so they must
stay exactly as upstream names them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

IntOrPair = int | tuple[int, int]


def crop_center(skip: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Crop ``skip`` along time (last axis) to ``target``'s width, centred.

    Only the time axis is cropped; a skip narrower than the target means the
    input width was not a multiple of the encoder stride, which is an error.
    """
    skip_width = skip.shape[-1]
    width = target.shape[-1]
    if skip_width == width:
        return skip
    if skip_width < width:
        raise ValueError(
            f"skip connection is narrower than the decoder input ({skip_width} < {width} frames); "
            "the window width must be a multiple of 16"
        )
    start = (skip_width - width) // 2
    return skip[..., start : start + width]


class Conv2DBNActiv(nn.Module):
    """Convolution (no bias) → BatchNorm2d → activation, kept in one ``conv`` Sequential."""

    def __init__(
        self,
        nin: int,
        nout: int,
        ksize: IntOrPair = 3,
        stride: IntOrPair = 1,
        pad: IntOrPair = 1,
        dilation: IntOrPair = 1,
        activ: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(
                nin,
                nout,
                kernel_size=ksize,
                stride=stride,
                padding=pad,
                dilation=dilation,
                bias=False,
            ),
            nn.BatchNorm2d(nout),
            activ(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Encoder(nn.Module):
    """Two Conv2DBNActiv blocks; the first carries the stride (down-sampling)."""

    def __init__(
        self,
        nin: int,
        nout: int,
        ksize: IntOrPair = 3,
        stride: IntOrPair = 1,
        pad: IntOrPair = 1,
        activ: type[nn.Module] = nn.LeakyReLU,
    ) -> None:
        super().__init__()
        self.conv1 = Conv2DBNActiv(nin, nout, ksize, stride, pad, activ=activ)
        self.conv2 = Conv2DBNActiv(nout, nout, ksize, 1, pad, activ=activ)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class Decoder(nn.Module):
    """Bilinear ×2 up-sampling, concatenation with the (time-cropped) skip, one conv block."""

    def __init__(
        self,
        nin: int,
        nout: int,
        ksize: IntOrPair = 3,
        stride: IntOrPair = 1,
        pad: IntOrPair = 1,
        activ: type[nn.Module] = nn.ReLU,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        # Upstream accepts ``stride`` but always convolves with stride 1.
        self.conv1 = Conv2DBNActiv(nin, nout, ksize, 1, pad, activ=activ)
        self.dropout = nn.Dropout2d(0.1) if dropout else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        if skip is not None:
            x = torch.cat([x, crop_center(skip, x)], dim=1)
        h = self.conv1(x)
        if self.dropout is not None:
            h = self.dropout(h)
        return h


class ASPPModule(nn.Module):
    """Atrous spatial pyramid pooling: frequency-pooled branch, 1×1 branch, three dilated 3×3 branches."""

    def __init__(
        self,
        nin: int,
        nout: int,
        dilations: Sequence[IntOrPair] = (4, 8, 12),
        activ: type[nn.Module] = nn.ReLU,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, None)),
            Conv2DBNActiv(nin, nout, 1, 1, 0, activ=activ),
        )
        self.conv2 = Conv2DBNActiv(nin, nout, 1, 1, 0, activ=activ)
        # Each dilated branch pads by its dilation so the output keeps the input's size.
        self.conv3 = Conv2DBNActiv(nin, nout, 3, 1, dilations[0], dilations[0], activ=activ)
        self.conv4 = Conv2DBNActiv(nin, nout, 3, 1, dilations[1], dilations[1], activ=activ)
        self.conv5 = Conv2DBNActiv(nin, nout, 3, 1, dilations[2], dilations[2], activ=activ)
        self.bottleneck = Conv2DBNActiv(nout * 5, nout, 1, 1, 0, activ=activ)
        self.dropout = nn.Dropout2d(0.1) if dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        pooled = F.interpolate(
            self.conv1(x), size=(height, width), mode="bilinear", align_corners=True
        )
        out = torch.cat(
            (pooled, self.conv2(x), self.conv3(x), self.conv4(x), self.conv5(x)), dim=1
        )
        out = self.bottleneck(out)
        if self.dropout is not None:
            out = self.dropout(out)
        return out


class LSTMModule(nn.Module):
    """1×1 conv to one channel, a bidirectional LSTM over time, Linear/BN/ReLU back to the bins.

    Returns one extra feature channel ``[N, 1, bins, frames]`` that BaseNet
    concatenates onto the decoder features.
    """

    def __init__(self, nin_conv: int, nin_lstm: int, nout_lstm: int) -> None:
        super().__init__()
        self.conv = Conv2DBNActiv(nin_conv, 1, 1, 1, 0)
        self.lstm = nn.LSTM(input_size=nin_lstm, hidden_size=nout_lstm // 2, bidirectional=True)
        self.dense = nn.Sequential(
            nn.Linear(nout_lstm, nin_lstm),
            nn.BatchNorm1d(nin_lstm),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, nbins, nframes = x.shape
        h = self.conv(x)[:, 0]  # [N, bins, frames]
        h = h.permute(2, 0, 1)  # [frames, N, bins]: the LSTM runs over time
        h, _ = self.lstm(h)
        h = self.dense(h.reshape(-1, h.shape[-1]))  # [frames * N, bins]
        h = h.reshape(nframes, batch, 1, nbins).permute(1, 2, 3, 0)
        # Return the input's memory format: BaseNet concatenates this channel
        # onto its decoder features, and one NCHW operand would turn a
        # channels_last network's largest tensors back into NCHW (a full copy).
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        return h.contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )
