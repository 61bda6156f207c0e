"""A run's frame layout, chosen once from its resolved model: the one place that asks whether a model reads
vocal-remover's single band (``pipeline.engine.single_band``) or a UVR band table's combined spectrogram
(``pipeline.engine.multi_band``). The track, the rows, the stems, the shard metadata and the report use the
:class:`~stemforge.pipeline.engine.frame_source.FrameLayout` and the frame sources it opens, never the band table.

Either source serves frames by range, so no step holds a whole track's spectrogram.
"""

from __future__ import annotations

from collections.abc import Mapping

from stemforge.config.run import ModelConfig
from stemforge.pipeline.engine.frame_source import FrameLayout, FrameReader, FrameSource
from stemforge.pipeline.engine.inference import ResolvedModel
from stemforge.pipeline.engine.multi_band import MultiBandLayout
from stemforge.pipeline.engine.single_band import SingleBandLayout
from stemforge.shards.schema import BAND_PARAMS_KEY
from stemforge.transforms import BandParams

__all__ = ["FrameLayout", "FrameReader", "FrameSource", "frame_layout", "recorded_layout", "table_layout"]


def table_layout(bands: BandParams | None, per_band: bool, config: ModelConfig) -> FrameLayout:
    """The layout of a model config (resolved: n_fft and hop_length are the table's) with band table
    ``bands`` (None: a single band)."""
    if bands is None:
        return SingleBandLayout(config)
    return MultiBandLayout(config, bands, per_band)


def recorded_layout(metadata: Mapping[bytes, bytes], config: ModelConfig) -> FrameLayout:
    """The layout a finished run's shards record (``FrameLayout.shard_metadata``; ``config`` is the run's resolved
    model config), for readers of its rows such as the report. It describes the rows only: a band table's
    channel conversions (``per_band``) are not recorded, so it is not for opening a track."""
    table = metadata.get(BAND_PARAMS_KEY)
    return table_layout(None if table is None else MultiBandLayout.recorded_table(table), False, config)


def frame_layout(model: ResolvedModel, config: ModelConfig) -> FrameLayout:
    """The layout of a run's resolved model (``Job.model``) and resolved model config."""
    return table_layout(model.bands, model.per_band, config)
