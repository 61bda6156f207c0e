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
from stemforge.model.masks import MaskAssembler, mask_grids, predict_windows
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

    def _assembler(self, mag: torch.Tensor) -> MaskAssembler:
        """The mask of ``mag`` ``[2, bins, frames]`` (peak-normalised, on the device) by frame range."""
        passes = mask_grids(mag.shape[-1], self.cropsize, self.model.offset, tta=False)
        padded = F.pad(mag, (passes[0].pad_left, passes[0].pad_right))

        def cut(grid: WindowGrid, i: int) -> torch.Tensor:
            start, stop = grid.input_span(i)
            return padded[..., start + grid.pad_left : stop + grid.pad_left]

        centres = predict_windows(passes, self.batch_size, cut, lambda batch: self.model.predict(torch.stack(batch)))
        return MaskAssembler(mag.shape[-1], passes, lambda p, i: centres[(p, i)].to(mag.dtype))

    def predict_mask(self, mag: torch.Tensor) -> torch.Tensor:
        """The mask of every frame of ``mag`` ``[2, bins, frames]`` (peak-normalised, on the device)."""
        return self._assembler(mag).get(0, mag.shape[-1])

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
            mask = self._assembler(mag / peak if peak > 0 else mag).get(0, spec.shape[-1])
            first = device_stft.istft(mask * spec, hop_length, length)
            second = device_stft.istft((1 - mask) * spec, hop_length, length)
            return device_stft.to_host(first), device_stft.to_host(second)
