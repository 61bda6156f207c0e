"""The last n_fft samples of a stem: vocal-remover's procedure against stemforge's, on a full-size net.

A 15 s stereo mix (partials and noise, peak 0.92, fading over its last half second) is separated by a
random-weight n_fft 2048 / hop 1024 CascadedNet whose output layer is scaled so its masks spread over
(0, 1). For several track ends (samples past the last hop boundary) it prints, over the last n_fft
samples: the input's peak over its last 2·n_fft samples, each procedure's stem peak, and the SNR of each
against the well-conditioned reference (the same procedure on the track with n_fft zeros appended,
trimmed back); and the SNR of stemforge against vocal-remover over everything before.

    .venv/bin/python benchmarks/stem_ends.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from stemforge.model import CascadedNet, Separator
from stemforge.transforms import istft, stft

SR, N_FFT, HOP = 44100, 2048, 1024


def snr(estimate: np.ndarray, reference: np.ndarray) -> float:
    noise = np.sum((estimate.astype(np.float64) - reference) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise))


def mix(n_samples: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(n_samples) / SR
    wave = sum(0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (110, 220, 330, 440, 660, 880, 1320))
    wave = wave + 0.05 * rng.standard_normal((2, n_samples))
    wave[:, -SR // 2:] *= np.linspace(1, 0.04, SR // 2)
    return (0.92 * wave / np.abs(wave).max()).astype(np.float32)


def upstream(sep: Separator, wave: np.ndarray) -> list[np.ndarray]:
    """vocal-remover: STFT, mask, ISTFT of the track as it is."""
    return [istft(s, HOP, length=wave.shape[1]) for s in sep.separate(stft(wave, N_FFT, HOP))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ends", type=int, nargs="+", default=[0, 300, 1000, 1023])
    parser.add_argument("--nout", type=int, nargs=2, default=[8, 32], help="nout and nout_lstm")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = CascadedNet(N_FFT, *args.nout).eval()
    with torch.no_grad():
        net.out.weight.mul_(300.0)
    sep = Separator(net, batch_size=4, device="cpu")
    print(f"{'end':>5s} {'input peak':>10s} {'upstream peak':>13s} {'stemforge peak':>14s} "
          f"{'upstream SNR':>12s} {'stemforge SNR':>13s} {'head SNR':>9s}   (last {N_FFT} samples, first stem)")
    for end in args.ends:
        length = 15 * SR - (15 * SR) % HOP + end
        wave = mix(length)
        well = upstream(sep, np.pad(wave, ((0, 0), (0, N_FFT))))[0][:, :length]
        ref = upstream(sep, wave)[0]
        ours = sep.separate_audio(wave, HOP)[0]
        tail = slice(length - N_FFT, length)
        print(f"{end:5d} {np.abs(wave[:, -2 * N_FFT:]).max():10.3f} {np.abs(ref[:, tail]).max():13.3f} "
              f"{np.abs(ours[:, tail]).max():14.3f} {snr(ref[:, tail], well[:, tail]):11.1f}  "
              f"{snr(ours[:, tail], well[:, tail]):12.1f}  {snr(ours[:, :-N_FFT], ref[:, :-N_FFT]):8.1f}")


if __name__ == "__main__":
    main()
