"""The STFT and its inverse on a torch device, framed as librosa frames them (``transforms.stft``).

torch's defaults differ from librosa's: a rectangular window and reflection padding. librosa's framing is a
periodic Hann window, ``center=True`` and zero (``"constant"``) padding of n_fft/2 at both ends; here each is
passed explicitly, so the frames line up with the numpy path's exactly and only float rounding differs
(float32 FFTs on the device against numpy's float64-accumulated ones; tests bound it). On a CPU the numpy
path stays the default: it is bit-exact with librosa.

Host↔device copies go through pinned host memory with ``non_blocking=True`` on CUDA, so a copy overlaps the
work queued before it; :class:`Transfer` keeps those buffers for a thread that copies block after block.

:func:`stft_segment` and :func:`istft_block` are the block-wise twins of ``transforms.stft``'s ``stft_frames``
and ``istft_samples``: the same frames and samples of the whole-track transforms, so a long track is processed
on the device a block at a time, in bounded memory.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from stemforge.transforms.stft import frames_for_samples

_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def hann_window(n_fft: int, device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The periodic Hann window (librosa's ``get_window("hann", n_fft, fftbins=True)``), cached per device."""
    device = torch.device(device)
    key = (n_fft, str(device), dtype)
    if key not in _WINDOWS:
        window = torch.hann_window(n_fft, periodic=True, dtype=dtype, device=device)
        if device.type == "cuda":  # complete before another thread's stream reads it from the cache
            torch.cuda.current_stream(device).synchronize()
        _WINDOWS[key] = window
    return _WINDOWS[key]


def torch_dtype(dtype: np.dtype | type) -> torch.dtype:
    """The torch dtype of a numpy dtype (float16/32/64, complex64/128, ...)."""
    return torch.from_numpy(np.empty(0, dtype)).dtype


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


def stft_segment(segment: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex frames ``[C, bins, 1 + (L - n_fft) // hop]`` of an uncentred segment ``[C, L]`` (what
    ``transforms.stft.frame_segment`` returns for a frame range, its zeros past the track ends included)."""
    return torch.stft(segment, n_fft, hop_length=hop_length, win_length=n_fft,
                      window=hann_window(n_fft, segment.device, segment.dtype), center=False, return_complex=True)


def _envelope(frames: int, n_fft: int, hop_length: int, device: torch.device) -> torch.Tensor:
    """The summed squared window over ``frames`` overlapping frames, ``(frames - 1) * hop + n_fft`` samples."""
    squares = hann_window(n_fft, device) ** 2
    return F.fold(squares[None, :, None].expand(1, n_fft, frames), (1, (frames - 1) * hop_length + n_fft),
                  (1, n_fft), stride=(1, hop_length)).reshape(-1)


def istft_block(spec: torch.Tensor, first_frame: int, start: int, stop: int, n_samples: int, n_fft: int,
                hop_length: int) -> torch.Tensor:
    """Samples ``[start, stop)`` ``[..., stop - start]`` of the inverse of the whole ``n_samples``-long
    spectrogram, from ``spec`` ``[..., bins, k]`` = its frames ``[first_frame, first_frame + k)`` (which must
    include ``frames_for_samples(start, stop, ...)``): windowed overlap-add divided by the summed squared
    window where that exceeds float32's tiny value, as ``transforms.stft.istft_samples``."""
    f0, f1 = frames_for_samples(start, stop, n_samples, n_fft, hop_length)
    if f0 < first_frame or f1 > first_frame + spec.shape[-1]:
        raise ValueError(f"samples [{start}, {stop}) need frames [{f0}, {f1}); given "
                         f"[{first_frame}, {first_frame + spec.shape[-1]})")
    out = torch.zeros(*spec.shape[:-2], stop - start, device=spec.device)
    if f1 == f0:
        return out
    z = spec[..., f0 - first_frame : f1 - first_frame]
    frames = torch.fft.irfft(z, n=n_fft, dim=-2) * hann_window(n_fft, spec.device)[:, None]
    count = f1 - f0
    length = (count - 1) * hop_length + n_fft
    signal = F.fold(frames.reshape(-1, n_fft, count), (1, length), (1, n_fft), stride=(1, hop_length))
    signal = signal.reshape(*spec.shape[:-2], length)
    envelope = _envelope(count, n_fft, hop_length, spec.device)
    signal = torch.where(envelope > torch.finfo(torch.float32).tiny, signal / envelope, signal)
    offset = start + n_fft // 2 - f0 * hop_length  # buffer index of output sample `start`
    piece = signal[..., offset : offset + stop - start]
    out[..., : piece.shape[-1]] = piece
    return out


class Transfer:
    """Host↔device copies for one thread. On CUDA: reusable pinned host buffers, non-blocking copies, and the
    thread's own stream (``with transfer.stream():``), so one track's copies and kernels overlap another's and
    the model's. Elsewhere (CPU, MPS) plain copies; on the CPU a writable array's memory is shared, not copied."""

    _RING = 4

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if self._cuda else None
        self._up: list[tuple[torch.Tensor, torch.cuda.Event] | None] = [None] * self._RING
        self._slot = 0
        self._down: torch.Tensor | None = None

    def stream(self) -> contextlib.AbstractContextManager[Any]:
        """The context in which this thread's device work is queued."""
        return torch.cuda.stream(self._stream) if self._cuda else contextlib.nullcontext()

    def synchronize(self) -> None:
        """Wait for the work queued so far (before a tensor is handed to another thread)."""
        if self._cuda:
            self._stream.synchronize()

    @staticmethod
    def _pinned(buffer: torch.Tensor | None, nbytes: int) -> torch.Tensor:
        """``buffer``, or a new one when it is too small (sized exactly: a track's blocks bound the sizes)."""
        if buffer is not None and buffer.numel() >= nbytes:
            return buffer
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)

    def upload(self, array: np.ndarray) -> torch.Tensor:
        """``array`` on the device (its dtype kept; ``array`` may be a read-only view, it is never written)."""
        array = np.asarray(array)
        if not self._cuda:
            host = np.ascontiguousarray(array)
            return torch.from_numpy(host if host.flags.writeable else host.copy()).to(self.device)
        slot, self._slot = self._slot, (self._slot + 1) % self._RING
        held = self._up[slot]
        if held is not None:
            held[1].synchronize()  # the copy that last read this buffer has finished
        buffer = self._pinned(None if held is None else held[0], array.nbytes)
        staged = buffer[: array.nbytes].view(torch_dtype(array.dtype)).view(array.shape)
        staged.numpy()[...] = array
        with self.stream():
            tensor = staged.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        self._up[slot] = (buffer, event)
        return tensor

    def download(self, tensor: torch.Tensor) -> np.ndarray:
        """A device tensor as a fresh host array (waits for the work that produced it)."""
        if not self._cuda:
            return tensor.detach().cpu().numpy()
        self._down = self._pinned(self._down, tensor.numel() * tensor.element_size())
        staged = self._down[: tensor.numel() * tensor.element_size()].view(tensor.dtype).view(tensor.shape)
        with self.stream():
            staged.copy_(tensor, non_blocking=True)
        self._stream.synchronize()
        return staged.numpy().copy()
