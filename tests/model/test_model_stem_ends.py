"""The ends of a stem: equal to vocal-remover's procedure wherever that is well conditioned, bounded and
close to the well-conditioned reference (n_fft zeros appended, trimmed back) over the last n_fft samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stemforge_testing import SR, TINY, music, scale_output_layer, snr_db, tiny_net, upstream_stems
from torch import nn

from stemforge.model import CascadedNet, Separator


class NoiseMaskNet(nn.Module):
    """A stand-in whose mask is a hash of each input element and its bin: uniform over [0, 1),
    different in every frame, so the last frame's mask is as far from its neighbours' as it can be."""

    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.offset = 64
        self.n_fft = n_fft
        self.output_bin = n_fft // 2 + 1

    def predict_mask(self, x: torch.Tensor) -> torch.Tensor:
        bins = torch.arange(x.shape[2], dtype=torch.float64)[:, None]
        frames = torch.arange(x.shape[3], dtype=torch.float64)
        seed = x.double() * 7919.0 + bins * 0.37 + frames * 0.011 + 1.0
        return torch.remainder(torch.sin(seed) * 43758.5453, 1.0).float()[..., self.offset : -self.offset]


class OnesNet(NoiseMaskNet):
    def predict_mask(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)[..., self.offset : -self.offset]


def check_ends(sep: Separator, net: nn.Module, wave: np.ndarray, n_fft: int, hop: int,
               tail_snr: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The three promises; returns vocal-remover's stems (unfixed) for the caller to inspect."""
    spec, *upstream = upstream_stems(net, wave, n_fft, hop, sep.cropsize)
    assert sep.predict_mask(spec).std() > 0.15  # masks spread over (0, 1): a wrong frame cannot hide
    _, *conditioned = upstream_stems(net, wave, n_fft, hop, sep.cropsize, pad_end=n_fft)
    got = sep.separate_audio(wave, hop)
    input_peak = np.abs(wave[:, -2 * n_fft:]).max()
    for stem, ref, well in zip(got, upstream, conditioned):
        assert stem.shape == wave.shape and stem.dtype == np.float32
        assert snr_db(stem[:, :-n_fft], ref[:, :-n_fft]) >= 100
        assert np.abs(stem[:, -n_fft:]).max() <= 1.5 * input_peak
        if tail_snr is not None:
            assert snr_db(stem[:, -n_fft:], well[:, -n_fft:]) >= tail_snr
    return upstream[0], upstream[1]


@pytest.mark.parametrize("extra", [0, 1, TINY["hop_length"] // 2, TINY["hop_length"] - 1])
def test_random_masks_leave_the_head_exact_and_the_tail_bounded(extra):
    n_fft, hop = TINY["n_fft"], TINY["hop_length"]
    wave = music(40 * hop + extra, seed=extra, fade=False)
    net = NoiseMaskNet(n_fft)
    upstream = check_ends(Separator(net, batch_size=3, device="cpu"), net, wave, n_fft, hop, tail_snr=None)
    if extra == hop - 1:  # the reference itself is ill conditioned here: what the fix is for
        assert max(np.abs(s[:, -n_fft:]).max() for s in upstream) > 10 * np.abs(wave).max()


@pytest.mark.parametrize("length", [20 * 256, 20 * 256 + 255, 3 * 256 + 7])
def test_unmasked_round_trip_is_exact(length):
    wave = music(length, seed=length)
    first, second = Separator(OnesNet(TINY["n_fft"]), device="cpu").separate_audio(wave, TINY["hop_length"])
    np.testing.assert_allclose(first, wave, rtol=0, atol=2e-7)
    np.testing.assert_array_equal(second, 0)


@pytest.mark.parametrize("extra", [0, 255, 100])
def test_tiny_cascadednet_ends_match_the_well_conditioned_reference(extra):
    n_fft, hop = TINY["n_fft"], TINY["hop_length"]
    net = scale_output_layer(tiny_net(5), 40.0).eval()
    wave = music(350 * hop + extra, seed=extra)
    check_ends(Separator(net, batch_size=4, device="cpu"), net, wave, n_fft, hop, tail_snr=30)


@pytest.mark.parametrize("extra", [0, 1023])
def test_full_size_ends_match_the_well_conditioned_reference(extra):
    """n_fft 2048 / hop 1024 as separate.yaml (channels cut to 8/32 so it runs in a few seconds)."""
    torch.manual_seed(0)
    net = scale_output_layer(CascadedNet(2048, 8, 32), 300.0).eval()
    wave = music(8 * SR - (8 * SR) % 1024 + extra, seed=7)
    upstream = check_ends(Separator(net, batch_size=4, device="cpu"), net, wave, 2048, 1024, tail_snr=30)
    if extra:
        assert max(np.abs(s[:, -2048:]).max() for s in upstream) > 1.5 * np.abs(wave[:, -4096:]).max()
