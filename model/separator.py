"""Separator: vocal-remover's ``inference.py`` procedure (and UVR's ``inference_vr``, which adds
aggressiveness and multi-band spectrograms to it) on top of WindowGrid and InferenceModel.

One deliberate difference, in :meth:`Separator.separate_audio` only: stems are resynthesised
from the spectrogram of the track followed by zeros (the mask of the last real frame held over
the added frames), because upstream's inverse divides the last hop of a masked spectrogram by a
squared window near 0 and can blow it up, and UVR's multi-band synthesis truncates up to one hop
(see docs/pipeline.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from stemforge.model.aspp import CascadedASPPNet
from stemforge.model.inference import InferenceModel
from stemforge.model.masks import Aggression, MaskAssembler, mask_grids, predict_windows
from stemforge.model.windows import WindowGrid, crop_frames
from stemforge.transforms.bands import BandParams
from stemforge.transforms.multiband import analyse, synthesise, to_input_rate
from stemforge.transforms.multiband_filters import mirroring
from stemforge.transforms.stft import check_window, istft, num_frames, stft


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
        aggression: Aggression | None = None,
        postprocess_threshold: float = 0.05,
    ) -> None:
        module = net.net if isinstance(net, InferenceModel) else net
        self.per_band = not isinstance(module, CascadedASPPNet)
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
        check_window(cropsize, self.model.offset)
        self.batch_size = batch_size
        self.cropsize = cropsize
        self.tta = tta
        self.postprocess = postprocess
        self.aggression = aggression
        self.postprocess_threshold = postprocess_threshold

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

    def predict_mask(self, X_spec: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """The first stem's mask ``[2, bins, frames]`` (float32, in [0, 1]) for ``X_spec``.

        The network sees ``|X| / max|X|`` (max taken over the unpadded track;
        1 for a silent one). With ``tta`` a second grid shifted by roi/2 is
        averaged in; then UVR's ``aggression`` if set; with ``postprocess``
        ``merge_artifacts`` (at ``postprocess_threshold``) is applied last.
        ``n_frames`` (default: all) is the track's own frame count when ``X_spec``
        carries end-padding frames after it: the mask of those is the mask of
        the track's last frame, and they change nothing before.
        """
        X_spec = np.asarray(X_spec)
        return self._assembler(X_spec, n_frames).get(0, X_spec.shape[2])

    def _assembler(self, X_spec: np.ndarray, n_frames: int | None) -> MaskAssembler:
        """The mask of ``X_spec``'s first ``n_frames`` frames (see :meth:`predict_mask`), by frame range."""
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
        passes = mask_grids(n_frames, self.cropsize, self.offset, self.tta)
        threshold = self.postprocess_threshold if self.postprocess else None
        centres = self._centres(mag, passes)
        return MaskAssembler(n_frames, passes, lambda p, i: centres[(p, i)], self.aggression, threshold)

    def _centres(self, mag: np.ndarray, passes: list[WindowGrid]) -> dict[tuple[int, int], np.ndarray]:
        """Every window's centre mask (float32) over ``mag`` (peak-normalised), from the net on the host."""
        windows = predict_windows(passes, self.batch_size, lambda grid, i: crop_frames(mag, *grid.input_span(i)),
                                  lambda batch: self.model(np.stack(batch)))
        return {key: np.asarray(centre, np.float32) for key, centre in windows.items()}

    def separate(self, X_spec: np.ndarray, n_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(mask·X, (1−mask)·X)``: the two stems' spectrograms, same shape as ``X_spec``."""
        X_spec = np.asarray(X_spec)
        mask = self.predict_mask(X_spec, n_frames)
        return mask * X_spec, (1 - mask) * X_spec

    def separate_audio(self, wave: np.ndarray, hop_length: int = 1024, bands: BandParams | None = None,
                       high_end: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The two stems of a 44.1 kHz stereo waveform ``[2, samples]`` as float32 waveforms of the same length.

        Single band (``bands`` None): the mask is vocal-remover's for the track's own STFT frames;
        the inverse is taken over the STFT of the track followed by ``n_fft`` zeros, so every output
        sample is covered by at least two frames and the end of a stem stays as well conditioned as
        its middle. With a UVR band table: UVR's procedure (multi-band analysis, mask, synthesis,
        ``high_end`` mirroring, 44.1 kHz), its mask from UVR's own frames and the synthesis over
        the track followed by zeros, so the stems keep every input sample.
        """
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 2 or wave.shape[0] != 2:
            raise ValueError(f"expected a stereo waveform [2, samples], got shape {wave.shape}")
        if bands is not None:
            return self._separate_bands(wave, bands, high_end)
        n_fft = self.model.n_fft
        length = wave.shape[1]
        spec = stft(np.pad(wave, ((0, 0), (0, n_fft))), n_fft, hop_length)
        first, second = self.separate(spec, n_frames=num_frames(length, hop_length))
        return istft(first, hop_length, length=length), istft(second, hop_length, length=length)

    def _separate_bands(self, wave: np.ndarray, bands: BandParams, high_end: bool) -> tuple[np.ndarray, np.ndarray]:
        """UVR's procedure with a band table (see :meth:`separate_audio`)."""
        if bands.n_fft != self.model.n_fft:
            raise ValueError(f"band table {bands.name!r} has {bands.bins} bins, the network "
                             f"{self.model.n_bins - 1}: load the checkpoint with n_fft={bands.n_fft}")
        padded = analyse(wave, bands, self.per_band, pad_tail=True)
        mask = self._assembler(analyse(wave, bands, self.per_band).spec, None).get(0, padded.spec.shape[-1])
        stems = []
        for spec in (mask * padded.spec, (1 - mask) * padded.spec):
            rows = mirroring(spec, padded.high_end, bands) if high_end else None
            stems.append(to_input_rate(synthesise(spec, bands, self.per_band, rows), bands, wave.shape[1]))
        return stems[0], stems[1]

