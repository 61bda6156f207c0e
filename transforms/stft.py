"""STFT / inverse STFT as vocal-remover computes them, and block-wise equivalents.

Conventions (librosa's ``stft(center=True, pad_mode="constant")`` and
``istft(center=True)``): periodic Hann window of ``n_fft`` samples, frames
centred on ``t = f · hop_length`` with ``n_fft // 2`` zeros padded at both track
ends, ``1 + n_samples // hop_length`` frames, unnormalised forward transform,
inverse by overlap-add divided by the summed squared window wherever that sum
exceeds float32's tiny value. ``n_fft`` must be even.

Numpy, with librosa's arithmetic: windowing in float64, float32 overlap-add in
frame order. That matters for the inverse: within half a window of the track
ends a sample may be covered by a single window tail, where dividing by w²
amplifies any rounding difference in the inverse FFT by 1/w (up to ~10⁵);
torch's MKL FFT rounds differently from numpy's pocketfft, so a torch inverse
differs there from librosa by far more than 1e-5.

For tracks processed in blocks: :func:`stft_frames` computes frames
``[f0, f1)`` of the whole-signal STFT reading only the samples they cover, and
:func:`istft_samples` returns samples ``[start, stop)`` of the whole-signal
inverse from the frames :func:`frames_for_samples` names; both equal the
whole-signal functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DEFAULT_N_FFT = 2048
DEFAULT_HOP = 1024
_BLOCK_FRAMES = 256
_TINY = np.finfo(np.float32).tiny

ReadFn = Callable[[int, int], np.ndarray]


def _check(n_fft: int, hop_length: int) -> None:
    if n_fft <= 0 or n_fft % 2:
        raise ValueError(f"n_fft must be a positive even number, got {n_fft}")
    if not 0 < hop_length <= n_fft:
        raise ValueError(f"hop_length must be in (0, n_fft], got {hop_length}")


@functools.lru_cache(maxsize=32)
def check_window(width: int, offset: int = 0, name: str = "cropsize") -> None:
    """Raise ValueError unless a network window of ``width`` frames fits a network whose context is ``offset``
    frames a side: a multiple of 16 (the encoder halves the width four times) wider than ``2*offset``.

    The one place the window-size rule is checked: the config (``offset`` unknown there, so 0), the launch
    once the checkpoint's offset is known, ``InferenceModel``, ``Separator`` and ``DeviceSeparator``."""
    if width <= 2 * offset or width % 16:
        bound = f" greater than 2*offset={2 * offset}" if offset else ""
        raise ValueError(f"{name} must be a multiple of 16{bound}, got {width}")


def check_geometry(n_fft: int, hop_length: int) -> None:
    """Raise ValueError unless frames of ``n_fft`` with hop ``hop_length`` can be inverted: the hop below
    n_fft, and the periodic Hann window's overlap-add nonzero everywhere (scipy's NOLA condition), to
    float32's precision, since the inverse divides by the summed squared windows in float32.

    The one place a run's config, ``stemforge evaluate`` and training check their STFT geometry."""
    if 0 < n_fft <= hop_length:
        raise ValueError(f"hop_length {hop_length} must be less than n_fft {n_fft}: frames that do not overlap "
                         "cannot be inverted (use n_fft/2 or n_fft/4)")
    _check(n_fft, hop_length)
    from scipy.signal import check_NOLA  # loaded on first use: importing transforms stays quick

    if not check_NOLA(_window(n_fft), n_fft, n_fft - hop_length, tol=float(np.finfo(np.float32).eps)):
        raise ValueError(f"hop_length {hop_length} with n_fft {n_fft}: the Hann windows' overlap-add vanishes "
                         "between frames, so the inverse STFT cannot reconstruct (use n_fft/2 or n_fft/4)")


@functools.lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    """Periodic Hann window, float64 (read-only, cached). scipy.signal loads here, on first use: importing
    ``transforms`` (as `stemforge --help` does) stays quick."""
    from scipy.signal import get_window

    window = get_window("hann", n_fft, fftbins=True)
    window.setflags(write=False)
    return window


def num_frames(n_samples: int, hop_length: int = DEFAULT_HOP) -> int:
    """Number of centred frames for ``n_samples`` samples: ``1 + n_samples // hop_length``."""
    if n_samples < 0 or hop_length <= 0:
        raise ValueError("n_samples must be >= 0 and hop_length positive")
    return 1 + n_samples // hop_length


def end_padded_frames(n_samples: int, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> int:
    """Frames of the STFT of ``n_samples`` samples followed by ``n_fft`` zeros.

    Stems are resynthesised from these: in the last hop of a track only the final frame of the
    plain STFT covers a sample, with its window near 0, so an inverse of a *masked* spectrogram
    divides by a tiny squared window there. With ``n_fft`` zeros appended every sample is covered
    by at least two frames (for ``hop_length <= n_fft / 2``), and the first ``1 + n_samples // hop``
    frames are the plain STFT's unchanged.
    """
    _check(n_fft, hop_length)
    return num_frames(n_samples + n_fft, hop_length)


def _spectra(padded: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Already-padded float32 ``[..., L]`` → complex64 ``[..., bins, 1 + (L - n_fft) // hop]``."""
    frames = sliding_window_view(padded, n_fft, axis=-1)[..., ::hop_length, :]
    count = frames.shape[-2]
    out = np.empty(padded.shape[:-1] + (n_fft // 2 + 1, count), dtype=np.complex64)
    window = _window(n_fft)
    for b0 in range(0, count, _BLOCK_FRAMES):
        b1 = min(b0 + _BLOCK_FRAMES, count)
        out[..., b0:b1] = np.swapaxes(np.fft.rfft(window * frames[..., b0:b1, :], axis=-1), -1, -2)
    return out


def stft(samples: np.ndarray, n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> np.ndarray:
    """Centred, zero-padded Hann STFT of ``[..., N]`` → complex64 ``[..., n_fft // 2 + 1, 1 + N // hop]``."""
    _check(n_fft, hop_length)
    x = np.asarray(samples, dtype=np.float32)
    half = n_fft // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)])
    return _spectra(padded, n_fft, hop_length)


def _overlap_add(spec: np.ndarray, n_fft: int, hop_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Windowed inverse frames of ``[..., bins, k]`` overlap-added in frame order (float32),
    and the float32 sum of squared windows over the same ``(k - 1) · hop + n_fft`` samples.

    When ``hop_length`` divides ``n_fft`` (r = n_fft / hop), the output is r-fold overlapping
    chunks of hop samples: chunk c sums segment j of frame c - j for j = r-1 … 0, so adding
    segment j of every frame at once, j descending, keeps librosa's frame order per sample."""
    count = spec.shape[-1]
    length = (count - 1) * hop_length + n_fft
    window = _window(n_fft)
    signal = np.zeros(spec.shape[:-2] + (length,), dtype=np.float32)
    window_sum = np.zeros(length, dtype=np.float32)
    squares = window**2
    overlap, uneven = divmod(n_fft, hop_length)
    for b0 in range(0, count, _BLOCK_FRAMES):
        b1 = min(b0 + _BLOCK_FRAMES, count)
        frames = window * np.swapaxes(np.fft.irfft(spec[..., b0:b1], n=n_fft, axis=-2), -1, -2)
        at = b0 * hop_length
        if uneven:
            for i in range(b1 - b0):
                signal[..., at + i * hop_length:at + i * hop_length + n_fft] += frames[..., i, :]
                window_sum[at + i * hop_length:at + i * hop_length + n_fft] += squares
            continue
        span = (b1 - b0 - 1) * hop_length + n_fft
        chunks = signal[..., at:at + span].reshape(spec.shape[:-2] + (-1, hop_length))
        sums = window_sum[at:at + span].reshape(-1, hop_length)
        segments = frames.reshape(frames.shape[:-1] + (overlap, hop_length))
        square_segments = squares.reshape(overlap, hop_length)
        for j in reversed(range(overlap)):
            chunks[..., j:j + b1 - b0, :] += segments[..., j, :]
            sums[j:j + b1 - b0] += square_segments[j]
    return signal, window_sum


def _normalise(signal: np.ndarray, window_sum: np.ndarray) -> np.ndarray:
    np.divide(signal, window_sum, out=signal, where=window_sum > _TINY)
    return signal


def istft(spec: np.ndarray, hop_length: int = DEFAULT_HOP, length: int | None = None,
          n_fft: int | None = None) -> np.ndarray:
    """Inverse of :func:`stft`: complex ``[..., bins, frames]`` → float32 ``[..., samples]``.

    With ``length``: exactly that many samples (zeros past the last frame);
    otherwise ``(frames - 1) · hop_length``. ``n_fft`` defaults to ``2 · (bins - 1)``.
    """
    z = np.asarray(spec)
    if z.ndim < 2:
        raise ValueError(f"expected [..., bins, frames], got shape {z.shape}")
    n_fft = 2 * (z.shape[-2] - 1) if n_fft is None else n_fft
    _check(n_fft, hop_length)
    half = n_fft // 2
    count = z.shape[-1]
    if length is None:
        wanted = (count - 1) * hop_length
    elif length < 0:
        raise ValueError("length must be >= 0")
    else:
        wanted = length
        count = min(count, -(-(length + 2 * half) // hop_length))
    out = np.zeros(z.shape[:-2] + (wanted,), dtype=np.float32)
    if count > 0:
        signal, window_sum = _overlap_add(z[..., :count], n_fft, hop_length)
        y = _normalise(signal, window_sum)[..., half:half + wanted]
        out[..., :y.shape[-1]] = y
    return out


def stft_frames(read: ReadFn, n_samples: int, start_frame: int, stop_frame: int,
                n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> np.ndarray:
    """Frames ``[start_frame, stop_frame)`` of ``stft`` of the whole ``n_samples``-long signal.

    ``read(start, stop)`` returns samples ``[start, stop)`` as ``[C, stop - start]``;
    only the samples these frames cover are read, and the zeros beyond the track
    ends are supplied here. Returns complex64 ``[C, bins, stop_frame - start_frame]``.
    """
    return _spectra(frame_segment(read, n_samples, start_frame, stop_frame, n_fft, hop_length), n_fft, hop_length)


def frame_segment(read: ReadFn, n_samples: int, start_frame: int, stop_frame: int,
                  n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> np.ndarray:
    """The float32 samples ``[C, (k - 1) * hop + n_fft]`` that frames ``[start_frame, stop_frame)`` window,
    zeros beyond the track ends included: what :func:`stft_frames` transforms (uncentred, frame by frame)."""
    _check(n_fft, hop_length)
    total = num_frames(n_samples, hop_length)
    if not 0 <= start_frame < stop_frame <= total:
        raise ValueError(f"frame range [{start_frame}, {stop_frame}) empty or outside [0, {total})")
    half = n_fft // 2
    first = start_frame * hop_length - half
    last = (stop_frame - 1) * hop_length + n_fft - half
    lo, hi = max(first, 0), min(last, n_samples)
    block = np.asarray(read(lo, hi), dtype=np.float32)
    if block.ndim != 2 or block.shape[1] != hi - lo:
        raise ValueError(f"read({lo}, {hi}) returned shape {block.shape}, expected [C, {hi - lo}]")
    segment = np.zeros((block.shape[0], last - first), dtype=np.float32)
    segment[:, lo - first:hi - first] = block
    return segment


def frames_for_samples(start: int, stop: int, n_samples: int, n_fft: int = DEFAULT_N_FFT,
                       hop_length: int = DEFAULT_HOP) -> tuple[int, int]:
    """Frames ``[f0, f1)`` of the whole STFT whose inverse overlaps output samples ``[start, stop)``."""
    _check(n_fft, hop_length)
    if not 0 <= start <= stop:
        raise ValueError("need 0 <= start <= stop")
    total = num_frames(n_samples, hop_length)
    half = n_fft // 2
    f0 = min(max((start + half - n_fft) // hop_length + 1, 0), total)
    if stop == start:
        return f0, f0
    f1 = min(max((stop + half - 1) // hop_length + 1, f0), total)
    return f0, f1


def istft_samples(spec_frames: np.ndarray, first_frame: int, start: int, stop: int, n_samples: int,
                  n_fft: int = DEFAULT_N_FFT, hop_length: int = DEFAULT_HOP) -> np.ndarray:
    """Samples ``[start, stop)`` of ``istft(whole_spec, length=n_samples)`` as float32 ``[..., stop - start]``.

    ``spec_frames`` ``[..., bins, k]`` holds frames ``[first_frame, first_frame + k)``
    of the whole spectrogram and must include ``frames_for_samples(start, stop, ...)``.
    """
    _check(n_fft, hop_length)
    if not 0 <= start <= stop <= n_samples:
        raise ValueError(f"sample range [{start}, {stop}) outside [0, {n_samples}]")
    z = np.asarray(spec_frames)
    f0, f1 = frames_for_samples(start, stop, n_samples, n_fft, hop_length)
    if f0 < first_frame or f1 > first_frame + z.shape[-1]:
        raise ValueError(f"samples [{start}, {stop}) need frames [{f0}, {f1}); given "
                         f"[{first_frame}, {first_frame + z.shape[-1]})")
    out = np.zeros(z.shape[:-2] + (stop - start,), dtype=np.float32)
    if f1 > f0:
        signal, window_sum = _overlap_add(z[..., f0 - first_frame:f1 - first_frame], n_fft, hop_length)
        offset = start + n_fft // 2 - f0 * hop_length  # buffer index of output sample `start`
        piece = _normalise(signal, window_sum)[..., offset:offset + stop - start]
        out[..., :piece.shape[-1]] = piece
    return out
