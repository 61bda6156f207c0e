"""Separator: vocal-remover's ``inference.py`` procedure on top of WindowGrid and InferenceModel.

One deliberate difference, in :meth:`Separator.separate_audio` only: stems are resynthesised
from the STFT of the track with ``n_fft`` zeros appended (the mask of the last real frame held
over the added frames), because upstream's inverse divides the last hop of a masked
spectrogram by a squared window near 0 and can blow it up (see docs/pipeline.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.inference import InferenceModel
from model.postprocess import merge_artifacts
from model.windows import WindowGrid, crop_frames
from transforms.stft import istft, num_frames, stft


def _module_device(net: nn.Module) -> torch.device | str:
    """Where the net's parameters already live; "auto" for a parameter-free module."""
    for param in net.parameters():
        return param.device
    return "auto"


class Separator:
    """Splits a complex spectrogram ``[2, n_fft//2+1, frames]`` into two stems with a mask network.

    ``first = mask·X`` (vocal-remover: instruments) and ``second = (1−mask)·X``
    (vocals). ``net`` is a CascadedNet-like module (wrapped in a new
    InferenceModel on ``device``; None means the device its parameters are on)
    or an InferenceModel to share, in which case ``device`` and ``precision``
    must be left at their defaults.
    """

    def __init__(
        self,
        net: nn.Module | InferenceModel,
        batch_size: int = 4,
        cropsize: int = 256,
        tta: bool = False,
        postprocess: bool = False,
        device: str | torch.device | None = None,
        precision: str = "fp32",
    ) -> None:
        if isinstance(net, InferenceModel):
            if device is not None or precision != "fp32":
                raise ValueError("pass device/precision to the InferenceModel, not to Separator")
            self.model = net
        else:
            self.model = InferenceModel(
                net, device=_module_device(net) if device is None else device, precision=precision
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        offset = self.model.offset
        if cropsize <= 2 * offset or cropsize % 16:
            raise ValueError(
                f"cropsize must be a multiple of 16 greater than 2*offset={2 * offset}, got {cropsize}"
            )
        self.batch_size = batch_size
        self.cropsize = cropsize
        self.tta = tta
        self.postprocess = postprocess

    @property
    def offset(self) -> int:
        """Context frames the network discards on each side of a window."""
        return self.model.offset

    @property
    def roi(self) -> int:
        """Frames each window contributes."""
        return self.cropsize - 2 * self.offset

    def _check_spec(self, X_spec: np.ndarray) -> None:
        bins = self.model.n_bins
        if X_spec.ndim != 3 or X_spec.shape[0] != 2 or X_spec.shape[1] != bins:
            raise ValueError(f"expected a spectrogram [2, {bins}, frames], got {X_spec.shape}")
        if X_spec.shape[2] < 1:
            raise ValueError("spectrogram has no frames")

    def _mask_pass(self, mag: np.ndarray, shift: int) -> np.ndarray:
        """One pass over a WindowGrid: the mask for every frame of ``mag`` (already peak-normalised)."""
        n_frames = mag.shape[2]
        grid = WindowGrid(n_frames, self.cropsize, self.offset, shift)
        needed = grid.contributing()
        mask = np.empty(mag.shape, dtype=np.float32)
        for b in range(0, len(needed), self.batch_size):
            chunk = needed[b : b + self.batch_size]
            batch = np.stack([crop_frames(mag, *grid.input_span(i)) for i in chunk])
            centres = self.model(batch)
            for i, centre in zip(chunk, centres):
                start, stop = grid.output_span(i)
                lo, hi = max(start, 0), min(stop, n_frames)
                mask[:, :, lo:hi] = centre[:, :, lo - start : hi - start]
        return mask

    def predict_mask(self, X_spec: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """The first stem's mask ``[2, bins, frames]`` (float32, in [0, 1]) for ``X_spec``.

        The network sees ``|X| / max|X|`` (max taken over the unpadded track;
        1 for a silent one). With ``tta`` a second grid shifted by roi/2 is
        averaged in; with ``postprocess`` ``merge_artifacts`` is applied last.
        ``n_frames`` (default: all) is the track's own frame count when ``X_spec``
        carries end-padding frames after it: the mask of those is the mask of
        the track's last frame, and they change nothing before.
        """
        X_spec = np.asarray(X_spec)
        self._check_spec(X_spec)
        total = X_spec.shape[2]
        n_frames = total if n_frames is None else n_frames
        if not 1 <= n_frames <= total:
            raise ValueError(f"n_frames must be in [1, {total}], got {n_frames}")
        mag = np.abs(X_spec[:, :, :n_frames]).astype(np.float32)
        peak = mag.max()
        if not np.isfinite(peak) or not np.isfinite(X_spec[:, :, n_frames:]).all():
            raise ValueError("spectrogram contains non-finite values")
        if peak > 0:
            mag /= peak
        mask = self._mask_pass(mag, shift=0)
        if self.tta:
            mask = (mask + self._mask_pass(mag, shift=self.roi // 2)) * 0.5
        if self.postprocess:
            mask = merge_artifacts(mask)
        if n_frames < total:
            mask = np.concatenate([mask, np.repeat(mask[:, :, -1:], total - n_frames, axis=2)], axis=2)
        return mask

    def separate(self, X_spec: np.ndarray, n_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(mask·X, (1−mask)·X)``: the two stems' spectrograms, same shape as ``X_spec``."""
        X_spec = np.asarray(X_spec)
        mask = self.predict_mask(X_spec, n_frames)
        return mask * X_spec, (1 - mask) * X_spec

    def separate_audio(self, wave: np.ndarray, hop_length: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The two stems of a stereo waveform ``[2, samples]`` as float32 waveforms of the same length.

        The mask is vocal-remover's for the track's own STFT frames; the inverse is taken over
        the STFT of the track followed by ``n_fft`` zeros, so every output sample is covered by
        at least two frames and the end of a stem stays as well conditioned as its middle.
        """
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 2 or wave.shape[0] != 2:
            raise ValueError(f"expected a stereo waveform [2, samples], got shape {wave.shape}")
        n_fft = self.model.n_fft
        length = wave.shape[1]
        spec = stft(np.pad(wave, ((0, 0), (0, n_fft))), n_fft, hop_length)
        first, second = self.separate(spec, n_frames=num_frames(length, hop_length))
        return istft(first, hop_length, length=length), istft(second, hop_length, length=length)
