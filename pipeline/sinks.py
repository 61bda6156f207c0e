"""Output writers: Parquet spectrogram shards, the error log and the run's commit record."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from stemforge.config.run import Config
from stemforge.pipeline.engine.rows import tensor_columns
from stemforge.pipeline.scratch import make_scratch
from stemforge.pipeline.storage import (
    StorageOptions,
    filesystem,
    join,
    modified_time,
    options_for,
    publish_bytes,
    publish_file,
    redact_uri,
    scrub,
)
from stemforge.shards import is_tensor
from stemforge.shards.key_index import key_index_name
from stemforge.shards.manifest import RunDetail, RunManifest, committed_runs, detail_name
from stemforge.shards.row_group import RowGroup, rows_per_group
from stemforge.shards.schema import CHECKPOINT_KEY, CONFIG_KEY, row_schema

if TYPE_CHECKING:
    # only for type checking: the frame sources import torch, and the command line's help and inspect stay light
    from stemforge.pipeline.engine.frame_source import FrameLayout


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
    stem_gain: float | None = None  # the common gain ``rescale`` put on the stems (None: no stems written)
    clipped: dict[str, int] | None = None  # ``clamp``: samples clipped per stem, when any were
    seconds: float = 0.0  # the worker's time assembling it (stems and rows), not the fused stages downstream
    decoded: str = ""  # TrackMeta.decoded: "ffmpeg:counted", "libsndfile:declared", ...


def shard_schema(config: Config, checkpoint_sha256: str, layout: FrameLayout) -> pa.Schema:
    """The exact Parquet schema of a run's shards (``shards.schema.row_schema``), with the resolved config and
    what the rows' bins are (``layout``) in its metadata."""
    metadata = {CONFIG_KEY: json.dumps(config.redacted(), sort_keys=True).encode(),
                CHECKPOINT_KEY: checkpoint_sha256.encode(), **layout.shard_metadata()}
    return row_schema(tensor_columns(config), layout.bins, config.output.segment_frames,
                      config.output.spectrogram_dtype, config.mix is not None, metadata)


class ShardWriter:
    """Writes rows into Parquet shards of bounded size; each finished shard is published whole.

    Memory stays at about three row groups (``output.row_group_bytes``) whatever a track's length:
    the group's buffers, Arrow's encoded pages and their compressed copy.

    A shard is named after its content: a hash of the (track_key, variant, segment) keys of its
    rows, in order. So a retried bundle rewrites the same names with the same bytes, and two
    bundles never share a name; only the shards a run's manifest lists belong to the dataset.
    """

    def __init__(self, config: Config, checkpoint_sha256: str, layout: FrameLayout, run_id: str,
                 storage_options: StorageOptions, staging: str | None = None) -> None:
        self._config = config
        self._schema = shard_schema(config, checkpoint_sha256, layout)
        self._run_id = run_id
        self._storage_options = storage_options
        self._staging = staging
        self._group: RowGroup | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._keys = hashlib.sha256()
        self._scratch = make_scratch("shards-")

    def add(self, row: dict[str, Any]) -> list[str]:
        """Buffer one row; returns the shards (relative to the output) this completed."""
        if self._group is None:
            self._group = RowGroup(self._schema, rows_per_group(self._schema, self._config.output.row_group_bytes))
        self._group.add(row)
        self._keys.update(json.dumps([row["track_key"], row["variant"], row["segment"]]).encode() + b"\n")
        if self._group.full:
            return self._flush()
        return []

    def _flush(self) -> list[str]:
        if self._group is None or not self._group.rows:
            return []
        if self._writer is None:
            self._path = os.path.join(self._scratch, f"{uuid.uuid4().hex}.parquet")
            # Dictionary encoding only for the strings: on spectrograms it costs twice the write time
            # and gives larger files (measured: 0.48 s and 29 MB against 0.21 s and 24 MB per minute).
            # No min/max statistics for the tensors: no reader prunes by a spectrogram's range, and they
            # cost a fifth of the write (docs/performance.md).
            strings = [field.name for field in self._schema if field.type == pa.string()]
            scalars = [field.name for field in self._schema if not is_tensor(field.type)]
            self._writer = pq.ParquetWriter(self._path, self._schema, compression="zstd", use_dictionary=strings,
                                            write_statistics=scalars)
        self._writer.write_table(self._group.table())
        self._group.clear()
        if os.path.getsize(self._path) >= self._config.output.max_shard_bytes:
            return [self._publish()]
        return []

    def _publish(self) -> str:
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        relative = f"spectrograms/{self._run_id}/part-{self._keys.hexdigest()[:32]}.parquet"
        self._keys = hashlib.sha256()
        publish_file(self._path, join(self._config.output.uri, relative), self._storage_options, self._staging)
        os.remove(self._path)
        return relative

    def close(self) -> list[str]:
        """Write what is buffered, publish the open shard and remove the local scratch folder."""
        try:
            done = self._flush()
            if self._writer is not None:
                done.append(self._publish())
            return done
        finally:
            shutil.rmtree(self._scratch, ignore_errors=True)


def versions() -> dict[str, str]:
    """Versions of what produced a run, for its manifest."""
    out = {"python": platform.python_version()}
    for name in ("torch", "apache-beam", "pyarrow", "stemforge"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def write_errors(errors: Iterable[ErrorRecord], config: Config, run_id: str, storage_options: StorageOptions,
                 staging: str | None = None) -> None:
    """errors/{run_id}.jsonl, one line per rejected input (nothing when there are none)."""
    lines = [json.dumps(asdict(ErrorRecord(redact_uri(e.source), e.track_key, e.stage, e.error,
                                           scrub(e.message, storage_options))), ensure_ascii=False, sort_keys=True)
             for e in errors]
    if lines:
        data = ("\n".join(sorted(lines)) + "\n").encode()
        publish_bytes(data, join(config.output.uri, "errors", f"{run_id}.jsonl"), storage_options, staging)


def write_manifest(manifest: dict[str, Any], config: Config, storage_options: StorageOptions,
                   staging: str | None = None) -> str:
    """runs/{run_id}.json, written last and atomically: the run's commit record."""
    uri = join(config.output.uri, "runs", f"{manifest['run_id']}.json")
    publish_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode(), uri, storage_options, staging)
    return uri


def run_detail(manifest: dict[str, Any], config: Config) -> RunDetail:
    """A committed run's per-track record (tracks, sources, timing, clipping), in either manifest layout."""
    folder = join(config.output.uri, "runs")
    return RunManifest.from_dict(manifest, folder, options_for(folder, config.storage_options)).detail()


def _newest(fs: Any, folder: str) -> float | None:
    """The newest modification time of any file under a folder (None: empty or unknown)."""
    times = [modified_time(info) for info in fs.find(folder, detail=True).values()]
    known = [t for t in times if t is not None]
    return max(known) if known else (None if times else 0.0)


def clean_leftovers(config: Config, run_id: str, storage_options: StorageOptions, now: float) -> list[str]:
    """Removes what runs that died (SIGKILL, lost launcher) left behind; returns what it removed.

    A run is dead when ``runs/{id}.json`` does not exist and nothing under ``_tmp/{id}/`` or
    ``spectrograms/{id}/`` was written for ``run.clean_after_seconds``; its two folders go, and its key index
    if it died at commit. The
    current run's own id (a re-run of a dead run under the same id) is always cleaned. Of a committed
    run whose commit did not finish (its ``_tmp/{id}/`` is left), that folder and any shard its manifest does
    not list (a failed bundle attempt) go too; a finished commit removed those itself
    (``pipeline.commit.remove_orphans``), so a launch never lists a finished run's shards.
    A live run elsewhere keeps writing, so it is never older than the threshold.
    """
    fs, root = filesystem(config.output.uri, storage_options)
    fs.invalidate_cache()
    runs_of = committed_runs(config.output.uri, options_for(config.output.uri, storage_options))
    committed = {run.run_id: set(run.shards) for run in runs_of}
    threshold = config.run.clean_after_seconds
    runs: dict[str, list[str]] = {}
    for area in ("_tmp", "spectrograms"):
        if fs.isdir(f"{root}/{area}"):
            for folder in fs.ls(f"{root}/{area}", detail=False):
                runs.setdefault(folder.rstrip("/").rsplit("/", 1)[-1], []).append(folder.rstrip("/"))
    removed = []
    for name, folders in sorted(runs.items()):
        if name in committed:
            doomed = [f for f in folders if f.endswith(f"/_tmp/{name}")]
            listed = {f"{root}/{shard}" for shard in committed[name]}
            for folder in folders if doomed else ():
                if folder.endswith(f"/spectrograms/{name}"):
                    for path, info in fs.find(folder, detail=True).items():
                        stamp = modified_time(info)
                        if path not in listed and (stamp is None or now - stamp >= threshold):
                            doomed.append(path)
        else:
            newest = [_newest(fs, folder) for folder in folders]
            stale = all(t is not None and now - t >= threshold for t in newest)
            doomed = folders if name == run_id or stale else []
            for written in (key_index_name(name), detail_name(name)):  # just before the manifest it never got
                if doomed and fs.exists(f"{root}/runs/{written}"):
                    doomed.append(f"{root}/runs/{written}")
        for path in doomed:
            fs.rm(path, recursive=True)
            removed.append(path)
    tmp = f"{root}/_tmp"
    if fs.isdir(tmp) and not fs.ls(tmp):
        fs.rmdir(tmp)
    return removed
