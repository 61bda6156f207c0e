"""Output writers: Parquet spectrogram shards, the error log and the run's commit record."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.storage import StorageOptions, join, publish_bytes, publish_file

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
)


@dataclass(frozen=True)
class ErrorRecord:
    """One rejected input, as written to errors/*.jsonl."""

    source: str
    track_key: str
    stage: str
    error: str
    message: str


@dataclass(frozen=True)
class TrackDone:
    """One committed track variant, for the run manifest's counts."""

    track_key: str
    variant: int
    rows: int
    audio_seconds: float


def tensor_columns(config: Config) -> list[str]:
    """The spectrogram columns, in order: mixture, the two stems, and clean when kept."""
    return ["mixture", *config.model.stems, *(["clean"] if config.augment.keep_clean else [])]


def shard_schema(config: Config, checkpoint_sha256: str) -> pa.Schema:
    """The exact Parquet schema of a run's shards, with the resolved config in its metadata."""
    shape = [2, config.model.n_fft // 2 + 1, config.output.segment_frames]
    value_type = pa.float16() if config.output.spectrogram_dtype == "float16" else pa.float32()
    tensor = pa.fixed_shape_tensor(value_type, shape)
    fields = [pa.field(name, kind) for name, kind in SCALAR_COLUMNS]
    fields += [pa.field(name, tensor, nullable=False) for name in tensor_columns(config)]
    return pa.schema(fields, metadata={
        b"stemforge.config": json.dumps(config.redacted(), sort_keys=True).encode(),
        b"stemforge.checkpoint_sha256": checkpoint_sha256.encode(),
    })


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts of scalars and [2, bins, frames] arrays) as a table of the shard schema."""
    arrays = []
    for field in schema:
        if isinstance(field.type, pa.FixedShapeTensorType):
            stacked = np.stack([row[field.name] for row in rows])
            arrays.append(pa.FixedShapeTensorArray.from_numpy_ndarray(stacked))
        else:
            arrays.append(pa.array([row[field.name] for row in rows], type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class ShardWriter:
    """Writes rows into Parquet shards of bounded size; each finished shard is published whole.

    Shards are named uniquely per writer, so a retried bundle never overwrites a committed
    file; only the shards a run's manifest lists belong to the dataset.
    """

    def __init__(self, config: Config, checkpoint_sha256: str, run_id: str, storage_options: StorageOptions) -> None:
        self._config = config
        self._schema = shard_schema(config, checkpoint_sha256)
        self._run_id = run_id
        self._storage_options = storage_options
        self._pending: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._scratch = tempfile.mkdtemp(prefix="stemforge-shards-")

    def add(self, row: dict[str, Any]) -> list[str]:
        """Buffer one row; returns the shards (relative to the output) this completed."""
        self._pending.append(row)
        if len(self._pending) >= self._config.output.rows_per_row_group:
            return self._flush()
        return []

    def _flush(self) -> list[str]:
        if not self._pending:
            return []
        if self._writer is None:
            self._path = os.path.join(self._scratch, f"{uuid.uuid4().hex}.parquet")
            self._writer = pq.ParquetWriter(self._path, self._schema, compression="zstd")
        self._writer.write_table(rows_to_table(self._pending, self._schema))
        self._pending = []
        if os.path.getsize(self._path) >= self._config.output.max_shard_bytes:
            return [self._publish()]
        return []

    def _publish(self) -> str:
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        relative = f"spectrograms/{self._run_id}/part-{uuid.uuid4().hex}.parquet"
        publish_file(self._path, join(self._config.output.uri, relative), self._storage_options)
        os.remove(self._path)
        return relative

    def close(self) -> list[str]:
        """Write what is buffered and publish the open shard."""
        done = self._flush()
        if self._writer is not None:
            done.append(self._publish())
        return done


def versions() -> dict[str, str]:
    """Versions of what produced a run, for its manifest."""
    out = {"python": platform.python_version()}
    for name in ("torch", "apache-beam", "pyarrow", "stemforge"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def write_errors(errors: Iterable[ErrorRecord], config: Config, run_id: str, storage_options: StorageOptions) -> None:
    """errors/{run_id}.jsonl, one line per rejected input (nothing when there are none)."""
    lines = [json.dumps(asdict(e), ensure_ascii=False, sort_keys=True) for e in errors]
    if lines:
        data = ("\n".join(sorted(lines)) + "\n").encode()
        publish_bytes(data, join(config.output.uri, "errors", f"{run_id}.jsonl"), storage_options)


def write_manifest(manifest: dict[str, Any], config: Config, storage_options: StorageOptions) -> str:
    """runs/{run_id}.json, written last and atomically: the run's commit record."""
    uri = join(config.output.uri, "runs", f"{manifest['run_id']}.json")
    publish_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode(), uri, storage_options)
    return uri
