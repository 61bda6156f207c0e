"""What every frame source of a track offers, whatever its bands and wherever its arithmetic runs.

A run's rows have one frequency layout (:class:`FrameLayout`: vocal-remover's single band, or a UVR band
table's combined spectrogram), decided once from the run's resolved model
(``pipeline.engine.layout.frame_layout``).
Each track opens it into a :class:`FrameSource`: the peak pass, frames by range, a model window's and a row's
magnitudes, and the stems' synthesis. Nothing outside these classes asks which layout a run has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from stemforge.config.run import ModelConfig
from stemforge.pipeline.engine.records import RecordFile
from stemforge.transforms.spectral_ops import HostSpectralOps
from stemforge.transforms.stft import ReadFn

Compute = Callable[[int, int], np.ndarray]
Encode = Callable[[int, np.ndarray], None]


class MaskRange(Protocol):
    """A track's mask by frame range (``pipeline.engine.track.MaskReader``), frames past its end included."""

    def get(self, start: int, stop: int) -> np.ndarray: ...


class FrameReader:
    """Frames ``[0, total)`` of a spectrogram by range (zero outside), computed ``block_frames`` at a time and
    the last computed block held, so sequential reads compute each block once."""

    def __init__(self, compute: Compute, total: int, bins: int, block_frames: int) -> None:
        self._compute = compute
        self._total = total
        self._bins = bins
        self._block = max(block_frames, 1)
        self._start = 0
        self._spec = np.zeros((2, bins, 0), np.complex64)

    @property
    def total(self) -> int:
        return self._total

    def get(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop); zero outside [0, total)."""
        lo, hi = max(start, 0), min(stop, self._total)
        if hi <= lo:
            return np.zeros((2, self._bins, stop - start), np.complex64)
        if not (self._start <= lo and hi <= self._start + self._spec.shape[-1]):
            # computed from a block boundary: a kept spectrogram (FrameStore) is read in whole stored blocks
            first = lo - lo % self._block
            self._spec = self._compute(first, min(max(hi, first + self._block), self._total))
            self._start = first
        out = self._spec[..., lo - self._start : hi - self._start]
        if lo == start and hi == stop:
            return out
        padded = np.zeros(out.shape[:-1] + (stop - start,), np.complex64)
        padded[..., lo - start : hi - start] = out
        return padded


class FrameStore:
    """Complex64 frames ``[2, bins, n]`` in a local scratch file, in blocks of ``block`` frames (each stored as
    computed, so writing and reading copy whole rows, never transpose), read back by any frame range."""

    def __init__(self, path: str, bins: int, block: int) -> None:
        self._file = RecordFile(path, block * 2 * bins * 8)
        self._bins, self._block = bins, block
        self._lengths: dict[int, int] = {}

    def write(self, start: int, spec: np.ndarray) -> None:
        """Store block ``start // block`` (``start`` a multiple of the block, ``spec`` at most a block long)."""
        self._file.write(start // self._block, spec.astype(np.complex64, copy=False))
        self._lengths[start // self._block] = spec.shape[-1]

    def read(self, start: int, stop: int) -> np.ndarray:
        first, last = start // self._block, (stop - 1) // self._block
        parts = [self._file.read(i, (2, self._bins, self._lengths[i]), np.complex64)
                 [..., max(start - i * self._block, 0) : stop - i * self._block] for i in range(first, last + 1)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)

    def close(self) -> None:
        self._file.close()


class FrameSource(ABC):
    """A track's spectrogram frames, by waveform name (the readers') and frame range, built on first use and
    closed with the track. ``block_frames`` frames are computed (and kept) at a time; ``block_samples`` is the
    stems' block."""

    def __init__(self, layout: FrameLayout, readers: dict[str, ReadFn], num_samples: int, scratch_dir: str,
                 block_frames: int, block_samples: int, ops: HostSpectralOps) -> None:
        self.layout = layout
        self.num_samples = num_samples
        self._readers, self._dir, self._ops = readers, scratch_dir, ops
        self._block_frames, self._block_samples = block_frames, block_samples

    @abstractmethod
    def peak_pass(self, source: str) -> float:
        """Analyse ``source`` once, block by block, and return its peak magnitude (vocal-remover's window
        normalisation); a source may keep what it computed for later :meth:`frames` of ``source``."""

    @abstractmethod
    def frames(self, source: str, padded: bool = False) -> FrameReader:
        """The frames of the waveform ``source`` names (``padded``: followed by zeros, for the stems)."""

    @abstractmethod
    def synthesise(self, masks: MaskRange, encode: Encode) -> None:
        """Invert mask·X and (1−mask)·X of the mixture's end-padded frames block by block, calling
        ``encode(k, samples)`` for stem ``k`` (0, 1) with each block in order; every input sample comes back."""

    @abstractmethod
    def close(self) -> None:
        """Close the scratch files."""

    def window(self, spec: np.ndarray, peak: float) -> np.ndarray | torch.Tensor:
        """A model window of frames ``spec``: ``|spec| / peak`` (on the model's device when computed there)."""
        return self._ops.window(spec, peak)

    def columns(self, spec: np.ndarray, mask: np.ndarray | None, dtype: np.dtype, frames: int) -> list[np.ndarray]:
        """A row's columns of frames ``spec``: |X|, and with a mask mask·|X| and (1−mask)·|X|, in ``dtype``
        zero-padded to ``frames``."""
        return self._ops.columns(spec, mask, dtype, frames)


@dataclass(frozen=True)
class FrameLayout(ABC):
    """A run's spectrogram geometry: what its rows' bins are, what shard metadata records it, and the frame
    source a track opens. ``config``: the resolved model config (n_fft, hop_length, spectra, high_end)."""

    config: ModelConfig

    @property
    def bins(self) -> int:
        return self.config.n_fft // 2 + 1

    @abstractmethod
    def bin_hz(self, sample_rate: int) -> float | None:
        """The width of a row's bin in Hz; None when the bins are not evenly spaced."""

    @abstractmethod
    def shard_metadata(self) -> dict[bytes, bytes]:
        """The shard metadata (beyond config and checkpoint) that says what the rows' bins are."""

    @abstractmethod
    def open(self, readers: dict[str, ReadFn], num_samples: int, scratch_dir: str, block_frames: int,
             block_samples: int) -> FrameSource:
        """The frame source of one track's waveforms (``readers``, ``num_samples`` long each)."""
