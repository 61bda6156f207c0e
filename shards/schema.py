"""The row schema of a shard, in one place for its writer and its readers: the scalar columns of every row, a mix
run's two more, the tensor columns' type, the Parquet key-value metadata keys, and what a shard's recorded run
config says about its rows (:func:`shard_settings`, which `stemforge train` reads).

Which tensor columns a run has is the run's decision (``pipeline.sinks.tensor_columns``: the mixture, a mix
run's targets, the model's two stems, clean); this module is handed the names. Imports no config and no Beam.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from stemforge.shards.tensors import tensor_type

SCALAR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("track_key", pa.string()),
    ("source", pa.string()),
    ("variant", pa.int32()),
    ("segment", pa.int32()),
    ("start_frame", pa.int64()),
    ("num_frames", pa.int32()),
    ("sample_rate", pa.int32()),
    ("n_fft", pa.int32()),
    ("hop_length", pa.int32()),
    ("seed", pa.int64()),
    ("lowpass_cutoff_hz", pa.float32()),
    ("lowpass_q", pa.float32()),
    ("gain_db", pa.float32()),
    ("augment_params", pa.string()),
    ("stem_gain", pa.float32()),
)

MIX_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("mix_params", pa.string()),  # transforms.mixing.MixPlan as JSON: each target's track, offset, gain, drop
    ("dropped", pa.string()),  # the dropped (silent) targets, comma-separated; "" when none
)

# the shard's Parquet key-value metadata: the run's resolved config (redacted), its checkpoint's sha256, and for
# UVR's multi-band models the band table the combined spectrogram's rows come from
CONFIG_KEY = b"stemforge.config"
CHECKPOINT_KEY = b"stemforge.checkpoint_sha256"
BAND_PARAMS_KEY = b"stemforge.band_params"


def row_schema(tensors: Sequence[str], bins: int, segment_frames: int, dtype: str, mix: bool,
               metadata: Mapping[bytes, bytes]) -> pa.Schema:
    """The exact schema of a run's rows: the scalar columns (and a mix run's), then ``tensors`` in order, each
    ``[2, bins, segment_frames]`` of ``dtype`` ("float16" or "float32"), with ``metadata``."""
    tensor = tensor_type(pa.float16() if dtype == "float16" else pa.float32(), [2, bins, segment_frames])
    scalars = SCALAR_COLUMNS + (MIX_COLUMNS if mix else ())
    fields = [pa.field(name, kind) for name, kind in scalars]
    fields += [pa.field(name, tensor, nullable=False) for name in tensors]
    return pa.schema(fields, metadata=dict(metadata))


@dataclass(frozen=True)
class ShardSettings:
    """The spectrogram geometry of a run's rows and the stems its target columns hold."""

    n_fft: int
    hop_length: int
    stems: tuple[str, ...]  # a mix run's ground-truth targets, else the model's two separated stems
    multiband: bool  # UVR multi-band spectrograms (a band table was set)


def shard_settings(metadata: Mapping[bytes, bytes]) -> ShardSettings:
    """The settings recorded in a shard's Parquet key-value metadata (KeyError when it has none)."""
    run = json.loads(metadata[CONFIG_KEY])
    model, mix = run["model"], run.get("mix")
    stems = tuple(mix["stems"]) if mix else tuple(model["stems"])
    return ShardSettings(model["n_fft"], model["hop_length"], stems, bool(model.get("band_params")))
