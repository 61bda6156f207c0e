"""Which network a state dict belongs to, read from its keys and tensor shapes.

UVR picks a network from the file size; this reads the weights themselves, so
a renamed, re-saved or safetensors copy is recognised the same way. Two
families exist:

- ``CascadedNet`` (vocal-remover, UVR's "VR 5.1"): ``nout`` from
  ``out.weight``, ``nout_lstm`` from the full-band LSTM's dense layer, and the
  ``n_fft`` its LSTMs tie it to from stage 1's LSTM input size
  (``n_fft // 8``).
- ``CascadedASPPNet`` (UVR's HP/SP models): the capacity class from stage 1's
  width, its ASPP branch count and whether ``enc5`` exists. Its weights fit
  any ``n_fft``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from stemforge.model.aspp import ASPP_CAPACITIES, AsppCapacity, CascadedASPPNet
from stemforge.model.nets import CascadedNet

OUT_KEY = "out.weight"
LSTM_INPUT_KEY = "stg1_low_band_net.0.lstm_dec2.lstm.weight_ih_l0"
LSTM_DENSE_KEY = "stg3_full_band_net.lstm_dec2.dense.0.weight"
ASPP_ENC1_KEY = "stg1_low_band_net.enc1.conv1.conv.0.weight"
_ASPP_PREFIX = "stg1_low_band_net.aspp.conv"
_ASPP_ENC5_PREFIX = "stg1_low_band_net.enc5."

Family = Literal["cascaded", "aspp"]


@dataclass(frozen=True)
class NetSpec:
    """A detected network: its family and everything needed to build it.

    ``nout``, ``nout_lstm`` and ``n_fft`` are set for CascadedNet (``n_fft`` is
    the one its LSTM sizes imply); ``nn_arch`` (UVR's capacity number) for
    CascadedASPPNet.
    """

    family: Family
    nout: int | None = None
    nout_lstm: int | None = None
    n_fft: int | None = None
    nn_arch: int | None = None

    def fit_n_fft(self, n_fft: int | None) -> int:
        """The n_fft to build with: ``n_fft``, or the checkpoint's own when None; ValueError if they clash."""
        if self.family == "cascaded":
            if n_fft is not None and n_fft != self.n_fft:
                raise ValueError(
                    f"tensor {LSTM_INPUT_KEY!r} ties it to n_fft={self.n_fft} ({self.n_fft // 2} bins)"
                )
            return self.n_fft
        if n_fft is None:
            raise ValueError("its weights fit any n_fft, so n_fft (2 * the band table's bins) must be given")
        return n_fft

    def describe(self, n_fft: int | None = None) -> str:
        """``CascadedNet(n_fft=…, nout=…, nout_lstm=…)`` or ``CascadedASPPNet(n_fft=…, nn_arch=…)``, for messages."""
        shown = self.n_fft if n_fft is None else n_fft
        if self.family == "cascaded":
            return f"CascadedNet(n_fft={shown}, nout={self.nout}, nout_lstm={self.nout_lstm})"
        return f"CascadedASPPNet(n_fft={shown}, nn_arch={self.nn_arch})"

    def build(self, n_fft: int | None = None) -> nn.Module:
        """A freshly initialised network of this spec (call under ``torch.device('meta')`` to skip init)."""
        n_fft = self.fit_n_fft(n_fft)
        if self.family == "cascaded":
            return CascadedNet(n_fft, nout=self.nout, nout_lstm=self.nout_lstm)
        return CascadedASPPNet(n_fft, self.nn_arch)


def _tensor(state: Mapping[str, torch.Tensor], key: str, dims: int, family: str) -> torch.Tensor:
    tensor = state.get(key)
    if tensor is None or tensor.dim() != dims:
        raise ValueError(f"{family} state dict without a {dims}-D tensor {key!r}")
    return tensor


def _cascaded_spec(state: Mapping[str, torch.Tensor]) -> NetSpec:
    out = _tensor(state, OUT_KEY, 4, "CascadedNet")
    dense = _tensor(state, LSTM_DENSE_KEY, 2, "CascadedNet")
    lstm_input = _tensor(state, LSTM_INPUT_KEY, 2, "CascadedNet")
    return NetSpec("cascaded", nout=int(out.shape[1]), nout_lstm=int(dense.shape[1]), n_fft=8 * int(lstm_input.shape[1]))


def _aspp_spec(state: Mapping[str, torch.Tensor]) -> NetSpec:
    ch = int(_tensor(state, ASPP_ENC1_KEY, 4, "CascadedASPPNet").shape[0])
    branches = len({k[len(_ASPP_PREFIX) :].split(".", 1)[0] for k in state if k.startswith(_ASPP_PREFIX)})
    deep = any(k.startswith(_ASPP_ENC5_PREFIX) for k in state)
    found = AsppCapacity(ch, branches, deep)
    for nn_arch, capacity in ASPP_CAPACITIES.items():
        if capacity == found:
            return NetSpec("aspp", nn_arch=nn_arch)
    known = ", ".join(f"{a} (ch {c.ch}, {c.branches} branches{', enc5' if c.deep else ''})" for a, c in ASPP_CAPACITIES.items())
    raise ValueError(
        f"CascadedASPPNet layout with ch {ch}, {branches} ASPP branches{', enc5' if deep else ''} "
        f"matches no UVR capacity class (known: {known})"
    )


def detect_net(state: Mapping[str, torch.Tensor]) -> NetSpec:
    """The family and capacity of the network that produced ``state``; ValueError (one line) if none fits.

    Only keys and shapes are read. The result is a claim about the layout;
    loading still checks every tensor against the built network.
    """
    if OUT_KEY not in state or state[OUT_KEY].dim() != 4:
        raise ValueError(f"matches no known network family: no 4-D tensor {OUT_KEY!r} (every VR network has one)")
    cascaded = "aux_out.weight" in state or any(k.startswith("stg1_low_band_net.0.") for k in state)
    aspp = "aux1_out.weight" in state or any(k.startswith("stg2_bridge.") for k in state)
    if cascaded == aspp:
        raise ValueError(
            "matches no known network family: it has "
            f"{'both' if cascaded else 'neither'} CascadedNet's 'aux_out.weight'/'stg1_low_band_net.0.*' "
            f"{'and' if cascaded else 'nor'} CascadedASPPNet's 'aux1_out.weight'/'stg2_bridge.*'"
        )
    return _cascaded_spec(state) if cascaded else _aspp_spec(state)


def infer_config(state: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """``(nout, nout_lstm)`` of the CascadedNet that produced ``state``; ValueError for any other network."""
    spec = detect_net(state)
    if spec.family != "cascaded":
        raise ValueError(f"not a CascadedNet state dict: it is a {spec.describe()}")
    return spec.nout, spec.nout_lstm
