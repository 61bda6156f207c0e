"""A run's frame layout, chosen once from its resolved model: the one place that asks whether a model reads
vocal-remover's single band (``pipeline.single_band``) or a UVR band table's combined spectrogram
(``pipeline.multi_band``). The track, the rows, the stems, the shard metadata and the report use the
:class:`~stemforge.pipeline.frame_source.FrameLayout` and the frame sources it opens, never the band table.

Either source serves frames by range, so no step holds a whole track's spectrogram.
"""

from __future__ import annotations

from stemforge.config.run import ModelConfig
from stemforge.pipeline.frame_source import FrameCache, FrameLayout, FrameSource
from stemforge.pipeline.inference import ResolvedModel
from stemforge.pipeline.multi_band import MultiBandLayout
from stemforge.pipeline.single_band import SingleBandLayout
from stemforge.transforms import BandParams

__all__ = ["FrameCache", "FrameLayout", "FrameSource", "frame_layout", "table_layout"]


def table_layout(bands: BandParams | None, per_band: bool, config: ModelConfig) -> FrameLayout:
    """The layout of a model config (resolved: n_fft and hop_length are the table's) with band table
    ``bands`` (None: a single band)."""
    if bands is None:
        return SingleBandLayout(config)
    return MultiBandLayout(config, bands, per_band)


def frame_layout(model: ResolvedModel, config: ModelConfig) -> FrameLayout:
    """The layout of a run's resolved model (``Job.model``) and resolved model config."""
    return table_layout(model.bands, model.per_band, config)
