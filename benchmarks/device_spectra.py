"""How far the device path's spectral arithmetic (transforms.spectral_ops.DeviceSpectralOps) is from librosa, and the
host path's (HostSpectralOps) for comparison: a track's STFT computed block by block as the pipeline does, and both
stems inverted block by block from the end-padded analysis under a random mask.

    .venv/bin/python benchmarks/device_spectra.py                      # the device: CUDA if present, else CPU
    .venv/bin/python benchmarks/device_spectra.py --device cpu --seconds 20
"""

from __future__ import annotations

import argparse
import platform
import warnings

import librosa
import numpy as np
import torch

from stemforge.model import resolve_device
from stemforge.transforms import frames_for_samples, num_frames
from stemforge.transforms.spectral_ops import DeviceSpectralOps, HostSpectralOps


def _music(seconds: float, sr: int = 44100) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, (2, 1))) for f in (110, 165, 220, 330, 440))
    return (0.7 * wave + 0.01 * rng.standard_normal((2, t.size))).astype(np.float32)


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    return np.stack([librosa.stft(c, n_fft=n_fft, hop_length=hop) for c in x])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--n-fft", type=int, default=2048)
    parser.add_argument("--hop", type=int, default=1024)
    parser.add_argument("--block-seconds", type=float, default=4.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    n_fft, hop, device = args.n_fft, args.hop, resolve_device(args.device)
    wave = _music(args.seconds)
    n, padded = wave.shape[1], wave.shape[1] + n_fft
    plain = _stft(wave, n_fft, hop)
    spec = _stft(np.pad(wave, ((0, 0), (0, n_fft))), n_fft, hop)
    mask = np.random.default_rng(1).uniform(0, 1, spec.shape).astype(np.float32)
    stems = [np.stack([librosa.istft(s[c], n_fft=n_fft, hop_length=hop, length=padded) for c in range(2)])[:, :n]
             for s in (mask * spec, (1 - mask) * spec)]
    block = int(args.block_seconds * 44100)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, device {device}")
    print(f"{args.seconds:.0f} s of music, n_fft {n_fft} / hop {hop}, blocks of {args.block_seconds} s; "
          "deviations relative to the reference's peak")
    for name, ops in (("host", HostSpectralOps()), ("device", DeviceSpectralOps(device))):
        total = num_frames(n, hop)
        frames = np.concatenate([ops.frames(lambda a, b: wave[:, a:b], n, f, min(f + 256, total), n_fft, hop)
                                 for f in range(0, total, 256)], axis=-1)
        got = [[], []]
        for start in range(0, n, block):
            stop = min(start + block, n)
            f0, f1 = frames_for_samples(start, stop, padded, n_fft, hop)
            for k, stem in enumerate(ops.stems(spec[..., f0:f1], mask[..., f0:f1], f0, start, stop, padded, n_fft,
                                               hop)):
                got[k].append(stem())
        got = [np.concatenate(g, axis=-1) for g in got]
        peak = np.abs(plain).max()
        noise = max(float(np.sum((g - r.astype(np.float64)) ** 2) / np.sum(r.astype(np.float64) ** 2))
                    for g, r in zip(got, stems))
        noise = float("inf") if noise == 0 else -10 * np.log10(noise)
        print(f"  {name:6s} X {np.abs(frames - plain).max() / peak:.1e}   |X| "
              f"{np.abs(np.abs(frames) - np.abs(plain)).max() / peak:.1e}   stems "
              f"{max(np.abs(g - r).max() / np.abs(r).max() for g, r in zip(got, stems)):.1e}   stems SNR {noise:.1f} dB")


if __name__ == "__main__":
    main()
