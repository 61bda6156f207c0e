"""What the runs under an output root are and what they left: the survey behind `stemforge runs` and
`stemforge gc`. No Beam.

A run is ``committed`` (its manifest, read through ``shards.committed_manifests``), ``running`` (it holds the
root's lease and its holder is alive), ``dead`` (it holds the lease but its holder died: the next run takes
it over) or ``failed`` (files of its id are left but it has no manifest and no lease: it failed, was
stopped or was killed, and its lease is gone). What a run left that no committed manifest references is
its garbage: ``_tmp/<id>/`` (scratch), shards under ``spectrograms/<id>/`` that no manifest lists,
``errors/<id>.jsonl`` and ``runs/<id>.*.parquet`` (per-run detail) of a run with no manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import fsspec
from rich import box
from rich.console import Console
from rich.table import Table

from stemforge.config.run import RUN_ID_PATTERN, RunConfig
from stemforge.pipeline.lease import LEASE, is_dead
from stemforge.pipeline.storage import filesystem, modified_time, redact_uri, retrying
from stemforge.text import count, duration, size, wall_seconds
from stemforge.shards import committed_manifests
from stemforge.shards.paths import PathEscape, inside

# the default run.lease_heartbeat_seconds judges a lease that does not record its holder's own
DEFAULT_HEARTBEAT = RunConfig.model_fields["lease_heartbeat_seconds"].default


@dataclass(frozen=True)
class Leftover:
    """One file under the root that belongs to a run and that no committed manifest references."""

    path: str  # relative to the root
    size: int
    area: str  # "_tmp", "spectrograms", "errors" or "runs"


@dataclass
class RunState:
    """One run under the root: its status, its manifest (committed runs), its lease and its garbage."""

    run_id: str
    status: str
    manifest: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    leftovers: list[Leftover] = field(default_factory=list)
    last_write: float | None = None  # the newest write time of its leftovers

    def to_json(self, now: float) -> dict[str, Any]:
        """The run as plain data (what `stemforge runs --json` prints)."""
        manifest = self.manifest or {}
        counts = manifest.get("counts", {})
        out: dict[str, Any] = {
            "run_id": self.run_id, "status": self.status, "started_at": self.started_at,
            "finished_at": manifest.get("finished_at"), "wall_seconds": wall_seconds(manifest) if manifest else None,
            "counts": {k: counts.get(k) for k in ("inputs", "succeeded", "failed", "skipped", "rows")},
            "audio_hours": round(counts["audio_seconds"] / 3600, 6) if "audio_seconds" in counts else None,
            "shards": len(manifest.get("shards", [])) if manifest else None,
            "leftover": {"files": len(self.leftovers), "bytes": sum(f.size for f in self.leftovers),
                         "last_write_at": _iso(self.last_write) if self.last_write is not None else None},
            "lease": None,
        }
        if self.lease is not None:
            out["lease"] = {"host": self.lease.get("host"), "pid": self.lease.get("pid"),
                            "age_seconds": round(now - float(self.lease.get("started", now)), 1),
                            "heartbeat_age_seconds": round(now - float(self.lease.get("heartbeat", now)), 1)}
        return out

    @property
    def started_at(self) -> str | None:
        """When the run started (ISO, UTC), where known: from its manifest or its lease."""
        if self.manifest is not None:
            return self.manifest.get("started_at")
        stamp = self.lease.get("started") if self.lease is not None else None
        return _iso(stamp) if isinstance(stamp, int | float) else None

def _iso(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Survey:
    """Every run under one output root, oldest first, and the root's lease (None: not leased)."""

    root: str
    runs: list[RunState]
    lease: dict[str, Any] | None
    lease_dead: bool

    @property
    def live(self) -> RunState | None:
        """The run that holds the root's lease and is alive, if one does."""
        return next((r for r in self.runs if r.status == "running"), None)

    def to_json(self, now: float) -> dict[str, Any]:
        return {"root": redact_uri(self.root), "runs": [r.to_json(now) for r in self.runs]}


def _owner(relative: str) -> tuple[str, str] | None:
    """(area, run id) of a file stemforge writes per run, from its path relative to the root; None for any
    other file (never garbage: gc removes only what it knows a run wrote)."""
    parts = relative.split("/")
    if parts[0] in ("_tmp", "spectrograms") and len(parts) > 2:
        run_id = parts[1]
    elif parts[0] == "errors" and len(parts) == 2 and parts[1].endswith(".jsonl"):
        run_id = parts[1][: -len(".jsonl")]
    elif parts[0] == "runs" and len(parts) == 2 and re.fullmatch(r".+\.[a-z_]+\.parquet", parts[1]):
        run_id = parts[1].rsplit(".", 2)[0]
    else:
        return None
    return (parts[0], run_id) if re.fullmatch(RUN_ID_PATTERN, run_id) else None


def _read_lease(fs: fsspec.AbstractFileSystem, path: str) -> dict[str, Any] | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        record = json.loads(fs.cat_file(f"{path}/{LEASE}"))
        return record if isinstance(record, dict) else None
    return None


def _listed(root: str, manifests: list[dict[str, Any]]) -> set[str]:
    """The shards committed manifests list, as paths relative to the root (an entry outside it: none)."""
    listed = set()
    for manifest in manifests:
        for shard in manifest.get("shards", []):
            with contextlib.suppress(PathEscape):
                listed.add(inside(shard if isinstance(shard, str) else "", root))
    return listed


def survey(root: str, storage_options: dict[str, Any] | None = None, now: float | None = None) -> Survey:
    """Read the runs under ``root``: committed manifests, the lease and every per-run file."""
    now = time.time() if now is None else now
    options = storage_options or {}
    fs, path = filesystem(root, options)
    fs.invalidate_cache()
    manifests = retrying(lambda: committed_manifests(root, options), f"read the manifests of {root}", options)
    has_manifest = {p.rsplit("/", 1)[-1][: -len(".json")] for p in fs.glob(f"{path}/runs/*.json")}
    listed = _listed(root, manifests)
    runs = {m["run_id"]: RunState(m["run_id"], "committed", manifest=m) for m in manifests if m.get("run_id")}
    unread = has_manifest - set(runs)  # a runs/<id>.json that is no committed manifest: its files are kept
    lease = _read_lease(fs, path)
    dead = lease is not None and is_dead(lease, now, DEFAULT_HEARTBEAT)
    if lease is not None and isinstance(lease.get("run_id"), str) and lease["run_id"] not in runs:
        runs[lease["run_id"]] = RunState(lease["run_id"], "dead" if dead else "running", lease=lease)
    for area in ("_tmp", "spectrograms", "errors", "runs"):
        found = retrying(lambda a=area: fs.find(f"{path}/{a}", detail=True), f"list {root}/{area}", options)
        for name, info in sorted(found.items()):
            relative = name[len(path) + 1:]
            owner = _owner(relative)
            if owner is None or relative in listed or owner[1] in unread or (
                    area in ("errors", "runs") and owner[1] in has_manifest):
                continue
            run = runs.setdefault(owner[1], RunState(owner[1], "failed"))
            run.leftovers.append(Leftover(relative, int(info.get("size") or 0), area))
            stamp = modified_time(info)
            if stamp is not None:
                run.last_write = max(run.last_write or stamp, stamp)
    ordered = sorted(runs.values(), key=lambda r: (r.started_at or _iso(r.last_write or 0), r.run_id))
    return Survey(root, ordered, lease, dead)


def _lease_words(run: RunState, now: float) -> str:
    lease = run.lease or {}
    held = duration(now - float(lease.get("started", now)))
    beat = duration(now - float(lease.get("heartbeat", now)))
    return f"held {held}, heartbeat {beat} ago (host {lease.get('host')}, pid {lease.get('pid')})"


def _row(run: RunState, now: float) -> list[str]:
    counts = (run.manifest or {}).get("counts", {})
    numbers = [f"{counts[k]:,}" if isinstance(counts.get(k), int) else "-" for k in ("succeeded", "failed", "skipped",
                                                                                       "rows")]
    audio = f"{counts['audio_seconds'] / 3600:.3f}" if "audio_seconds" in counts else "-"
    wall = duration(wall_seconds(run.manifest)) if run.manifest else "-"
    left = "-"
    if run.leftovers:
        left = f"{count(len(run.leftovers), 'file')}, {size(sum(f.size for f in run.leftovers))}"
        if run.last_write is not None and run.status != "committed":
            left += f", last written {_iso(run.last_write)}"
    note = _lease_words(run, now) if run.lease is not None else ""
    return [run.run_id, run.status, run.started_at or "-", wall, *numbers, audio, left, note]


def render(found: Survey, now: float, width: int | None = None) -> str:
    """`stemforge runs` as a table: one row per run, then what the root holds in all."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in ("run", "status", "started (UTC)", "wall", "tracks", "rejected", "skipped", "rows", "audio h",
                 "left behind", "lease"):
        table.add_column(name, justify="right" if name in ("tracks", "rejected", "skipped", "rows", "audio h")
                         else "left", overflow="fold")
    for run in found.runs:
        table.add_row(*_row(run, now))
    console = Console(width=width or 240, record=True, file=io.StringIO(), highlight=False, color_system=None)
    if found.runs:
        console.print(table)
    statuses = [r.status for r in found.runs]
    audio = sum((r.manifest or {}).get("counts", {}).get("audio_seconds", 0) for r in found.runs) / 3600
    garbage = [f for r in found.runs if r.status != "running" for f in r.leftovers]
    summary = (f"{redact_uri(found.root)}: {count(len(found.runs), 'run')} ({statuses.count('committed')} committed, "
               f"{statuses.count('running')} running, {statuses.count('failed') + statuses.count('dead')} failed "
               f"or dead), {audio:.3f} h of audio committed")
    if garbage:
        summary += f"; {count(len(garbage), 'file')} ({size(sum(f.size for f in garbage))}) no committed run "\
                   f"references: `stemforge gc {redact_uri(found.root)}` removes them"
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    return "\n".join([*lines, summary])
