"""A committed run, typed: ``OUTPUT/runs/<run_id>.json`` (the commit point) and its per-track detail.

The JSON manifest holds what is decided once per run (counts, config, checkpoint, versions, the shard list) and
names two Parquet files beside it, both written before it: ``"keys"`` (``shards.key_index``: which source holds
which track key) and ``"detail"`` (``<run_id>.tracks.parquet``: one row per track variant the run assembled,
with its timing and what ``output.clip`` did to it). A manifest of the old layout has no ``"detail"`` and
carries the same as inline lists (``tracks``, ``sources``, ``timing``, ``clipping``); :meth:`RunManifest.detail`
reads either. :func:`committed_runs` is the one answer to "what is committed under this root".
"""

from __future__ import annotations

import io
import json
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from stemforge.shards.key_index import key_index_name, read_key_index

DETAIL = pa.schema([
    ("track_key", pa.string()), ("variant", pa.int32()),
    ("committed", pa.bool_()),  # every variant of its track was assembled: the track is in the dataset
    ("audio_seconds", pa.float64()), ("prepare_seconds", pa.float64()), ("assemble_seconds", pa.float64()),
    ("decoded", pa.string()),  # which decoder read the source, and whether its length was declared or counted
    ("gain", pa.float64()),  # the common gain ``rescale`` put on its stems (None: no stems written)
    ("clamped", pa.string()),  # ``clamp``: samples clipped per stem as JSON (None: none were)
])
TIMING = ("track_key", "variant", "audio_seconds", "prepare_seconds", "assemble_seconds", "decoded")


def detail_name(run_id: str) -> str:
    """The detail file's name beside ``runs/<run_id>.json``."""
    return f"{run_id}.tracks.parquet"


def detail_bytes(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A run's detail file: one row per track variant (the columns of ``DETAIL``), sorted by key and variant."""
    rows = list(rows)
    table = pa.table({name: [r.get(name) for r in rows] for name in DETAIL.names}, schema=DETAIL)
    sink = io.BytesIO()
    pq.write_table(table.sort_by([("track_key", "ascending"), ("variant", "ascending")]), sink, compression="zstd")
    return sink.getvalue()


@dataclass(frozen=True)
class RunDetail:
    """A run's per-track record, whichever layout it was committed in."""

    tracks: list[str]  # the committed track keys, sorted
    sources: list[dict[str, Any]]  # per committed track: track_key, source, size, version
    timing: list[dict[str, Any]] | None  # per assembled track variant (None: an older stemforge recorded none)
    clipping: dict[str, Any]  # mode, and the rescaled and clamped track variants


def _clipping(mode: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    rescaled = [{"track_key": r["track_key"], "variant": r["variant"], "gain": r["gain"]}
                for r in rows if r["gain"] is not None and r["gain"] != 1.0]
    clamped = [{"track_key": r["track_key"], "variant": r["variant"], "samples": json.loads(r["clamped"])}
               for r in rows if r["clamped"]]
    return {"mode": mode, "rescaled": rescaled, "clamped": clamped}


@dataclass(frozen=True)
class RunManifest:
    """One run manifest: its identity, counts and shard list typed, the rest (config, checkpoint, versions,
    ...) in ``raw``; ``folder`` is the ``runs/`` folder it was read from, where its Parquet files are."""

    run_id: str
    started_at: str
    status: str
    fingerprint: str
    counts: dict[str, Any]
    shards: list[str]
    keys: str | None  # the key index's file name (None: committed before key indexes)
    detail_file: str | None  # the detail file's name (None: the old layout, detail inline)
    raw: dict[str, Any]
    folder: str = ""
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], folder: str = "",
                  storage_options: dict[str, Any] | None = None) -> RunManifest:
        """A manifest's JSON object, read from ``folder`` (a ``runs/`` folder URL)."""
        return cls(run_id=str(raw.get("run_id", "")), started_at=str(raw.get("started_at", "")),
                   status=str(raw.get("status", "")), fingerprint=str(raw.get("fingerprint", "")),
                   counts=dict(raw.get("counts") or {}), shards=list(raw.get("shards") or []),
                   keys=raw.get("keys"), detail_file=raw.get("detail"), raw=raw, folder=folder.rstrip("/"),
                   storage_options=dict(storage_options or {}))

    @property
    def committed(self) -> bool:
        """Whether the run committed."""
        return self.status == "committed"

    def _open(self, name: str) -> Any:
        fs, path = fsspec.core.url_to_fs(f"{self.folder}/{name}", **self.storage_options)
        return io.BytesIO(fs.cat_file(path))

    def clip_counts(self) -> tuple[Any, int, int]:
        """``output.clip``'s mode and how many track variants it rescaled and clamped, without the detail."""
        clipping = self.raw.get("clipping") or {}
        if self.detail_file is None:
            return clipping.get("mode"), len(clipping.get("rescaled", [])), len(clipping.get("clamped", []))
        return clipping.get("mode"), int(self.counts.get("rescaled", 0)), int(self.counts.get("clamped", 0))

    def detail(self) -> RunDetail:
        """The per-track record: from the detail file, or the old layout's inline lists."""
        raw = self.raw
        if self.detail_file is None:
            clipping = raw.get("clipping") or {}
            return RunDetail(tracks=list(raw.get("tracks", [])), sources=list(raw.get("sources", [])),
                             timing=raw.get("timing"),
                             clipping={"mode": clipping.get("mode"), "rescaled": list(clipping.get("rescaled", [])),
                                       "clamped": list(clipping.get("clamped", []))})
        rows = pq.read_table(self._open(self.detail_file)).cast(DETAIL).to_pylist()
        sources = read_key_index(self._open(self.keys))[1].to_pylist() if self.keys else []
        return RunDetail(tracks=sorted({r["track_key"] for r in rows if r["committed"]}), sources=sources,
                         timing=[{name: r[name] for name in TIMING} for r in rows],
                         clipping=_clipping((raw.get("clipping") or {}).get("mode"), rows))

    def old_layout(self) -> dict[str, Any]:
        """The manifest as one object with its detail inline, as the old layout wrote it."""
        detail = self.detail()
        return {**self.raw, "tracks": detail.tracks, "sources": detail.sources, "timing": detail.timing,
                "clipping": detail.clipping}


def read_run(uri: str, storage_options: dict[str, Any] | None = None) -> RunManifest:
    """The manifest at ``uri`` (``.../runs/<run_id>.json``; its file name is its run id when it names none);
    ValueError when it is not a JSON object."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    raw = json.loads(fs.cat_file(path))
    if not isinstance(raw, dict):
        raise ValueError(f"{uri}: not a JSON object")
    folder, name = uri.rsplit("/", 1)
    return RunManifest.from_dict({"run_id": name.removesuffix(".json"), **raw}, folder, storage_options)


def run_files(fs: Any, root: str) -> list[tuple[str, str | None]]:
    """Each ``runs/*.json`` under the root at ``root`` in ``fs``, by name, with its key index when it has one,
    from one listing of ``runs/`` (a key index is written before its manifest, so one without a manifest is no
    commit)."""
    folder = f"{root.rstrip('/')}/runs"
    fs.invalidate_cache(folder)
    names = set(fs.glob(f"{folder}/*"))
    found = []
    for name in sorted(n for n in names if n.endswith(".json")):
        index = f"{folder}/{key_index_name(name.rsplit('/', 1)[-1].removesuffix('.json'))}"
        found.append((name, index if index in names else None))
    return found


def committed_runs(root: str, storage_options: dict[str, Any] | None = None) -> list[RunManifest]:
    """The committed runs of one output root (any fsspec URL), oldest first; [] if none. A ``runs/*.json``
    that is not a committed manifest of ours is never a reason to read a shard, so it is left out."""
    root = root.rstrip("/")
    fs, path = fsspec.core.url_to_fs(root, **(storage_options or {}))
    found = []
    for manifest, _ in run_files(fs, path):
        try:
            run = read_run(f"{root}/runs/{manifest.rsplit('/', 1)[-1]}", storage_options)
        except (OSError, ValueError):
            continue
        if run.committed:
            found.append(run)
    return sorted(found, key=operator.attrgetter("started_at", "run_id"))
