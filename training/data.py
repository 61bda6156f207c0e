"""What `stemforge train` learns from: the committed shards of its roots, checked before any step, and split
into training and validation tracks by track key (never by row, so no track is on both sides)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stemforge import shards
from stemforge.shards.schema import shard_settings
from stemforge.training.config import DataConfig
from stemforge.transforms import check_geometry


class DataError(ValueError):
    """Data that cannot train this model, said in one line."""


@dataclass(frozen=True)
class TrainingData:
    """The shards' spectrogram settings, the target stem, and the track keys on each side of the split."""

    n_fft: int
    hop_length: int
    stems: tuple[str, ...]
    target: str
    train_keys: tuple[str, ...]
    val_keys: tuple[str, ...]


def held_out(key: str, rate: float) -> bool:
    """Whether a track key is a validation track: a stable hash of the key, so reruns and added data keep it."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < rate


def inspect_data(config: DataConfig, n_fft: int | None = None) -> TrainingData:
    """Read every committed shard's schema and track keys; refuse in one line shards of different spectrogram
    settings, a missing target or mixture column, or shards whose n_fft is not the model's (``n_fft``)."""
    if not config.roots:
        raise DataError("data.roots: no shard roots given (pass --data OUT)")
    try:
        paths = shards.committed_shards(list(config.roots), config.storage_options)
    except (FileNotFoundError, shards.PathEscape) as exc:
        raise DataError(str(exc)) from None
    if not paths:
        raise DataError(f"{', '.join(config.roots)}: the committed runs list no shards")
    found: dict[tuple[int, int, tuple[str, ...]], str] = {}
    keys: set[str] = set()
    for path in paths:
        parquet, handle = shards.open_shard_url(path, config.storage_options)
        try:
            schema = parquet.schema_arrow
            run = shard_settings(schema.metadata)
            found.setdefault((run.n_fft, run.hop_length, run.stems), path)
            column = parquet.read(columns=["track_key"], use_threads=shards.threads_for(handle)).column("track_key")
            keys.update(column.to_pylist())
        finally:
            if handle is not None:
                handle.close()
        if run.multiband:
            raise DataError(f"{path}: multi-band (UVR) shards cannot train vocal-remover's single-band net")
        target = config.target or run.stems[0]
        for column in ("mixture", target):
            if column not in schema.names or not shards.is_tensor(schema.field(column).type):
                raise DataError(f"{path}: no tensor column '{column}' (its columns: {', '.join(schema.names)})")
    if len(found) > 1:
        (a, path_a), (b, path_b) = list(found.items())[:2]
        raise DataError(f"shards differ: {path_a} has n_fft/hop/stems {a}, {path_b} has {b}")
    (shard_n_fft, hop, stems), path = next(iter(found.items()))
    try:  # validation scores tracks through the inverse STFT of the shards' geometry
        check_geometry(shard_n_fft, hop)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    if n_fft is not None and n_fft != shard_n_fft:
        raise DataError(f"the shards have n_fft {shard_n_fft}, the initial checkpoint's network {n_fft}")
    val = tuple(sorted(k for k in keys if held_out(k, config.val_rate)))
    if config.val_rate > 0 and not val and len(keys) > 1:  # a tiny set still validates on one track
        val = (min(keys, key=lambda k: hashlib.sha256(k.encode()).hexdigest()),)
    train = tuple(sorted(keys - set(val)))
    if not train:
        raise DataError(f"data.val_rate {config.val_rate} leaves no training track of {len(keys)}")
    return TrainingData(shard_n_fft, hop, stems, config.target or stems[0], train, val)
