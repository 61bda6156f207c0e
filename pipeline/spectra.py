"""A track's spectrogram frames, computed block by block from its scratch waveform: vocal-remover's
single-band STFT, or UVR's combined multi-band spectrogram (``transforms.multiband_stream``, which runs
the bands' resampling cascade into scratch files first). Both are served by frame range, so no step
holds a whole track's spectrogram.

The stems are inverted from a second, end-padded analysis: the track followed by zeros (n_fft of them
for a single band, the longest band window for UVR's tables), so the last real samples are covered by
full windows and every input sample comes back (docs/pipeline.md, "The ends of a stem").

A single band's frames of the waveform the model sees are computed once (``Spectra.keep``, the peak pass) into
a local scratch file, and the windows, the rows and the stems read them from there: the end-padded analysis
shares every frame but its last few with the plain one.

A single band's arithmetic runs where ``model.spectra`` says (:func:`spectral_ops`): numpy on the host, or
torch on the model's GPU. UVR's band tables always run on the host.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from stemforge.model import resolve_device
from stemforge.config.run import ModelConfig
from stemforge.pipeline.records import RecordFile
from stemforge.transforms import BandParams, end_padded_frames, num_frames
from stemforge.transforms.multiband_stream import MultibandStreamAnalysis
from stemforge.transforms.multiband_stream_io import read_padded
from stemforge.transforms.spectral_ops import DeviceSpectra, HostSpectra

Reader = Callable[[int, int], np.ndarray]
Compute = Callable[[int, int], np.ndarray]

_DEVICE_SPECTRA: dict[tuple[str, bool], DeviceSpectra] = {}


def spectral_ops(model: ModelConfig) -> HostSpectra:
    """Where a worker computes a resolved config's spectrograms: ``model.spectra`` "host" is numpy (exact
    against librosa), "device" torch on ``model.device`` (any device, a CPU included), "auto" the device when
    that is CUDA and the host otherwise. A band table's are always the host's. One per process and device."""
    if model.spectra == "host" or model.is_multiband:
        return HostSpectra()
    device = resolve_device(model.device)
    if model.spectra == "auto" and device.type != "cuda":
        return HostSpectra()
    key = (str(device), model.share_across_processes)
    if key not in _DEVICE_SPECTRA:
        _DEVICE_SPECTRA[key] = DeviceSpectra(device, host_windows=model.share_across_processes)
    return _DEVICE_SPECTRA[key]


class FrameCache:
    """Sequential access to frames ``[0, total)`` of a spectrogram, computed ``block_frames`` at a time."""

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


class Spectra:
    """Every frame source a track needs, built on first use and closed with the track.

    ``bands`` None is the single band of ``n_fft``/``hop_length``; otherwise UVR's table, analysed as
    an ASPP model (global channel flags) or a VR 5.1 one (``per_band``: channel conversions band by band).
    """

    def __init__(self, readers: dict[str, Reader], num_samples: int, n_fft: int, hop_length: int,
                 bands: BandParams | None, per_band: bool, scratch_dir: str, block_frames: int,
                 block_samples: int, ops: HostSpectra | None = None) -> None:
        self._readers = readers
        self.ops = ops or HostSpectra()
        self.num_samples = num_samples
        self._n_fft, self._hop = n_fft, hop_length
        self.bands, self._per_band = bands, per_band
        self._dir, self._block_frames, self._block_samples = scratch_dir, block_frames, block_samples
        self._analyses: dict[tuple[str, bool], MultibandStreamAnalysis] = {}
        self._stores: dict[str, FrameStore] = {}

    @property
    def bins(self) -> int:
        return self._n_fft // 2 + 1

    @property
    def block_frames(self) -> int:
        """Frames per computed (and kept) block: readers that go block by block read one or two of them."""
        return self._block_frames

    def keep(self, source: str) -> float:
        """Analyse ``source`` once, block by block, and return its peak magnitude; a single band's frames are
        kept in a scratch file that every later :meth:`frames` of ``source`` reads instead of a new STFT."""
        peak = 0.0
        if self.bands is not None:
            frames = self.frames(source)
            for start in range(0, frames.total, self._block_frames):
                peak = max(peak, float(np.abs(frames.get(start, min(start + self._block_frames, frames.total))).max()))
            return peak
        store = self._stores[source] = FrameStore(os.path.join(self._dir, f"frames-{source}.c64"), self.bins,
                                                  self._block_frames)
        total = num_frames(self.num_samples, self._hop)
        for start in range(0, total, self._block_frames):
            spec, block_peak = self.ops.frames_and_peak(self._readers[source], self.num_samples, start,
                                                        min(start + self._block_frames, total), self._n_fft, self._hop)
            peak = max(peak, block_peak)
            store.write(start, spec)
        return peak

    def frames(self, source: str, padded: bool = False) -> FrameCache:
        """The frames of the waveform ``source`` names (``padded``: followed by zeros, for the stems)."""
        read = self._readers[source]
        if self.bands is None:
            length = self.num_samples + (self._n_fft if padded else 0)
            plain = num_frames(self.num_samples, self._hop)
            total = end_padded_frames(self.num_samples, self._n_fft, self._hop) if padded else plain
            n = self.num_samples
            samples = (lambda a, b: read_padded(read, n, a, b)) if padded else read
            n_fft, hop, stft_frames = self._n_fft, self._hop, self.ops.frames

            store = self._stores.get(source)

            def compute(a: int, b: int) -> np.ndarray:
                if store is None:
                    return stft_frames(samples, length, a, b, n_fft, hop)
                if b <= plain:
                    return store.read(a, b)
                tail = stft_frames(samples, length, max(a, plain), b, n_fft, hop)  # the padded analysis' last frames
                return tail if a >= plain else np.concatenate([store.read(a, plain), tail], axis=-1)

            return FrameCache(compute, total, self.bins, self._block_frames)
        analysis = self._analysis(source, padded)
        return FrameCache(analysis.frames, analysis.total, self.bins, self._block_frames)

    def high_end(self, source: str) -> Compute:
        """The top-band rows of ``source`` that UVR's mirroring reads, frame range by frame range (padded)."""
        return self._analysis(source, True).high_end

    def _analysis(self, source: str, padded: bool) -> MultibandStreamAnalysis:
        """The streamed analysis of one waveform, built (its band scratch files written) on first use."""
        key = (source, padded)
        if key not in self._analyses:
            self._analyses[key] = MultibandStreamAnalysis(self._readers[source], self.num_samples, self.bands,
                                                          self._per_band, padded, self._dir, self._block_samples)
        return self._analyses[key]

    def close(self) -> None:
        for analysis in self._analyses.values():
            analysis.close()
        for store in self._stores.values():
            store.close()
        self._analyses, self._stores = {}, {}
