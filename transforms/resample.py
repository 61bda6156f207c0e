"""Sample-rate conversion with soxr (high quality), always streamed in chunks.

A long file is never resampled in one piece: :class:`Resampler` keeps soxr's
stream state between blocks, so decode → resample → process can run block by
block in bounded memory, and :func:`resample` is the same stream over a whole
array. The total output length is known in advance (:func:`resampled_length`).
"""

from __future__ import annotations

import numpy as np
import soxr

DEFAULT_CHUNK_FRAMES = 1 << 17
QUALITY = "HQ"


def resampled_length(n_frames: int, sr_in: int, sr_out: int) -> int:
    """Exact number of output frames for ``n_frames`` input frames: n·sr_out/sr_in rounded half up.

    That is soxr's total when a stream is flushed (checked in the tests).
    """
    if n_frames < 0 or sr_in <= 0 or sr_out <= 0:
        raise ValueError("n_frames must be >= 0 and sample rates positive")
    return (2 * n_frames * sr_out + sr_in) // (2 * sr_in)


class Resampler:
    """Streaming resampler for float32 ``[channels, n]`` blocks; identity when the rates match.

    Feed consecutive blocks to :meth:`process`; pass ``last=True`` with the final
    block (it may be empty) to flush soxr's delay line. Not shareable between
    threads: make one per stream.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int) -> None:
        if sr_in <= 0 or sr_out <= 0:
            raise ValueError("sample rates must be positive")
        if channels <= 0:
            raise ValueError("channels must be positive")
        self.sr_in, self.sr_out, self.channels = int(sr_in), int(sr_out), int(channels)
        self._stream = (
            None if self.sr_in == self.sr_out
            else soxr.ResampleStream(self.sr_in, self.sr_out, self.channels, dtype="float32", quality=QUALITY)
        )
        self._finished = False

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next block ``[channels, n]``; returns ``[channels, m]`` float32."""
        if self._finished:
            raise RuntimeError("Resampler already flushed with last=True")
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[0] != self.channels:
            raise ValueError(f"expected [{self.channels}, n] samples, got shape {chunk.shape}")
        self._finished = last
        if self._stream is None:
            return chunk.copy()
        out = self._stream.resample_chunk(np.ascontiguousarray(chunk.T), last=last)
        return np.ascontiguousarray(out.reshape(-1, self.channels).T)


def resample(samples: np.ndarray, sr_in: int, sr_out: int,
             chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> np.ndarray:
    """Resample float32 ``[channels, n]`` from ``sr_in`` to ``sr_out`` in chunks of ``chunk_frames``.

    Output has exactly ``resampled_length(n, sr_in, sr_out)`` frames; a copy of
    the input when the rates are equal.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2:
        raise ValueError(f"expected [channels, frames], got shape {samples.shape}")
    if chunk_frames <= 0:
        raise ValueError("chunk_frames must be positive")
    resampler = Resampler(sr_in, sr_out, samples.shape[0])
    n = samples.shape[1]
    out = np.empty((samples.shape[0], resampled_length(n, sr_in, sr_out)), dtype=np.float32)
    written = 0
    starts = range(0, n, chunk_frames) if n else [0]
    for start in starts:
        stop = min(start + chunk_frames, n)
        block = resampler.process(samples[:, start:stop], last=stop >= n)
        out[:, written:written + block.shape[1]] = block
        written += block.shape[1]
    if written != out.shape[1]:
        raise RuntimeError(f"soxr produced {written} frames, expected {out.shape[1]}")
    return out
