"""Key assignment and skip-existing as a Beam join, spread by key (the rules: ``pipeline.keys``).

The listed refs come in batches (Arrow tables), cut into ``BUCKETS`` buckets by a stable hash of the base key
(``shards.key_index.buckets_of``); each bucket decides on its own:

    ref batches ─ by base key ─┐
                               ├─ CoGroupByKey ─ annotate ─ by source ─ GroupByKey ─ one_per_source
    runs/*.json ─ old indexes ─┘      ─ by base key ─ GroupByKey ─ assign_keys ─ decided batches
               └─ bucketed key index paths (side input) ─ annotate reads its bucket's row group of each

A key index written at commit is stored bucket by bucket (``shards.key_index``), so a bucket reads its own
committed records straight from every run's index and the history never goes through the shuffle; only a
key index written before buckets, or a manifest from before key indexes, is cut by bucket and joined. No step
holds the whole history or all the inputs: a bucket holds its own refs and the committed records of its
keys, so a cluster spreads the work, and the launcher reads nothing. A suffixed committed key
(``key~1234abcd``) also goes to the bucket of its base key, where the sources of that base key look it up.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.keys import RunMeta, annotate, assign_keys, one_per_source
from stemforge.pipeline.storage import filesystem, join, options_for, retrying
from stemforge.shards.key_index import (bucket_rows, buckets_of, is_bucketed, manifest_key_index, read_key_bucket,
                                        read_key_index)
from stemforge.shards.manifest import read_run, run_files

BUCKETED = "bucketed"
COMPRESSED = pa.ipc.IpcWriteOptions(compression="lz4")
COMPRESS_BYTES = 64 << 10  # smaller batches go as they are: compressing costs more than it saves there


def pack(table: pa.Table) -> bytes:
    """A batch as Arrow IPC bytes (lz4 when it is large): cheap to shuffle, whatever the runner's coder."""
    sink = pa.BufferOutputStream()
    options = COMPRESSED if table.nbytes > COMPRESS_BYTES else pa.ipc.IpcWriteOptions()
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def unpack(data: bytes) -> pa.Table:
    """The batch ``pack`` made."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def split(table: pa.Table, buckets: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """The rows of a table grouped by their bucket, one (bucket, rows) per bucket that has any."""
    order = np.argsort(buckets, kind="stable")
    ordered, sorted_buckets = table.take(order), buckets[order]
    starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]]) if len(order) else []
    bounds = [*starts, len(order)]
    for begin, end in zip(bounds[:-1], bounds[1:]):
        yield int(sorted_buckets[begin]), ordered.slice(begin, end - begin)


def _concat(batches: Iterable[bytes]) -> pa.Table | None:
    tables = [unpack(b) for b in batches]
    return pa.concat_tables(tables) if tables else None


def ref_buckets(packed: bytes, column: str) -> Iterator[tuple[int, bytes]]:
    """A batch of refs cut by the bucket of one column (``track_key``: base key; ``source``)."""
    table = unpack(packed)
    for bucket, rows in split(table, buckets_of(table[column].to_pylist())):
        yield bucket, pack(rows)


def held_buckets(meta: RunMeta, held: pa.Table) -> Iterator[tuple[int, tuple[RunMeta, bytes]]]:
    """One run's committed records cut by bucket; a suffixed key also goes to its base key's bucket."""
    rows, buckets, _ = bucket_rows(held["track_key"].to_pylist())
    yield from ((b, (meta, pack(part))) for b, part in split(held.take(rows), buckets))


def _opened(fs: Any, path: str, read: Callable[[Any], Any]) -> Any:
    with fs.open(path, "rb") as handle:
        return read(handle)


def _run_meta(meta: dict[str, str], job: Job) -> RunMeta:
    return meta["started_at"], meta["run_id"], meta["fingerprint"] == job.fingerprint


class ReadHeld(beam.DoFn):
    """The committed records of one run, by bucket, when its key index is not bucketed (``shards.key_index``)
    or it has none (committed before key indexes existed: what its manifest records). A bucketed index goes
    out by its path (tag ``BUCKETED``): each bucket of the join reads its own row group of it."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def process(self, run: tuple[str, str | None]) -> Iterator[tuple[int, tuple[RunMeta, bytes]]]:
        manifest_path, index_path = run
        options = self._job.config.storage_options
        fs, _ = filesystem(join(self._job.config.output.uri, "runs"), options)
        if index_path is not None:
            if retrying(lambda: _opened(fs, index_path, is_bucketed), f"read {index_path}", options):
                yield beam.pvalue.TaggedOutput(BUCKETED, index_path)
                return
            meta, held = retrying(lambda: read_key_index(io.BytesIO(fs.cat_file(index_path))), f"read {index_path}",
                                  options)
        else:
            uri = fs.unstrip_protocol(manifest_path)
            manifest = retrying(lambda: read_run(uri, options_for(uri, options)), f"read {manifest_path}", options)
            if not manifest.committed:
                return
            meta, held = manifest_key_index(manifest.raw)
        yield from held_buckets(_run_meta(meta, self._job), held)


def bucket_held(bucket: int, indexes: list[str], job: Job) -> list[tuple[RunMeta, pa.Table]]:
    """One bucket's committed records from each bucketed key index: that bucket's row group alone."""
    options = job.config.storage_options
    fs, _ = filesystem(join(job.config.output.uri, "runs"), options)
    read = functools.partial(read_key_bucket, bucket=bucket)
    held = []
    for path in indexes:
        meta, table = retrying(functools.partial(_opened, fs, path, read), f"read {path}", options)
        held.append((_run_meta(meta, job), table))
    return held


def committed_runs(output_uri: str, job: Job) -> list[tuple[str, str | None]]:
    """The committed runs under an output root, from one listing of ``runs/`` (``shards.manifest.run_files``):
    each manifest with its key index, when it has one."""
    options = job.config.storage_options
    fs, path = filesystem(output_uri, options)
    return retrying(lambda: run_files(fs, path.rstrip("/")), f"list {output_uri}/runs", options)


def _annotated(item: tuple[int, dict[str, list[Any]]], indexes: list[str], job: Job) -> Iterator[tuple[int, bytes]]:
    bucket, grouped = item
    refs = _concat(grouped["refs"])
    if refs is None:
        return
    held = [(meta, unpack(data)) for meta, data in grouped["held"]] + bucket_held(bucket, sorted(indexes), job)
    annotated = annotate(refs, held)
    yield from ((b, pack(rows)) for b, rows in split(annotated, buckets_of(annotated["source"].to_pylist())))


def _one_per_source(item: tuple[int, Iterable[bytes]]) -> Iterator[tuple[int, bytes]]:
    kept = one_per_source(_concat(item[1]))
    yield from ((b, pack(rows)) for b, rows in split(kept, buckets_of(kept["track_key"].to_pylist())))


class DecideKeys(beam.PTransform):
    """Batches of listed refs (packed ``pipeline.keys.REFS`` tables) → batches of decided refs: each source
    once, under its key, with ``committed`` (``pipeline.keys.assign_keys``)."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        job = self._job
        runs = (batches.pipeline | "OutputRoot" >> beam.Create([job.config.output.uri])
                | "CommittedRuns" >> beam.FlatMap(committed_runs, job)
                | "SpreadRuns" >> beam.Reshuffle()
                | "ReadHeld" >> beam.ParDo(ReadHeld(job)).with_outputs(BUCKETED, main="held"))
        refs = batches | "ByBaseKey" >> beam.FlatMap(ref_buckets, "track_key")
        return ({"refs": refs, "held": runs.held} | "JoinHistory" >> beam.CoGroupByKey()
                | "Annotate" >> beam.FlatMap(_annotated, beam.pvalue.AsList(runs[BUCKETED]), job)
                | "GroupBySource" >> beam.GroupByKey()
                | "OnePerSource" >> beam.FlatMap(_one_per_source)
                | "GroupByKey" >> beam.GroupByKey()
                | "AssignKeys" >> beam.Map(lambda item: pack(assign_keys(_concat(item[1])))))
