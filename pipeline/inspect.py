"""`stemforge inspect PATH`: what a Parquet shard, a run manifest or a whole output root holds.

For each shard: the schema with tensor shapes, rows and row groups, tracks, variants and segments, the
value range of every spectrogram column over its real frames (the zero padding of a track's last row
left out), the run's config and checkpoint from the shard's own metadata, and whether a committed run
manifest lists it (only those belong to the dataset). Anything that is not a stemforge output is an
:class:`InspectError` with a one-line reason naming the path.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from stemforge.pipeline.storage import PathEscape, StorageOptions, filesystem, join, options_for, redact_uri
from stemforge.text import count
from stemforge.shards import is_tensor, open_shard, tensor_shape, tensor_to_numpy, threads_for
from stemforge.shards.discovery import listed_shard
from stemforge.shards.manifest import RunManifest, read_run, run_files
from stemforge.shards.schema import BAND_PARAMS_KEY, CHECKPOINT_KEY, CONFIG_KEY


class InspectError(ValueError):
    """A path stemforge cannot describe, with the reason in one line."""


def _tensor_shape(field: pa.Field) -> list[int] | None:
    shape = tensor_shape(field.type) if is_tensor(field.type) else None
    return list(shape) if shape else None


def _shard(fs: Any, path: str, shown: str, committed: bool | None) -> dict[str, Any]:
    """The description of one shard (see the module docstring)."""
    try:
        handle, stream = open_shard(fs, path)
    except FileNotFoundError:
        raise InspectError(f"{shown}: no such file") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InspectError(f"{shown}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    schema = handle.schema_arrow
    metadata = schema.metadata or {}
    if CONFIG_KEY not in metadata:
        raise InspectError(f"{shown}: not a stemforge shard (its schema metadata has no stemforge.config)")
    tensors = [f.name for f in schema if _tensor_shape(f)]
    ranges = {name: [np.inf, -np.inf] for name in tensors}
    keys, variants, segments = set(), set(), 0
    for index in range(handle.metadata.num_row_groups):
        group = handle.read_row_group(index, use_threads=threads_for(stream))
        frames = group.column("num_frames").to_pylist()
        keys.update(group.column("track_key").to_pylist())
        variants.update(group.column("variant").to_pylist())
        segments += group.num_rows
        for name in tensors:
            values = tensor_to_numpy(group.column(name))
            for row, count in zip(values, frames):
                real = row[..., :count]
                if real.size:
                    ranges[name] = [min(ranges[name][0], float(real.min())), max(ranges[name][1], float(real.max()))]
    band = metadata.get(BAND_PARAMS_KEY)
    return {
        "path": shown,
        "committed": committed,
        "rows": handle.metadata.num_rows,
        "row_groups": handle.metadata.num_row_groups,
        "bytes": fs.size(path),
        "schema": [{"name": f.name, "type": str(f.type.value_type if _tensor_shape(f) else f.type),
                    "shape": _tensor_shape(f)} for f in schema],
        "tracks": len(keys),
        "variants": sorted(variants),
        "segments": segments,
        "ranges": {name: (None if lo > hi else {"min": lo, "max": hi}) for name, (lo, hi) in ranges.items()},
        "config": json.loads(metadata[CONFIG_KEY]),
        "checkpoint_sha256": metadata.get(CHECKPOINT_KEY, b"").decode(),
        "band_params": json.loads(band)["name"] if band else None,
    }


def _manifest(fs: Any, path: str, shown: str) -> RunManifest:
    """The run manifest at ``path``, or an InspectError saying why the file is not one."""
    try:
        data = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        raise InspectError(f"{shown}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"{shown}: not a run manifest (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or "run_id" not in data or "shards" not in data:
        raise InspectError(f"{shown}: not a stemforge run manifest (no run_id and shards)")
    return RunManifest.from_dict(data)


def _run(fs: Any, root: str, shown_root: str, manifest: RunManifest) -> dict[str, Any]:
    try:
        shown = [listed_shard(shown_root, manifest.raw, s) for s in manifest.shards]
    except PathEscape as exc:  # an edited manifest: never read, nor call committed, a file outside the folder
        raise InspectError(str(exc)) from None
    return {
        "run_id": manifest.run_id,
        "status": manifest.raw.get("status"),
        "fingerprint": manifest.raw.get("fingerprint"),
        "counts": manifest.counts,
        "checkpoint": manifest.raw.get("checkpoint"),
        "shards": [_shard(fs, join(root, s), path, manifest.committed)
                   for s, path in zip(manifest.shards, shown)],
    }


def inspect_path(uri: str, storage_options: StorageOptions | None = None) -> dict[str, Any]:
    """Describe a shard (``.parquet``), a run manifest (``runs/*.json``) or an output root (a folder)."""
    options = storage_options or {}
    fs, path = filesystem(uri, options)
    path = path.rstrip("/")
    shown = redact_uri(uri).rstrip("/")
    if path.endswith(".parquet"):
        parts = path.rsplit("/", 3)  # ROOT/spectrograms/RUN/part-....parquet
        committed = None
        if len(parts) == 4 and parts[1] == "spectrograms":
            manifest = f"{parts[0]}/runs/{parts[2]}.json"
            committed = fs.exists(manifest) and f"spectrograms/{parts[2]}/{parts[3]}" in read_run(
                fs.unstrip_protocol(manifest), options_for(uri, options)).shards
        return {"kind": "shard", **_shard(fs, path, shown, committed)}
    if path.endswith(".json"):
        root, shown_root = path.rsplit("/", 2)[0], shown.rsplit("/", 2)[0]
        return {"kind": "run", **_run(fs, root, shown_root, _manifest(fs, path, shown))}
    if not fs.isdir(path):
        raise InspectError(f"{shown}: no such file or folder" if not fs.exists(path) else
                           f"{shown}: not a shard (.parquet), a run manifest (.json) or an output folder")
    runs = [_run(fs, path, shown, _manifest(fs, p, join(shown, "runs", p.rsplit("/", 1)[-1])))
            for p, _ in run_files(fs, path)]
    listed = {s["path"] for run in runs for s in run["shards"]}
    on_disk = sorted(fs.glob(f"{path}/spectrograms/*/*.parquet"))
    stray = [_shard(fs, p, join(shown, p[len(path) + 1:]), False) for p in on_disk
             if join(shown, p[len(path) + 1:]) not in listed]
    if not runs and not stray:
        raise InspectError(f"{shown}: not a stemforge output folder (no runs/*.json and no spectrograms/)")
    return {"kind": "output", "path": shown, "runs": runs, "uncommitted_shards": stray}


def _shard_text(shard: dict[str, Any]) -> list[str]:
    state = {True: "committed", False: "NOT committed (no run manifest lists it)", None: "commit state unknown"}
    lines = [f"  {shard['path']}  [{state[shard['committed']]}]",
             (f"    {count(shard['rows'], 'row')} in {count(shard['row_groups'], 'row group')}, "
              f"{count(shard['bytes'], 'byte', grouped=True)}; {count(shard['tracks'], 'track')}, "
              f"variants {shard['variants']}, {count(shard['segments'], 'segment')}")]
    model = shard["config"].get("model", {})
    lines.append(f"    checkpoint {model.get('checkpoint')} (sha256 {shard['checkpoint_sha256'][:16]}…), "
                 f"n_fft {model.get('n_fft')}, hop {model.get('hop_length')}, band table {shard['band_params']}")
    for column in shard["schema"]:
        value = shard["ranges"].get(column["name"])
        span = f"  range [{value['min']:.4g}, {value['max']:.4g}]" if value else ""
        shape = f"[{', '.join(map(str, column['shape']))}]" if column["shape"] else ""
        lines.append(f"      {column['name']:<20s} {column['type']}{shape}{span}")
    return lines


def render(report: dict[str, Any]) -> str:
    """A human-readable description of an :func:`inspect_path` report."""
    if report["kind"] == "shard":
        return "\n".join(["shard", *_shard_text(report)])
    runs = [report] if report["kind"] == "run" else report["runs"]
    lines = [] if report["kind"] == "run" else [f"output {report['path']}: {count(len(runs), 'run')}"]
    for run in runs:
        counts = run["counts"]
        lines.append(f"run {run['run_id']} ({run['status']}, fingerprint {run['fingerprint']}): "
                     f"{count(counts.get('succeeded', 0), 'track')}, {count(counts.get('rows', 0), 'row')}, "
                     f"{counts.get('audio_seconds', 0)} s of audio, {count(len(run['shards']), 'shard')}")
        for shard in run["shards"]:
            lines.extend(_shard_text(shard))
    for shard in report.get("uncommitted_shards", []):
        lines.extend(_shard_text(shard))
    return "\n".join(lines)
