"""A committed run's key index: ``OUTPUT/runs/<run_id>.keys.parquet``, which source holds which track key.

Written at commit before the run manifest (which names it under ``"keys"``; the manifest stays the commit
point), so that a later run decides keys and skips from one small file per run instead of parsing every
manifest. Columns: ``track_key`` (sorted), ``source`` (None: a manifest of the oldest layout recorded keys
only), ``size`` and ``version`` (the content fingerprint, None when unknown); the run's identity in the
file's key-value metadata. A run committed before key indexes existed gives the same table from its manifest.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

KEY_INDEX = pa.schema([("track_key", pa.string()), ("source", pa.string()), ("size", pa.int64()),
                       ("version", pa.string())])
META = ("run_id", "started_at", "fingerprint")  # stored as stemforge.<name>


def key_index_name(run_id: str) -> str:
    """The key index's file name beside ``runs/<run_id>.json``."""
    return f"{run_id}.keys.parquet"


def _table(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = list(records)
    return pa.table({name: [r.get(name) for r in rows] for name in KEY_INDEX.names}, schema=KEY_INDEX)


def key_index_bytes(records: Iterable[Mapping[str, Any]], run_id: str, started_at: str, fingerprint: str) -> bytes:
    """The key index of a run's ``sources`` records (track_key, source, size, version), sorted by key."""
    table = _table(records).sort_by([("track_key", "ascending"), ("source", "ascending")])
    meta = dict(zip(META, (run_id, started_at, fingerprint)))
    table = table.replace_schema_metadata({f"stemforge.{k}": v for k, v in meta.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_key_index(handle: IO[bytes]) -> tuple[dict[str, str], pa.Table]:
    """A key index file's run identity (run_id, started_at, fingerprint) and table."""
    table = pq.read_table(handle, use_threads=False)
    meta = {name: (table.schema.metadata or {}).get(f"stemforge.{name}".encode(), b"").decode() for name in META}
    return meta, table.select(KEY_INDEX.names).cast(KEY_INDEX).replace_schema_metadata(None)


def manifest_key_index(manifest: Mapping[str, Any]) -> tuple[dict[str, str], pa.Table]:
    """The same from a run manifest of the old layout: its ``sources`` records, or (earlier still) only its
    ``tracks``, which name no source."""
    meta = {name: str(manifest.get(name, "")) for name in META}
    records = manifest.get("sources")
    if records is None:
        return meta, _table({"track_key": str(key)} for key in manifest.get("tracks", []))
    return meta, _table(records)
