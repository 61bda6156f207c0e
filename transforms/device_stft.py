"""The STFT and its inverse on a torch device, framed as librosa frames them (``transforms.stft``).

torch's defaults differ from librosa's: a rectangular window and reflection padding. librosa's framing is a
periodic Hann window, ``center=True`` and zero (``"constant"``) padding of n_fft/2 at both ends; here each is
passed explicitly, so the frames line up with the numpy path's exactly and only float rounding differs
(float32 FFTs on the device against numpy's float64-accumulated ones; tests bound it). On a CPU the numpy
path stays the default: it is bit-exact with librosa.

Host↔device copies go through pinned host memory with ``non_blocking=True`` on CUDA, so a copy overlaps the
work queued before it.
"""

from __future__ import annotations

import numpy as np
import torch

_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def hann_window(n_fft: int, device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The periodic Hann window (librosa's ``get_window("hann", n_fft, fftbins=True)``), cached per device."""
    device = torch.device(device)
    key = (n_fft, str(device), dtype)
    if key not in _WINDOWS:
        _WINDOWS[key] = torch.hann_window(n_fft, periodic=True, dtype=dtype, device=device)
    return _WINDOWS[key]


def to_device(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``array`` as a float32 tensor on ``device``; on CUDA through a pinned buffer and a non-blocking copy."""
    device = torch.device(device)
    host = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """A device tensor back as a numpy array (the copy waits for the work that produced it)."""
    return tensor.detach().to("cpu").numpy()


def stft(samples: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex spectrogram ``[..., n_fft//2+1, frames]`` of ``samples`` ``[..., n]``, librosa's framing."""
    shape = samples.shape
    flat = samples.reshape(-1, shape[-1])
    spec = torch.stft(flat, n_fft, hop_length=hop_length, win_length=n_fft,
                      window=hann_window(n_fft, samples.device, samples.dtype), center=True, pad_mode="constant",
                      return_complex=True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, hop_length: int, length: int) -> torch.Tensor:
    """The inverse of :func:`stft` (windowed overlap-add divided by the summed squared window, as librosa's
    ``istft``), ``length`` samples."""
    n_fft = 2 * (spec.shape[-2] - 1)
    shape = spec.shape
    flat = spec.reshape(-1, *shape[-2:])
    window = hann_window(n_fft, spec.device, torch.float32 if spec.dtype == torch.complex64 else torch.float64)
    wave = torch.istft(flat, n_fft, hop_length=hop_length, win_length=n_fft, window=window, center=True,
                       length=length)
    return wave.reshape(*shape[:-2], length)
