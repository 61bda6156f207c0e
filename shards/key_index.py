"""A committed run's key index: ``OUTPUT/runs/<run_id>.keys.parquet``, which source holds which track key.

Written at commit before the run manifest (which names it under ``"keys"``; the manifest stays the commit
point), so that a later run decides keys and skips from one small file per run instead of parsing every
manifest. Columns: ``track_key`` (sorted), ``source`` (None: a manifest of the oldest layout recorded keys
only), ``size`` and ``version`` (the content fingerprint, None when unknown); the run's identity in the
file's key-value metadata. A run committed before key indexes existed gives the same table from its manifest.

The file is bucketed: rows are grouped by ``bucket_of`` their key into one row group per bucket (listed in the
metadata as ``stemforge.buckets``), so the bucket of a join (``pipeline.keyjoin``) reads its own rows straight
from every run's index. A suffixed key (``key~1234abcd``) is also copied into its base key's bucket (``copy``),
where the sources of that base key look it up. An index written before buckets has no ``stemforge.buckets``.
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY_INDEX = pa.schema([("track_key", pa.string()), ("source", pa.string()), ("size", pa.int64()),
                       ("version", pa.string())])
META = ("run_id", "started_at", "fingerprint")  # stored as stemforge.<name>
BUCKETS = 64
SUFFIX = re.compile(r"~[0-9a-f]{8}$")
LAYOUT = b"stemforge.buckets"


def buckets_of(values: Iterable[str]) -> np.ndarray:
    """Each value's bucket: crc32 of its UTF-8, stable across processes and machines."""
    return np.fromiter((zlib.crc32(v.encode()) % BUCKETS for v in values), np.int64)


def bucket_rows(keys: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where committed records of these keys go: (row, bucket, copy) for each record's own bucket, plus a copy
    of each suffixed key in its base key's bucket when that differs."""
    own = buckets_of(keys)
    marked = np.asarray([i for i, key in enumerate(keys) if SUFFIX.search(key)], np.int64)
    bases = buckets_of(SUFFIX.sub("", keys[i]) for i in marked)
    moved = bases != own[marked]
    rows = np.concatenate([np.arange(len(keys)), marked[moved]])
    copy = np.concatenate([np.zeros(len(keys), bool), np.ones(int(moved.sum()), bool)])
    return rows, np.concatenate([own, bases[moved]]), copy


def key_index_name(run_id: str) -> str:
    """The key index's file name beside ``runs/<run_id>.json``."""
    return f"{run_id}.keys.parquet"


def _table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = list(records)
    return pa.table({name: [r.get(name) for r in rows] for name in KEY_INDEX.names}, schema=KEY_INDEX)


def key_index_bytes(records: Iterable[Mapping[str, Any]], run_id: str, started_at: str, fingerprint: str) -> bytes:
    """The key index of a run's ``sources`` records (track_key, source, size, version), sorted by key."""
    table = _table(records)
    rows, buckets, copy = bucket_rows(table["track_key"].to_pylist())
    table = table.take(rows).append_column("bucket", pa.array(buckets.astype(np.int16))).append_column(
        "copy", pa.array(copy)).sort_by([("bucket", "ascending"), ("track_key", "ascending"), ("source", "ascending")])
    present = np.unique(buckets).tolist()
    meta = {f"stemforge.{k}": v for k, v in zip(META, (run_id, started_at, fingerprint))}
    table = table.replace_schema_metadata({**meta, LAYOUT.decode(): json.dumps(present)})
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
        ordered = table["bucket"].to_numpy()
        for bucket in present:
            begin, end = np.searchsorted(ordered, [bucket, bucket + 1])
            writer.write_table(table.slice(begin, end - begin), row_group_size=int(end - begin))
    return sink.getvalue()


def _meta(schema: pa.Schema) -> dict[str, str]:
    return {name: (schema.metadata or {}).get(f"stemforge.{name}".encode(), b"").decode() for name in META}


def read_key_index(handle: IO[bytes]) -> tuple[dict[str, str], pa.Table]:
    """A key index file's run identity (run_id, started_at, fingerprint) and table."""
    table = pq.read_table(handle, use_threads=False)
    meta = _meta(table.schema)
    if "copy" in table.column_names:
        table = table.filter(pc.invert(table["copy"])).sort_by([("track_key", "ascending"), ("source", "ascending")])
    return meta, table.select(KEY_INDEX.names).cast(KEY_INDEX).replace_schema_metadata(None)


def is_bucketed(handle: IO[bytes]) -> bool:
    """Whether a key index file is grouped by bucket (``read_key_bucket`` reads it), from its footer."""
    return LAYOUT in (pq.read_schema(handle).metadata or {})


def read_key_bucket(handle: IO[bytes], bucket: int) -> tuple[dict[str, str], pa.Table]:
    """A bucketed key index's run identity and its records of one bucket (copies of suffixed keys included),
    read from that bucket's row group alone."""
    file = pq.ParquetFile(handle)
    schema = file.schema_arrow
    present = json.loads(schema.metadata[LAYOUT])
    if bucket in present:
        table = file.read_row_group(present.index(bucket), columns=KEY_INDEX.names, use_threads=False)
    else:
        table = KEY_INDEX.empty_table()
    return _meta(schema), table.cast(KEY_INDEX).replace_schema_metadata(None)


def manifest_key_index(manifest: Mapping[str, Any]) -> tuple[dict[str, str], pa.Table]:
    """The same from a run manifest of the old layout: its ``sources`` records, or (earlier still) only its
    ``tracks``, which name no source."""
    meta = {name: str(manifest.get(name, "")) for name in META}
    records = manifest.get("sources")
    if records is None:
        return meta, _table({"track_key": str(key)} for key in manifest.get("tracks", []))
    return meta, _table(records)
