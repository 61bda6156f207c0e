"""Which source holds which track key, and which listed sources an earlier run already committed.

The listing gives each source a base key (``pipeline.listing.sanitize_key``). Keys are stable: a source's key
never changes because another source appeared, and the committed history decides. Every committed run records
which source holds which key (its key index: key, source, size, version), so:

* a source listed twice (the same file through two inputs) is processed once, under a key it already
  holds, else under its smallest base key;
* a key that a committed run records for a source stays that source's; any other source with that base key
  gets ``{key}~{hash of its source}``;
* a key no committed run records goes to the first of its sources (sorted), the others get the suffix.

A listed source is skipped (``run.skip_existing``) when a committed run with the same fingerprint records its
key for the same source with the same content (size and version, where both sides know them). Manifests of
earlier versions, which record only ``tracks`` (keys), skip by key alone and name no holder.

The decisions work on batches (Arrow tables), in three steps that ``pipeline.keyjoin`` runs as a Beam join
spread by key: ``annotate`` (the refs of some base keys against the committed records of those keys),
``one_per_source`` (the refs of some sources), ``assign_keys`` (the refs of some base keys).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stemforge.pipeline.listing import MixRef, TrackRef, content_of
from stemforge.pipeline.storage import StorageOptions, filesystem, protocol_of, redact_uri

REFS = pa.schema([("source", pa.string()), ("track_key", pa.string()), ("size", pa.int64()),
                  ("version", pa.string()), ("stems", pa.string())])
RunMeta = tuple[str, str, bool]  # (started_at, run_id, reusable: its fingerprint is this run's)


def shown_source(ref: TrackRef) -> str:
    """A source as manifests record it: without credentials."""
    return redact_uri(ref.source)


def suffixed(key: str, source: str) -> str:
    """The key a source gets when another source holds its base key."""
    return f"{key}~{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def refs_table(refs: Sequence[TrackRef]) -> pa.Table:
    """A batch of refs as a table (a mix run's stems as JSON)."""
    return pa.table({
        "source": [r.source for r in refs], "track_key": [r.track_key for r in refs],
        "size": [r.size for r in refs], "version": [r.version for r in refs],
        "stems": [json.dumps(r.stems) if isinstance(r, MixRef) else None for r in refs]}, schema=REFS)


def table_refs(table: pa.Table) -> list[TrackRef]:
    """The refs of a table made by ``refs_table`` (or decided by ``assign_keys``)."""
    out: list[TrackRef] = []
    for source, key, size, version, stems in zip(*(table[name].to_pylist() for name in REFS.names)):
        if stems is None:
            out.append(TrackRef(source, key, size, version))
        else:
            out.append(MixRef(source, key, size, version, stems=tuple(tuple(s) for s in json.loads(stems))))
    return out


def _same(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    """Equal, or unknown on either side."""
    return pc.or_kleene(pc.or_kleene(pc.is_null(a), pc.is_null(b)), pc.fill_null(pc.equal(a, b), False))


def _first_of_groups(*columns: np.ndarray) -> np.ndarray:
    """Where a new group starts in rows sorted by the given columns."""
    if not len(columns[0]):
        return np.zeros(0, bool)
    change = np.zeros(len(columns[0]), bool)
    change[0] = True
    for column in columns:
        change[1:] |= column[1:] != column[:-1]
    return change


def _committed_rows(lookups: pa.Table, held: list[tuple[RunMeta, pa.Table]]) -> pa.Table:
    """The committed records of the looked-up keys, with the lookup they answer and their run's rank (earliest
    run first, by (started_at, run_id))."""
    wanted = lookups["track_key"].combine_chunks()
    ranks = {run: rank for rank, run in enumerate(sorted({meta[:2] for meta, _ in held}))}
    parts = [table.rename_columns(["track_key", "h_source", "h_size", "h_version"])
             .append_column("rank", pa.array(np.full(table.num_rows, ranks[started_at, run_id], np.int32)))
             .append_column("reusable", pa.array(np.full(table.num_rows, reusable)))
             for (started_at, run_id, reusable), table in held if table.num_rows]
    found = pa.concat_tables(parts) if parts else None
    if found is not None:  # one look-up of all runs' records: the key set is hashed once, not once per run
        found = found.filter(pc.is_in(found["track_key"], value_set=wanted))
    if found is None or not found.num_rows:
        return pa.table({"row": pa.array([], pa.int64())})
    return lookups.join(found, "track_key", join_type="inner", use_threads=False)


def annotate(refs: pa.Table, held: list[tuple[RunMeta, pa.Table]]) -> pa.Table:
    """The refs of some base keys, each with what the committed records of those keys say: ``holder_k`` (the
    source holding its base key), ``holds`` (its source holds its base or suffixed key), ``skip_k`` and
    ``skip_sfx`` (a reusable run committed it under its base or its suffixed key). ``held``: the committed
    records (``shards.key_index.KEY_INDEX``) of at least these keys, per run."""
    n = refs.num_rows
    sources, keys = refs["source"].to_pylist(), refs["track_key"].to_pylist()
    shown = [redact_uri(s) for s in sources]
    sfx = [suffixed(k, s) for k, s in zip(keys, sources)]
    rows = np.arange(n)
    lookups = pa.table({"row": np.concatenate([rows, rows]), "kind": np.repeat(np.array([0, 1], np.int8), n),
                        "track_key": pa.array(keys + sfx, pa.string()), "shown": pa.array(shown * 2, pa.string()),
                        "size": pa.concat_arrays([refs["size"].combine_chunks()] * 2),
                        "version": pa.concat_arrays([refs["version"].combine_chunks()] * 2)})
    joined = _committed_rows(lookups, held)
    skip = np.zeros((2, n), bool)
    holder_k: list[str | None] = [None] * n
    holds = np.zeros(n, bool)
    if "h_source" in joined.column_names:
        mine = pc.fill_null(pc.equal(joined["h_source"], joined["shown"]), False)
        committed = pc.and_(joined["reusable"], pc.or_(
            pc.is_null(joined["h_source"]),
            pc.and_(mine, pc.and_(_same(joined["h_size"], joined["size"]),
                                  _same(joined["h_version"], joined["version"])))))
        hit = joined.filter(committed)
        skip[hit["kind"].to_numpy(), hit["row"].to_numpy()] = True
        named = joined.filter(pc.is_valid(joined["h_source"])).sort_by(
            [("row", "ascending"), ("kind", "ascending"), ("rank", "ascending"), ("h_source", "ascending")])
        first = _first_of_groups(named["row"].to_numpy(), named["kind"].to_numpy())
        holders = named.filter(pa.array(first))
        holds[holders.filter(pc.equal(holders["h_source"], holders["shown"]))["row"].to_numpy()] = True
        base = holders.filter(pc.equal(holders["kind"], 0))
        for row, source in zip(base["row"].to_pylist(), base["h_source"].to_pylist()):
            holder_k[row] = source
    columns = {name: refs[name] for name in REFS.names}
    columns.update(shown=pa.array(shown, pa.string()), suffixed=pa.array(sfx, pa.string()),
                   holder_k=pa.array(holder_k, pa.string()), holds=holds, skip_k=skip[0], skip_sfx=skip[1])
    return pa.table(columns)


def one_per_source(annotated: pa.Table) -> pa.Table:
    """One ref per source (annotated): the one whose key it holds, else the one with the smallest key."""
    ordered = annotated.append_column("free", pc.invert(annotated["holds"])).sort_by(
        [("source", "ascending"), ("free", "ascending"), ("track_key", "ascending")])
    first = _first_of_groups(ordered["source"].to_numpy(zero_copy_only=False))
    return ordered.filter(pa.array(first)).drop_columns(["free"])


def assign_keys(annotated: pa.Table) -> pa.Table:
    """Distinct keys for the sources of some base keys (one ref per source): the base key's recorded holder
    keeps it (else its first source, sorted), every other source gets its suffixed key. Returns the refs
    (``REFS``) under their keys, with ``committed``: whether a reusable run committed this source so."""
    ordered = annotated.sort_by([("track_key", "ascending"), ("source", "ascending")])
    keys = ordered["track_key"].to_numpy(zero_copy_only=False)
    start = _first_of_groups(keys)
    group = np.cumsum(start) - 1
    shown = ordered["shown"]
    owner = pc.if_else(pc.is_null(ordered["holder_k"]), shown.take(np.flatnonzero(start)[group]), ordered["holder_k"])
    rows = np.flatnonzero(pc.equal(shown, owner).to_numpy())
    keeps = np.zeros(len(keys), bool)
    keeps[rows[np.unique(group[rows], return_index=True)[1]]] = True
    final = np.where(keeps, keys, ordered["suffixed"].to_numpy(zero_copy_only=False))
    committed = np.where(keeps, ordered["skip_k"].to_numpy(), ordered["skip_sfx"].to_numpy())
    return ordered.select(REFS.names).set_column(1, "track_key", pa.array(final, pa.string())).append_column(
        "committed", pa.array(committed))


def with_contents(refs: Sequence[TrackRef], storage_options: StorageOptions) -> list[TrackRef]:
    """The refs with their content fingerprints, asking the store for those the listing gave none (a manifest's
    entries; one filesystem per protocol for the batch); unknown when the store cannot say (the read then names
    the problem) and for a stem set."""
    systems: dict[str, Any] = {}
    out = []
    for ref in refs:
        if ref.size is not None or ref.version is not None or isinstance(ref, MixRef):
            out.append(ref)
            continue
        try:
            protocol = protocol_of(ref.source)
            if protocol not in systems:
                systems[protocol] = filesystem(ref.source, storage_options)[0]
            fs = systems[protocol]
            info = fs.info(fs._strip_protocol(ref.source))
        except Exception:  # noqa: BLE001 - any failure leaves the fingerprint unknown; reading the source reports it
            out.append(ref)
            continue
        out.append(replace(ref, **content_of(info)))
    return out


def source_record(ref: TrackRef) -> dict[str, Any]:
    """What a run manifest records of a committed source (its ``sources`` list)."""
    return {"track_key": ref.track_key, "source": shown_source(ref), "size": ref.size, "version": ref.version}
