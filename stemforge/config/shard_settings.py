"""What a shard's recorded run config (its ``stemforge.config`` metadata) says about its rows, read by the key
names of the run schema (``stemforge.config.run``) but not through its validators: shards written under older rules
still read, and their readers (`stemforge train`) decide what to refuse. Imports no Beam."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

CONFIG_KEY = b"stemforge.config"


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
