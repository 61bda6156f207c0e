"""vocal-remover's single band of ``n_fft``/``hop_length``: its frames, kept once, and its stems' inverse STFT.

The frames of the waveform the model sees are computed once (the peak pass) into a local scratch file, and
the windows, the rows and the stems read them from there: the end-padded analysis (the track followed by
``n_fft`` zeros, so the last real samples are covered by full windows and every input sample comes back:
docs/pipeline.md, "The ends of a stem") shares every frame but its last few with the plain one.

The arithmetic runs where ``model.spectra`` says (:func:`spectral_ops`): numpy on the host, or torch on the
model's GPU.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stemforge.config.run import ModelConfig
from stemforge.model import resolve_device
from stemforge.pipeline.engine.frame_source import Encode, FrameLayout, FrameReader, FrameSource, FrameStore, MaskRange
from stemforge.transforms import end_padded_frames, frames_for_samples, num_frames
from stemforge.transforms.multiband_stream_io import read_padded
from stemforge.transforms.spectral_ops import DeviceSpectralOps, HostSpectralOps
from stemforge.transforms.stft import ReadFn

_DEVICE_OPS: dict[tuple[str, bool], DeviceSpectralOps] = {}


def spectral_ops(model: ModelConfig) -> HostSpectralOps:
    """Where a worker computes a single band's spectral arithmetic: ``model.spectra`` "host" is numpy (exact
    against librosa), "device" torch on ``model.device`` (any device, a CPU included), "auto" the device when
    that is CUDA and the host otherwise. One per process and device."""
    if model.spectra == "host":
        return HostSpectralOps()
    device = resolve_device(model.device)
    if model.spectra == "auto" and device.type != "cuda":
        return HostSpectralOps()
    key = (str(device), model.share_across_processes)
    if key not in _DEVICE_OPS:
        _DEVICE_OPS[key] = DeviceSpectralOps(device, host_windows=model.share_across_processes)
    return _DEVICE_OPS[key]


@dataclass(frozen=True)
class SingleBandLayout(FrameLayout):
    """Rows of ``n_fft // 2 + 1`` linear bins."""

    def bin_hz(self, sample_rate: int) -> float | None:
        return sample_rate / self.config.n_fft

    def shard_metadata(self) -> dict[bytes, bytes]:
        return {}

    def open(self, readers: dict[str, ReadFn], num_samples: int, scratch_dir: str, block_frames: int,
             block_samples: int) -> SingleBandFrames:
        return SingleBandFrames(self, readers, num_samples, scratch_dir, block_frames, block_samples,
                                spectral_ops(self.config))


class SingleBandFrames(FrameSource):
    """A track's single-band STFT frames, kept in scratch files by :meth:`peak_pass`."""

    @cached_property
    def _stores(self) -> dict[str, FrameStore]:
        """The kept frames, by waveform name."""
        return {}

    def peak_pass(self, source: str) -> float:
        """The peak; ``source``'s frames are kept in a scratch file that every later :meth:`frames` of
        ``source`` reads instead of a new STFT."""
        peak, hop = 0.0, self.layout.config.hop_length
        store = self._stores[source] = FrameStore(os.path.join(self._dir, f"frames-{source}.c64"),
                                                  self.layout.bins, self._block_frames)
        total = num_frames(self.num_samples, hop)
        for start in range(0, total, self._block_frames):
            spec, block_peak = self._ops.frames_and_peak(self._readers[source], self.num_samples, start,
                                                         min(start + self._block_frames, total),
                                                         self.layout.config.n_fft, hop)
            peak = max(peak, block_peak)
            store.write(start, spec)
        return peak

    def frames(self, source: str, padded: bool = False) -> FrameReader:
        read, n = self._readers[source], self.num_samples
        n_fft, hop, stft_frames = self.layout.config.n_fft, self.layout.config.hop_length, self._ops.frames
        length = n + (n_fft if padded else 0)
        plain = num_frames(n, hop)
        total = end_padded_frames(n, n_fft, hop) if padded else plain
        samples = (lambda a, b: read_padded(read, n, a, b)) if padded else read

        store = self._stores.get(source)

        def compute(a: int, b: int) -> np.ndarray:
            if store is None:
                return stft_frames(samples, length, a, b, n_fft, hop)
            if b <= plain:
                return store.read(a, b)
            tail = stft_frames(samples, length, max(a, plain), b, n_fft, hop)  # the padded analysis' last frames
            return tail if a >= plain else np.concatenate([store.read(a, plain), tail], axis=-1)

        return FrameReader(compute, total, self.layout.bins, self._block_frames)

    def synthesise(self, masks: MaskRange, encode: Encode) -> None:
        """vocal-remover's inverse, block by block (on the host or the model's device). Each stem is encoded
        (and on the host, masked and inverted) in its own thread (numpy and libsndfile release the GIL) while
        the next block's STFT and mask are read; a stem's blocks are still written in order."""
        n_fft, hop = self.layout.config.n_fft, self.layout.config.hop_length
        padded = self.num_samples + n_fft
        cache = self.frames("mix", padded=True)
        # blocks of at most one kept spectrogram block: each read is then one or two of them, never a fresh
        # array large enough that the allocator maps and faults it in anew every time (docs/performance.md)
        block = max(min(self._block_samples // hop, self._block_frames), 1) * hop
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stemforge-stem") as workers:
            pending: list[Future | None] = [None, None]
            for start in range(0, self.num_samples, block):
                stop = min(start + block, self.num_samples)
                f0, f1 = frames_for_samples(start, stop, padded, n_fft, hop)
                stems = self._ops.stems(cache.get(f0, f1), masks.get(f0, f1), f0, start, stop, padded, n_fft, hop)
                for k, stem in enumerate(stems):
                    if pending[k] is not None:
                        pending[k].result()
                    pending[k] = workers.submit(lambda k=k, stem=stem: encode(k, stem()))
            for future in pending:
                if future is not None:
                    future.result()

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
