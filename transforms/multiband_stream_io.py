"""Block-wise building blocks of the streaming multi-band procedure: scratch waves read and written
by range, and resamplers whose blocks equal :func:`transforms.multiband.resample_band`'s whole-wave
output.

``polyphase`` (scipy's ``resample_poly``): output sample ``k`` is a fixed FIR over the input
samples within ``(10 · max(up, down) + down) / up`` of ``k · down / up``. A block computed from an
input segment that starts at a multiple of ``down`` (so the filter phases line up) with that much
context on both sides, zeros outside the wave, gives exactly the whole-wave values;
samples from ``ceil(n · up / down)`` on are 0, as the whole-wave output is zero-padded there.

libsamplerate (``sinc_*``): :class:`SincStream` feeds one ``samplerate.Resampler`` per channel
(the whole-wave code resamples each channel on its own) and, after the real input, explicit zeros,
which is what libsamplerate itself appends at the end of input; the values equal the one-shot
``samplerate.resample``'s. The one-shot's sample count is not a streaming quantity: libsamplerate
stops where ``position + 1/ratio`` passes the input length, then ``resample_band`` zero-pads to
``ceil(n · ratio)``. :func:`sinc_count` gives that count, ``min(floor(n · p / q), ceil(n · ratio))``
for ``ratio = p / q``. It is exact except where ``n · p / q`` is an integer and libsamplerate's
step ``1/ratio`` is not a binary fraction (in UVR's tables only the analysis resamplers
44.1 → 32 and 44.1 → 16 kHz, at ``n`` multiple of 441): there the position of the last sample
equals the end in exact arithmetic and libsamplerate's rounding, which depends on its internal
buffer layout, decides whether the last sample is kept (counted here) or left 0. With
``pad_tail`` that sample lies in the appended silence and is 0 either way. The synthesis
resamplers (ratios 2, 3, 4, 8, 16/3) step exactly and always keep it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable

import numpy as np
import samplerate
from scipy.signal import resample_poly

from stemforge.transforms.multiband import librosa_length

Reader = Callable[[int, int], np.ndarray]
_SINC_CHUNK = 4096  # input frames per libsamplerate call; each call's output buffer is ceil(len · ratio)


def read_padded(read: Reader, length: int, start: int, stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of the stereo wave of ``length`` samples that ``read`` serves, as
    float32 ``[2, stop - start]`` with zeros outside ``[0, length)``; ``read`` sees only ranges inside."""
    out = np.zeros((2, stop - start), np.float32)
    lo, hi = max(start, 0), min(stop, length)
    if hi > lo:
        block = np.asarray(read(lo, hi), np.float32)
        if block.shape != (2, hi - lo):
            raise ValueError(f"read({lo}, {hi}) returned shape {block.shape}, expected (2, {hi - lo})")
        out[:, lo - start:hi - start] = block
    return out


class ScratchWave:
    """A float32 stereo wave of ``length`` samples in a scratch file under ``directory``.

    Written and read by range with ``pwrite``/``pread`` (no memory map), one channel after the
    other; never-written samples read as 0. :meth:`close` removes the file."""

    def __init__(self, directory: str, length: int) -> None:
        self.length = length
        self._fd, self.path = tempfile.mkstemp(prefix="stemforge-band-", suffix=".f32", dir=directory)
        os.ftruncate(self._fd, 2 * 4 * length)

    def write(self, start: int, block: np.ndarray) -> None:
        """Store ``block`` ``[2, n]`` at samples ``[start, start + n)``; samples past the end are dropped."""
        block = np.asarray(block, np.float32)[:, :max(self.length - start, 0)]
        for channel in range(2):
            data = np.ascontiguousarray(block[channel]).tobytes()
            if os.pwrite(self._fd, data, 4 * (channel * self.length + start)) != len(data):
                raise OSError(f"short write to {self.path}")

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)``, inside ``[0, length]``, as float32 ``[2, stop - start]``."""
        if not 0 <= start <= stop <= self.length:
            raise ValueError(f"samples [{start}, {stop}) outside [0, {self.length}]")
        out = np.empty((2, stop - start), np.float32)
        for channel in range(2):
            data = os.pread(self._fd, 4 * (stop - start), 4 * (channel * self.length + start))
            if len(data) != 4 * (stop - start):
                raise OSError(f"short read from {self.path}")
            out[channel] = np.frombuffer(data, np.float32)
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            os.unlink(self.path)


def polyphase_factors(sr_in: int, sr_out: int) -> tuple[int, int]:
    """``(up, down)`` of ``resample_poly`` for the rates, reduced by their gcd."""
    g = math.gcd(sr_in, sr_out)
    return sr_out // g, sr_in // g


def polyphase_block(read: Reader, n_in: int, sr_in: int, sr_out: int, start: int, stop: int) -> np.ndarray:
    """Output samples ``[start, stop)`` of ``resample_band(wave, sr_in, sr_out, "polyphase")`` for the
    ``n_in``-sample stereo wave that ``read`` serves, reading only the input they depend on.
    Returns float32 ``[2, stop - start]``."""
    up, down = polyphase_factors(sr_in, sr_out)
    reach = (10 * max(up, down) + 2 * down) // up + 4  # input samples either side of k · down / up
    context = down * -(-reach // down)
    first = start // up  # segment origin: output first · up, input first · down (filter phases line up)
    last = -(-stop // up)
    segment = read_padded(read, n_in, first * down - context, last * down + context)
    y = resample_poly(segment, up, down, axis=-1)
    offset = context * up // down + start - first * up
    out = np.asarray(y[:, offset:offset + stop - start], np.float32)
    valid = -(-n_in * up // down) - start  # the whole wave's resample_poly output ends there
    if valid < out.shape[1]:
        out[:, max(valid, 0):] = 0
    return out


def sinc_count(n_in: int, sr_in: int, sr_out: int) -> int:
    """Samples the one-shot ``samplerate.resample`` keeps for ``n_in`` input samples (see the module
    docstring for the one case where libsamplerate's rounding may keep one fewer)."""
    p, q = polyphase_factors(sr_in, sr_out)
    return min(n_in * p // q, math.ceil(n_in * (sr_out / sr_in)))


class SincStream:
    """libsamplerate resampling of a stereo stream of ``n_in`` samples in total, block by block.

    :meth:`push` the input blocks in order, then :meth:`finish`; the outputs, concatenated, equal
    ``resample_band(wave, sr_in, sr_out, res_type)``: :func:`sinc_count` samples of libsamplerate's
    output, then zeros to ``length = ceil(n_in · ratio)``."""

    def __init__(self, sr_in: int, sr_out: int, res_type: str, n_in: int) -> None:
        self.ratio = sr_out / sr_in
        self.length = librosa_length(n_in, sr_in, sr_out)
        self._count = sinc_count(n_in, sr_in, sr_out)
        self._converters = [samplerate.Resampler(res_type, 1) for _ in range(2)]
        self._n_in, self._fed, self._made = n_in, 0, 0

    def push(self, block: np.ndarray) -> np.ndarray:
        """Resample the next input block ``[2, n]``; returns the float32 output ready so far."""
        block = np.asarray(block, np.float32)
        if self._fed + block.shape[1] > self._n_in:
            raise ValueError(f"more than the announced {self._n_in} input samples")
        self._fed += block.shape[1]
        return self._convert(block)

    def finish(self) -> np.ndarray:
        """The rest of the output after the last input block: libsamplerate's tail, then zeros."""
        if self._fed != self._n_in:
            raise ValueError(f"finish after {self._fed} of {self._n_in} input samples")
        parts = [np.zeros((2, 0), np.float32)]
        silence = np.zeros((2, _SINC_CHUNK), np.float32)
        while self._made < self._count:
            before = self._made
            parts.append(self._convert(silence))
            if self._made == before:
                raise RuntimeError("libsamplerate produced no output from its flush")
        parts.append(np.zeros((2, self.length - min(self._made, self._count)), np.float32))
        self._made = self.length
        return np.concatenate(parts, axis=1)

    def _convert(self, block: np.ndarray) -> np.ndarray:
        """Feed ``block`` in chunks; keep output only up to the one-shot's count."""
        parts = [np.zeros((2, 0), np.float32)]
        for a in range(0, block.shape[1], _SINC_CHUNK):
            chunk = block[:, a:a + _SINC_CHUNK]
            left, right = (c.process(np.ascontiguousarray(chunk[i]), self.ratio, False)
                           for i, c in enumerate(self._converters))
            if left.shape != right.shape:
                raise RuntimeError("libsamplerate gave the two channels different lengths")
            keep = min(left.shape[0], max(self._count - self._made, 0))
            self._made += left.shape[0]
            parts.append(np.stack([left[:keep], right[:keep]]))
        return np.concatenate(parts, axis=1)
