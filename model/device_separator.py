"""vocal-remover's single-band separation with every array on the model's device (the GPU path).

``Separator`` computes the STFT, the magnitude, the peak normalisation, the masking and the ISTFT in numpy on
the host, which is exact against librosa and vocal-remover but, on a GPU worker, keeps the host busy while the
GPU waits. ``DeviceSeparator`` runs the same procedure in torch where the network runs: the waveform goes to
the device once (pinned, non-blocking) and the two stems come back once. Windows, padding and the held mask of
the end padding are ``Separator``'s (``model.windows.WindowGrid``), so the stems differ from ``Separator``'s only
by float32 FFT rounding (bounded in tests/model/test_model_device_separator.py and docs/performance.md).
TTA, post-processing and UVR's band tables stay on the host path.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stemforge.model.inference import InferenceModel
from stemforge.model.windows import WindowGrid
from stemforge.transforms import device_stft
from stemforge.transforms.stft import check_window, num_frames


class DeviceSeparator:
    """``separate_audio(wave)`` → (mask·X, (1−mask)·X) waveforms, computed on ``device``."""

    def __init__(self, net: nn.Module | InferenceModel, batch_size: int = 4, cropsize: int = 256,
                 device: str | torch.device | None = "auto", precision: str = "fp32") -> None:
        self.model = net if isinstance(net, InferenceModel) else InferenceModel(net, device, precision)
        check_window(cropsize, self.model.offset)
        self.batch_size, self.cropsize = batch_size, cropsize

    def predict_mask(self, mag: torch.Tensor) -> torch.Tensor:
        """The mask of every frame of ``mag`` ``[2, bins, frames]`` (peak-normalised, on the device)."""
        grid = WindowGrid(mag.shape[-1], self.cropsize, self.model.offset, 0)
        padded = F.pad(mag, (grid.pad_left, grid.pad_right))
        mask = torch.empty_like(mag)
        needed = grid.contributing()
        for b in range(0, len(needed), self.batch_size):
            chunk = needed[b : b + self.batch_size]
            batch = torch.stack([padded[..., s + grid.pad_left : e + grid.pad_left]
                                 for s, e in (grid.input_span(i) for i in chunk)])
            centres = self.model.predict(batch)
            for i, centre in zip(chunk, centres):
                start, stop = grid.output_span(i)
                lo, hi = max(start, 0), min(stop, mag.shape[-1])
                mask[..., lo:hi] = centre[..., lo - start : hi - start]
        return mask

    def separate_audio(self, wave: np.ndarray, hop_length: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The two stems of a stereo waveform ``[2, samples]``, as ``Separator.separate_audio`` without bands:
        the mask from the track's own frames, the inverse over the track followed by n_fft zeros."""
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 2 or wave.shape[0] != 2:
            raise ValueError(f"expected a stereo waveform [2, samples], got shape {wave.shape}")
        n_fft, length = self.model.n_fft, wave.shape[1]
        with torch.inference_mode():
            x = device_stft.to_device(wave, self.model.device)
            spec = device_stft.stft(F.pad(x, (0, n_fft)), n_fft, hop_length)
            frames = num_frames(length, hop_length)
            mag = spec[..., :frames].abs()
            peak = mag.max()
            if not torch.isfinite(peak):
                raise ValueError("spectrogram contains non-finite values")
            mask = self.predict_mask(mag / peak if peak > 0 else mag)
            mask = torch.cat([mask, mask[..., -1:].expand(-1, -1, spec.shape[-1] - frames)], dim=-1)
            first = device_stft.istft(mask * spec, hop_length, length)
            second = device_stft.istft((1 - mask) * spec, hop_length, length)
            return device_stft.to_host(first), device_stft.to_host(second)
