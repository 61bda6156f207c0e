"""UVR's band tables: a track's combined multi-band spectrogram (``transforms.multiband_stream``, which runs
the bands' resampling cascade into scratch files first), served by frame range, and UVR's band synthesis of
the stems (with its high-end mirroring when ``model.high_end`` asks for it). Always on the host.

The stems are synthesised from a second, end-padded analysis: the track followed by the longest band window
of zeros, so every input sample comes back (``transforms.multiband.tail_padding``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from stemforge.pipeline.engine.frame_source import Encode, FrameLayout, FrameReader, FrameSource, MaskRange
from stemforge.shards.schema import BAND_PARAMS_KEY
from stemforge.transforms import Band, BandParams, synthesise_stream
from stemforge.transforms.multiband_stream import MultibandStreamAnalysis
from stemforge.transforms.spectral_ops import HostSpectralOps
from stemforge.transforms.stft import ReadFn


@dataclass(frozen=True)
class MultiBandLayout(FrameLayout):
    """Rows of a band table's combined spectrogram (bins not evenly spaced), analysed as an ASPP model
    (global channel flags) or a VR 5.1 one (``per_band``: channel conversions band by band)."""

    bands: BandParams
    per_band: bool

    def bin_hz(self, sample_rate: int) -> float | None:
        return None

    def shard_metadata(self) -> dict[bytes, bytes]:
        """The band table the combined spectrogram's rows come from."""
        return {BAND_PARAMS_KEY: json.dumps(dataclasses.asdict(self.bands), sort_keys=True).encode()}

    @staticmethod
    def recorded_table(raw: bytes) -> BandParams:
        """The band table :meth:`shard_metadata` recorded."""
        table = json.loads(raw)
        return BandParams(**{**table, "bands": tuple(Band(**band) for band in table["bands"])})

    def open(self, readers: dict[str, ReadFn], num_samples: int, scratch_dir: str, block_frames: int,
             block_samples: int) -> MultiBandFrames:
        return MultiBandFrames(self, readers, num_samples, scratch_dir, block_frames, block_samples,
                               HostSpectralOps())


class MultiBandFrames(FrameSource):
    """A track's streamed band analyses, one per waveform and padding, built on first use."""

    layout: MultiBandLayout

    @cached_property
    def _analyses(self) -> dict[tuple[str, bool], MultibandStreamAnalysis]:
        """The analyses built so far, by waveform name and padding."""
        return {}

    def peak_pass(self, source: str) -> float:
        peak = 0.0
        frames = self.frames(source)
        for start in range(0, frames.total, self._block_frames):
            peak = max(peak, float(np.abs(frames.get(start, min(start + self._block_frames, frames.total))).max()))
        return peak

    def frames(self, source: str, padded: bool = False) -> FrameReader:
        analysis = self._analysis(source, padded)
        return FrameReader(analysis.frames, analysis.total, self.layout.bins, self._block_frames)

    def synthesise(self, masks: MaskRange, encode: Encode) -> None:
        """UVR's multi-band synthesis, streamed (``transforms.synthesise_stream``), one stem after the other."""
        layout = self.layout
        frames = self.frames("mix", padded=True)
        high_end = self._analysis("mix", True).high_end if layout.config.high_end == "mirroring" else None
        for k in (0, 1):
            def stem(f0: int, f1: int, k: int = k) -> np.ndarray:
                mask = masks.get(f0, f1)
                return (mask if k == 0 else 1 - mask) * frames.get(f0, f1)

            for audio in synthesise_stream(stem, frames.total, self.num_samples, layout.bands, layout.per_band,
                                           self._block_samples, high_end):
                encode(k, audio)

    def _analysis(self, source: str, padded: bool) -> MultibandStreamAnalysis:
        """The streamed analysis of one waveform, built (its band scratch files written) on first use."""
        key = (source, padded)
        if key not in self._analyses:
            self._analyses[key] = MultibandStreamAnalysis(self._readers[source], self.num_samples,
                                                          self.layout.bands, self.layout.per_band, padded,
                                                          self._dir, self._block_samples)
        return self._analyses[key]

    def close(self) -> None:
        for analysis in self._analyses.values():
            analysis.close()
        self._analyses.clear()
