"""CascadedNet (vocal-remover's ``nets_new``): a three-stage band-split U-Net that predicts a mask.

The module tree mirrors upstream exactly so vocal-remover checkpoints load
with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stemforge.model import layers


class BaseNet(nn.Module):
    """Encoder/ASPP/decoder U-Net with an LSTM feature channel before the last decoder."""

    def __init__(
        self,
        nin: int,
        nout: int,
        nin_lstm: int,
        nout_lstm: int,
        dilations: tuple[tuple[int, int], ...] = ((4, 2), (8, 4), (12, 6)),
    ) -> None:
        super().__init__()
        self.enc1 = layers.Conv2DBNActiv(nin, nout, 3, 1, 1)
        self.enc2 = layers.Encoder(nout, nout * 2, 3, 2, 1)
        self.enc3 = layers.Encoder(nout * 2, nout * 4, 3, 2, 1)
        self.enc4 = layers.Encoder(nout * 4, nout * 6, 3, 2, 1)
        self.enc5 = layers.Encoder(nout * 6, nout * 8, 3, 2, 1)

        self.aspp = layers.ASPPModule(nout * 8, nout * 8, dilations, dropout=True)

        self.dec4 = layers.Decoder(nout * (6 + 8), nout * 6, 3, 1, 1)
        self.dec3 = layers.Decoder(nout * (4 + 6), nout * 4, 3, 1, 1)
        self.dec2 = layers.Decoder(nout * (2 + 4), nout * 2, 3, 1, 1)
        self.lstm_dec2 = layers.LSTMModule(nout * 2, nin_lstm, nout_lstm)
        self.dec1 = layers.Decoder(nout * (1 + 2) + 1, nout * 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        e5 = self.enc5(e4)

        h = self.aspp(e5)

        h = self.dec4(h, e4)
        h = self.dec3(h, e3)
        h = self.dec2(h, e2)
        h = torch.cat([h, self.lstm_dec2(h)], dim=1)
        return self.dec1(h, e1)


class CascadedNet(nn.Module):
    """Low/high band stage 1 and 2, full-band stage 3; outputs a sigmoid mask over ``n_fft//2+1`` bins.

    Input is a magnitude batch ``[N, 2, n_fft//2+1, frames]`` with ``frames`` a
    multiple of 16. In training mode ``forward`` returns ``(mask, aux)``; in
    eval mode only ``mask``. ``offset`` frames on each side of a window are
    context that ``predict_mask`` discards.
    """

    def __init__(self, n_fft: int, nout: int = 32, nout_lstm: int = 128) -> None:
        super().__init__()
        if n_fft <= 0 or n_fft % 64:
            raise ValueError(
                f"n_fft must be a positive multiple of 64 (both bands must halve 4 times), got {n_fft}"
            )
        self.max_bin = n_fft // 2
        self.output_bin = n_fft // 2 + 1
        self.nin_lstm = self.max_bin // 2
        self.offset = 64

        self.stg1_low_band_net = nn.Sequential(
            BaseNet(2, nout // 2, self.nin_lstm // 2, nout_lstm),
            layers.Conv2DBNActiv(nout // 2, nout // 4, 1, 1, 0),
        )
        self.stg1_high_band_net = BaseNet(2, nout // 4, self.nin_lstm // 2, nout_lstm // 2)

        self.stg2_low_band_net = nn.Sequential(
            BaseNet(nout // 4 + 2, nout, self.nin_lstm // 2, nout_lstm),
            layers.Conv2DBNActiv(nout, nout // 2, 1, 1, 0),
        )
        self.stg2_high_band_net = BaseNet(
            nout // 4 + 2, nout // 2, self.nin_lstm // 2, nout_lstm // 2
        )

        self.stg3_full_band_net = BaseNet(3 * nout // 4 + 2, nout, self.nin_lstm, nout_lstm)

        self.out = nn.Conv2d(nout, 2, 1, bias=False)
        self.aux_out = nn.Conv2d(3 * nout // 4, 2, 1, bias=False)

    @property
    def n_fft(self) -> int:
        """FFT size the network was built for."""
        return self.max_bin * 2

    def _pad_bins(self, mask: torch.Tensor) -> torch.Tensor:
        """Replicate the top bin so the mask covers all ``output_bin`` bins (the net drops Nyquist)."""
        return F.pad(mask, (0, 0, 0, self.output_bin - mask.shape[2]), mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = x[:, :, : self.max_bin]

        bandw = x.shape[2] // 2
        l1_in = x[:, :, :bandw]
        h1_in = x[:, :, bandw:]
        l1 = self.stg1_low_band_net(l1_in)
        h1 = self.stg1_high_band_net(h1_in)
        aux1 = torch.cat([l1, h1], dim=2)

        l2_in = torch.cat([l1_in, l1], dim=1)
        h2_in = torch.cat([h1_in, h1], dim=1)
        l2 = self.stg2_low_band_net(l2_in)
        h2 = self.stg2_high_band_net(h2_in)
        aux2 = torch.cat([l2, h2], dim=2)

        f3_in = torch.cat([x, aux1, aux2], dim=1)
        f3 = self.stg3_full_band_net(f3_in)

        mask = self._pad_bins(torch.sigmoid(self.out(f3)))
        if self.training:
            aux = torch.cat([aux1, aux2], dim=1)
            aux = self._pad_bins(torch.sigmoid(self.aux_out(aux)))
            return mask, aux
        return mask

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward(x)
        return out[0] if isinstance(out, tuple) else out

    def _crop_offset(self, y: torch.Tensor) -> torch.Tensor:
        if self.offset == 0:
            return y
        width = y.shape[3]
        if width <= 2 * self.offset:
            raise ValueError(
                f"window of {width} frames leaves nothing after cropping offset={self.offset} on each side"
            )
        return y[:, :, :, self.offset : -self.offset]

    def predict_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Mask for the window's centre: ``forward`` with ``offset`` frames cropped on each side."""
        return self._crop_offset(self._mask(x))

    def predict(self, x: torch.Tensor, aggressiveness: dict | None = None) -> torch.Tensor:
        """Masked magnitude ``x * mask`` for the window's centre.

        ``aggressiveness`` is accepted for signature compatibility with
        vocal-remover's callers; like upstream's ``nets_new``, it has no effect.
        """
        return self._crop_offset(x * self._mask(x))
