"""Where a track's spectral arithmetic runs: numpy on the host, or torch on the model's device.

Every step of a separation that touches a spectrogram goes through one of these: the STFT of a block (with
its peak magnitude, for vocal-remover's normalisation), a model window's normalised magnitude, the masking
and inverse STFT of a block of both stems, and a Parquet row's magnitude columns. ``HostSpectralOps`` is numpy,
bit-exact with librosa (``transforms.stft``): the default on a CPU. ``DeviceSpectralOps`` runs the same procedure
in torch where the network runs (``transforms.device_stft``), so a GPU worker's CPUs only read, copy and
encode; its results differ from the host's by float32 FFT rounding (bounded in
tests/transforms/test_transforms_spectral_ops.py, figures in docs/performance.md). Both take and return host arrays,
except a model window, which stays on the device for the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import torch

from stemforge.transforms import device_stft
from stemforge.transforms.stft import ReadFn, frame_segment, istft_samples, stft_frames

Stem = Callable[[], np.ndarray]


def _column(value: np.ndarray, dtype: np.dtype, frames: int) -> np.ndarray:
    """``value`` in ``dtype``, zero-padded to ``frames`` frames. The cast goes through torch, whose float32 →
    float16 conversion is vectorised (numpy's takes ~50× longer) and rounds alike."""
    out = np.zeros(value.shape[:-1] + (frames,), dtype)
    torch.from_numpy(out)[..., : value.shape[-1]] = torch.from_numpy(np.ascontiguousarray(value))
    return out


class HostSpectralOps:
    """numpy on the host: librosa's arithmetic exactly."""

    device: torch.device | None = None

    def frames(self, read: ReadFn, n_samples: int, f0: int, f1: int, n_fft: int, hop: int) -> np.ndarray:
        """Frames ``[f0, f1)`` (complex64 ``[2, bins, f1 - f0]``) of the STFT of an ``n_samples``-long track."""
        return stft_frames(read, n_samples, f0, f1, n_fft, hop)

    def frames_and_peak(self, read: ReadFn, n_samples: int, f0: int, f1: int, n_fft: int,
                        hop: int) -> tuple[np.ndarray, float]:
        """:meth:`frames` and their largest magnitude."""
        spec = self.frames(read, n_samples, f0, f1, n_fft, hop)
        return spec, float(np.abs(spec).max())

    def window(self, spec: np.ndarray, peak: float) -> np.ndarray | torch.Tensor:
        """A model window: ``|spec| / peak`` as float32."""
        return np.abs(spec).astype(np.float32) / np.float32(peak)

    def stems(self, spec: np.ndarray, mask: np.ndarray, first_frame: int, start: int, stop: int, n_samples: int,
              n_fft: int, hop: int) -> tuple[Stem, Stem]:
        """Samples ``[start, stop)`` of the inverses of mask·X and (1−mask)·X, ``spec`` and ``mask`` holding
        frames from ``first_frame``; each a call, so the caller may run the two in threads."""
        def stem(k: int) -> np.ndarray:
            part = mask * spec if k == 0 else (1 - mask) * spec
            return istft_samples(part, first_frame, start, stop, n_samples, n_fft, hop)

        return (lambda: stem(0)), (lambda: stem(1))

    def columns(self, spec: np.ndarray, mask: np.ndarray | None, dtype: np.dtype, frames: int) -> list[np.ndarray]:
        """|X|, and with a mask also mask·|X| and (1−mask)·|X|, each in ``dtype`` zero-padded to ``frames``."""
        magnitude = np.abs(spec)
        values = [magnitude] if mask is None else [magnitude, mask * magnitude, (1.0 - mask) * magnitude]
        return [_column(v, dtype, frames) for v in values]


class DeviceSpectralOps(HostSpectralOps):
    """torch on ``device``, copies through each thread's pinned buffers and stream (``device_stft.Transfer``).
    ``host_windows``: model windows come back to the host (the model is served by another process)."""

    def __init__(self, device: torch.device | str, host_windows: bool = False) -> None:
        self.device = torch.device(device)
        self._host_windows = host_windows
        self._local = threading.local()

    @property
    def _transfer(self) -> device_stft.Transfer:
        transfer = getattr(self._local, "transfer", None)
        if transfer is None:
            transfer = self._local.transfer = device_stft.Transfer(self.device)
        return transfer

    def frames_and_peak(self, read: ReadFn, n_samples: int, f0: int, f1: int, n_fft: int,
                        hop: int) -> tuple[np.ndarray, float]:
        transfer = self._transfer
        segment = frame_segment(read, n_samples, f0, f1, n_fft, hop)
        with torch.inference_mode(), transfer.stream():
            spec = device_stft.stft_segment(transfer.upload(segment), n_fft, hop)
            return transfer.download(spec), float(spec.abs().amax())

    def frames(self, read: ReadFn, n_samples: int, f0: int, f1: int, n_fft: int, hop: int) -> np.ndarray:
        return self.frames_and_peak(read, n_samples, f0, f1, n_fft, hop)[0]

    def window(self, spec: np.ndarray, peak: float) -> np.ndarray | torch.Tensor:
        transfer = self._transfer
        with torch.inference_mode(), transfer.stream():
            magnitude = transfer.upload(spec).abs() / peak
            if self._host_windows:
                return transfer.download(magnitude)
        transfer.synchronize()  # the batcher's thread reads it on its own stream
        return magnitude

    def stems(self, spec: np.ndarray, mask: np.ndarray, first_frame: int, start: int, stop: int, n_samples: int,
              n_fft: int, hop: int) -> tuple[Stem, Stem]:
        transfer = self._transfer
        with torch.inference_mode(), transfer.stream():
            x, m = transfer.upload(spec), transfer.upload(mask)
            both = torch.stack([m * x, (1 - m) * x])
            waves = transfer.download(device_stft.istft_block(both, first_frame, start, stop, n_samples, n_fft, hop))
        return (lambda: waves[0]), (lambda: waves[1])

    def columns(self, spec: np.ndarray, mask: np.ndarray | None, dtype: np.dtype, frames: int) -> list[np.ndarray]:
        transfer = self._transfer
        with torch.inference_mode(), transfer.stream():
            magnitude = transfer.upload(spec).abs()
            values = [magnitude]
            if mask is not None:
                m = transfer.upload(mask)
                values += [m * magnitude, (1 - m) * magnitude]
            stacked = torch.stack(values)
            out = torch.zeros(*stacked.shape[:-1], frames, dtype=device_stft.torch_dtype(dtype),
                              device=self.device)
            out[..., : stacked.shape[-1]] = stacked
            return list(transfer.download(out))
