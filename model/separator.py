"""Separator: vocal-remover's ``inference.py`` procedure on top of WindowGrid and InferenceModel."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model.inference import InferenceModel
from model.postprocess import merge_artifacts
from model.windows import WindowGrid, crop_frames


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

    def predict_mask(self, X_spec: np.ndarray) -> np.ndarray:
        """The first stem's mask ``[2, bins, frames]`` (float32, in [0, 1]) for ``X_spec``.

        The network sees ``|X| / max|X|`` (max taken over the unpadded track;
        1 for a silent one). With ``tta`` a second grid shifted by roi/2 is
        averaged in; with ``postprocess`` ``merge_artifacts`` is applied last.
        """
        X_spec = np.asarray(X_spec)
        self._check_spec(X_spec)
        mag = np.abs(X_spec).astype(np.float32)
        peak = mag.max()
        if not np.isfinite(peak):
            raise ValueError("spectrogram contains non-finite values")
        if peak > 0:
            mag /= peak
        mask = self._mask_pass(mag, shift=0)
        if self.tta:
            mask = (mask + self._mask_pass(mag, shift=self.roi // 2)) * 0.5
        if self.postprocess:
            mask = merge_artifacts(mask)
        return mask

    def separate(self, X_spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mask·X, (1−mask)·X)``: the two stems' spectrograms, same shape as ``X_spec``."""
        X_spec = np.asarray(X_spec)
        mask = self.predict_mask(X_spec)
        return mask * X_spec, (1 - mask) * X_spec
