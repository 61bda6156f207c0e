"""Operating a schedule: `stemforge runs OUT` (what the runs under an output root are) and `stemforge gc OUT`
(remove what no committed run references). Neither imports Beam.

gc takes the root's lease first, as a run does, so no run can start or be live while it removes files;
when a live run holds the lease it refuses (exit 2) naming that run. Taking over a dead run's lease removes
that run's scratch, as at a run's start. ``--dry-run`` reads only: it takes no lease and removes nothing,
and it leaves a live run's files out of what it would remove.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections import defaultdict
from typing import Any

from stemforge.config.run import ConfigError, build_config
from stemforge.pipeline.lease import LeaseHeld, acquire, describe_holder
from stemforge.pipeline.storage import filesystem, is_local, redact_uri, retrying
from stemforge.text import count, size


def add_parsers(commands: Any) -> None:
    """The `runs` and `gc` subcommands."""
    runs_p = commands.add_parser(
        "runs", help="list the runs under an output folder: committed, running, failed or dead",
        description="List the runs under an output folder: committed runs with their counts, audio hours and wall "
                    "time; the run holding the folder's lease (running, or dead when its holder is gone) with the "
                    "lease's age; failed runs (files left, no manifest); and what each left that no committed run "
                    "references.", epilog="example: stemforge runs out/ --json")
    runs_p.add_argument("path", help="an output folder (any fsspec URL)")
    runs_p.add_argument("--json", action="store_true", help="machine-readable output")
    gc_p = commands.add_parser(
        "gc", help="remove what no committed run references (dead runs' scratch, uncommitted shards)",
        description="Remove, under an output folder, what no committed run references: the scratch (_tmp/<run>/) "
                    "of runs that are not running, shards no committed manifest lists, and the error logs and "
                    "detail files of runs that never committed. Takes the folder's lease first: a live run holding "
                    "it is named and nothing is removed (exit 2). Prints what it removed.",
        epilog="example: stemforge gc out/ --dry-run")
    gc_p.add_argument("path", help="an output folder (any fsspec URL)")
    gc_p.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")


def run_command(args: argparse.Namespace) -> int:
    """`stemforge runs` or `stemforge gc`; returns the exit code."""
    from stemforge.pipeline.runs import render, survey

    _require_folder(args.path, args.command)
    now = time.time()
    if args.command == "runs":
        found = survey(args.path, None, now)
        print(json.dumps(found.to_json(now), indent=2) if args.json else render(found, now))
        return 0
    for line in collect(args.path, args.dry_run, now=now):
        print(line)
    return 0


def _require_folder(root: str, command: str) -> None:
    fs, path = filesystem(root, {})
    if not retrying(lambda: fs.isdir(path), f"check {root}", {}):
        raise ConfigError(f"{command}: {redact_uri(root)} is not a folder")


def collect(root: str, dry_run: bool = False, storage_options: dict[str, Any] | None = None,
            now: float | None = None) -> list[str]:
    """Remove (``dry_run``: only name) what no committed run under ``root`` references; returns the lines
    saying what was removed. LeaseHeld-based ConfigError when a live run holds the root's lease."""
    lease = None
    if not dry_run:
        config = build_config({"output": {"uri": root}})
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        try:
            lease = acquire(config, f"gc-{stamp}", key="output.uri", remove_scratch=False)
        except LeaseHeld as exc:
            raise ConfigError(f"gc: {redact_uri(root)} is leased by {describe_holder(exc.holder, time.time())}; gc "
                              "never touches a live run's files: run it once that run has ended") from None
    try:
        return _collect(root, dry_run, storage_options or {}, now)
    finally:
        if lease is not None:
            lease.release()


def _remove_empty_scratch(fs: Any, path: str) -> list[str]:
    """Remove the empty folders left in a local ``_tmp/`` (object stores have none), then ``_tmp`` if empty."""
    lines = []
    if fs.isdir(f"{path}/_tmp"):
        for folder in fs.ls(f"{path}/_tmp", detail=False):
            if fs.isdir(folder) and not fs.find(folder):
                fs.rm(folder, recursive=True)
                lines.append(f"removed _tmp/{folder.rstrip('/').rsplit('/', 1)[-1]}/ (empty)")
        if not fs.ls(f"{path}/_tmp"):
            fs.rmdir(f"{path}/_tmp")
    return lines


def _collect(root: str, dry_run: bool, options: dict[str, Any], now: float | None) -> list[str]:
    from stemforge.pipeline.runs import survey

    found = survey(root, options, now)
    fs, path = filesystem(root, options)
    verb = "would remove" if dry_run else "removed"
    lines, files, total = [], 0, 0
    for run in found.runs:
        if run.status == "running":
            if run.leftovers:
                holder = describe_holder(run.lease or {}, time.time())
                lines.append(f"kept {count(len(run.leftovers), 'file')} of {holder}: it is running")
            continue
        targets: dict[str, list[int]] = defaultdict(list)
        for item in run.leftovers:
            whole_folder = item.area == "_tmp" or (item.area == "spectrograms" and run.status != "committed")
            targets[f"{item.area}/{run.run_id}/" if whole_folder else item.path].append(item.size)
        for target, sizes in targets.items():
            if not dry_run:
                retrying(lambda t=target: fs.rm(f"{path}/{t.rstrip('/')}", recursive=True), f"remove {root}/{target}",
                         options)
            lines.append(f"{verb} {target} ({count(len(sizes), 'file')}, {size(sum(sizes))}): run {run.run_id}, "
                         f"{run.status}")
            files, total = files + len(sizes), total + sum(sizes)
    if not dry_run and is_local(fs):  # empty scratch folders: no run is live while gc holds the lease
        lines += _remove_empty_scratch(fs, path)
    shown = redact_uri(root)
    if not files:
        return [*lines, f"gc: nothing to remove under {shown}: every run's files are committed or live"]
    return [*lines, f"gc: {verb} {count(files, 'file')} ({size(total)}) under {shown}"]
