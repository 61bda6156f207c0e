"""Zero-phase biquad low-pass: EBEN's ``TemporalTransforms.remove_hf``.

EBEN simulates band-limited (in-ear / bone-conducted) capture by

1. reflection-padding the signal by ``pad`` samples at both ends,
2. running the RBJ-cookbook biquad low-pass (``torchaudio.functional.lowpass_biquad``)
   forward, then over the time-reversed result and reversing back (filt-filt),
3. cutting the padding off again.

The result has zero phase (a symmetric impulse response) and magnitude
``|H(f)|²``: −6.02 dB at the cutoff for Q = 1/√2 and 24 dB/octave above it.

Choices, and how they differ from the neighbours:

* no clamping: torchaudio's ``lfilter`` clamps to [−1, 1] by default; a clip is
  not part of a low-pass and would break the zero-phase symmetry, so none here;
* filtering in float64, float32 in and out;
* padding as numpy/torch ``"reflect"`` (edge sample not repeated), ``pad``
  clipped to ``frames − 1``; zero initial filter state on both passes, as
  torchaudio's ``lfilter`` — not scipy ``filtfilt``'s odd extension with
  steady-state ``lfilter_zi`` start;
* a cutoff at or above Nyquist is a pass-through (the signal, copied as float32).

:class:`StreamingZeroPhaseLowpass` computes exactly the same output chunk by
chunk with memory proportional to the chunk, for tracks too long to hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter

DEFAULT_Q = 0.7071
DEFAULT_PAD = 10000
DEFAULT_CHUNK_FRAMES = 1 << 18
_BLOCK_FRAMES = 1 << 15

ReadFn = Callable[[int, int], np.ndarray]


def lowpass_biquad_coefficients(sample_rate: float, cutoff_hz: float, q: float = DEFAULT_Q
                                ) -> tuple[np.ndarray, np.ndarray]:
    """RBJ-cookbook low-pass ``(b, a)``, normalised so that ``a[0] == 1`` (float64)."""
    if sample_rate <= 0 or cutoff_hz <= 0 or q <= 0:
        raise ValueError("sample_rate, cutoff_hz and q must be positive")
    w0 = 2.0 * math.pi * cutoff_hz / sample_rate
    alpha = math.sin(w0) / (2.0 * q)
    cos_w0 = math.cos(w0)
    a0 = 1.0 + alpha
    b = np.array([(1.0 - cos_w0) / 2.0, 1.0 - cos_w0, (1.0 - cos_w0) / 2.0]) / a0
    a = np.array([1.0, -2.0 * cos_w0 / a0, (1.0 - alpha) / a0])
    return b, a


def _validate(sample_rate: float, cutoff_hz: float, q: float, pad: int) -> None:
    if sample_rate <= 0 or cutoff_hz <= 0 or q <= 0:
        raise ValueError("sample_rate, cutoff_hz and q must be positive")
    if pad < 0:
        raise ValueError("pad must be >= 0")


def is_pass_through(sample_rate: float, cutoff_hz: float) -> bool:
    """True when the cutoff is at or above Nyquist, where the filter is skipped."""
    return cutoff_hz >= sample_rate / 2.0


def _read_reflect_padded(read: ReadFn, n: int, p: int, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` of the input reflection-padded by ``p`` (``p < n``), as float64.

    Reads only the input frames that the range mirrors: padded index ``i < p``
    is input ``p - i``; ``i >= p + n`` is input ``2n - 2 + p - i``.
    """
    pieces = []
    left_stop = min(stop, p)
    if start < left_stop:
        pieces.append(read(p - left_stop + 1, p - start + 1)[..., ::-1])
    mid_start, mid_stop = max(start, p), min(stop, p + n)
    if mid_start < mid_stop:
        pieces.append(read(mid_start - p, mid_stop - p))
    right_start = max(start, p + n)
    if right_start < stop:
        mirror = 2 * n - 2 + p
        pieces.append(read(mirror - stop + 1, mirror - right_start + 1)[..., ::-1])
    if len(pieces) == 1:
        return pieces[0].astype(np.float64)
    return np.concatenate(pieces, axis=-1).astype(np.float64)


def zero_phase_lowpass(samples: np.ndarray, sample_rate: float, cutoff_hz: float, q: float = DEFAULT_Q,
                       pad: int = DEFAULT_PAD) -> np.ndarray:
    """Filt-filt RBJ biquad low-pass of float32 ``[..., frames]`` (usually ``[channels, frames]``).

    Vectorised over all leading axes; see the module docstring for the exact
    procedure. Returns a new float32 array of the same shape. Both passes run
    in cache-sized blocks with the filter state carried across (exactly equal
    to one whole-signal ``lfilter``), keeping one float64 copy of the padded
    signal instead of three.
    """
    _validate(sample_rate, cutoff_hz, q, pad)
    x = np.asarray(samples)
    n = x.shape[-1]
    if n == 0 or is_pass_through(sample_rate, cutoff_hz):
        return x.astype(np.float32, copy=True)
    b, a = lowpass_biquad_coefficients(sample_rate, cutoff_hz, q)
    flat = x.reshape(-1, n)
    p = min(pad, n - 1)
    length = n + 2 * p
    forward = np.empty((flat.shape[0], length))
    state = np.zeros((flat.shape[0], 2))
    for start in range(0, length, _BLOCK_FRAMES):
        stop = min(start + _BLOCK_FRAMES, length)
        block = _read_reflect_padded(lambda s, e: flat[:, s:e], n, p, start, stop)
        forward[:, start:stop], state = lfilter(b, a, block, axis=-1, zi=state)
    out = np.empty((flat.shape[0], n), dtype=np.float32)
    state = np.zeros((flat.shape[0], 2))
    for stop in range(length, p, -_BLOCK_FRAMES):
        start = max(stop - _BLOCK_FRAMES, 0)
        backward, state = lfilter(b, a, forward[:, start:stop][:, ::-1], axis=-1, zi=state)
        lo, hi = max(start, p), min(stop, p + n)
        if lo < hi:
            out[:, lo - p:hi - p] = backward[:, ::-1][:, lo - start:hi - start]
    return out.reshape(x.shape)


class StreamingZeroPhaseLowpass:
    """``zero_phase_lowpass`` of a long signal, read chunk by chunk, bit-identical to the whole.

    ``read(start, stop)`` must return the input frames ``[start, stop)`` as
    ``[channels, stop - start]``. The reflection padding belongs to the track's
    ends. Construction makes two passes over the input (forward, then backward
    from the end), storing only the two-value biquad states at every chunk
    boundary of the padded signal; :meth:`read` then recomputes a chunk's
    forward output from its stored state and runs the backward filter from the
    stored backward state. Memory is O(chunk_frames) plus 2×channels floats per
    chunk boundary; the input is read three times.
    """

    def __init__(self, read: ReadFn, n_frames: int, sample_rate: float, cutoff_hz: float,
                 q: float = DEFAULT_Q, pad: int = DEFAULT_PAD, chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> None:
        _validate(sample_rate, cutoff_hz, q, pad)
        if chunk_frames <= 0 or n_frames < 0:
            raise ValueError("chunk_frames must be positive and n_frames >= 0")
        self._read_input = read
        self.n_frames = n_frames
        self.chunk_frames = chunk_frames
        self._pass_through = n_frames == 0 or is_pass_through(sample_rate, cutoff_hz)
        self._cached: tuple[int, np.ndarray] | None = None
        if self._pass_through:
            return
        self._b, self._a = lowpass_biquad_coefficients(sample_rate, cutoff_hz, q)
        self._p = min(pad, n_frames - 1)
        self._padded_frames = n_frames + 2 * self._p
        n_chunks = -(-self._padded_frames // chunk_frames)
        self._forward_state: list[np.ndarray] = []
        state: np.ndarray | None = None
        for j in range(n_chunks):
            x = self._padded_chunk(j)
            if state is None:
                state = np.zeros(x.shape[:-1] + (2,))
            self._forward_state.append(state)
            _, state = lfilter(self._b, self._a, x, axis=-1, zi=state)
        self._backward_state: list[np.ndarray] = [np.empty(0)] * n_chunks
        state = np.zeros_like(self._forward_state[0])
        for j in range(n_chunks - 1, -1, -1):
            self._backward_state[j] = state
            if j:
                y = lfilter(self._b, self._a, self._padded_chunk(j), axis=-1, zi=self._forward_state[j])[0]
                _, state = lfilter(self._b, self._a, y[..., ::-1], axis=-1, zi=state)

    def _padded_chunk(self, j: int) -> np.ndarray:
        """Chunk ``j`` of the reflection-padded input, as float64."""
        start = j * self.chunk_frames
        stop = min(start + self.chunk_frames, self._padded_frames)
        return _read_reflect_padded(self._read_input_checked, self.n_frames, self._p, start, stop)

    def _read_input_checked(self, start: int, stop: int) -> np.ndarray:
        block = np.asarray(self._read_input(start, stop))
        if block.ndim != 2 or block.shape[1] != stop - start:
            raise ValueError(f"read({start}, {stop}) returned shape {block.shape}, expected [C, {stop - start}]")
        return block

    def _output_chunk(self, j: int) -> np.ndarray:
        """Filt-filt output over padded chunk ``j`` (float32)."""
        if self._cached is not None and self._cached[0] == j:
            return self._cached[1]
        y = lfilter(self._b, self._a, self._padded_chunk(j), axis=-1, zi=self._forward_state[j])[0]
        z = lfilter(self._b, self._a, y[..., ::-1], axis=-1, zi=self._backward_state[j])[0][..., ::-1]
        out = z.astype(np.float32)
        self._cached = (j, out)
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        """Filtered frames ``[start, stop)`` as float32 ``[channels, stop - start]``."""
        if not 0 <= start <= stop <= self.n_frames:
            raise ValueError(f"frame range [{start}, {stop}) outside [0, {self.n_frames}]")
        if self._pass_through:
            return np.asarray(self._read_input_checked(start, stop), dtype=np.float32).copy()
        c = self.chunk_frames
        lo, hi = start + self._p, stop + self._p
        pieces = [
            self._output_chunk(j)[:, max(lo, j * c) - j * c:min(hi, (j + 1) * c) - j * c]
            for j in range(lo // c, -(-hi // c))
        ]
        if not pieces:
            return np.zeros((self._forward_state[0].shape[0], 0), dtype=np.float32)
        return np.concatenate(pieces, axis=-1)
