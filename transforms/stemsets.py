"""Stem sets: tracks given as isolated stems, which `stemforge run` mixes into training data (``mix:``) and
`stemforge evaluate` scores a model on.

Two layouts, read through fsspec from any URL:
- a manifest (``.csv``, ``.jsonl`` or ``.parquet``), one row per track: a column per stem holding the
  stem's path (relative to the manifest's folder, or absolute / a URL), an optional ``mixture`` column
  and an optional ``track`` column (the key; default: the first stem's file name without extension);
- a folder of ``{track}/{stem}.{ext}`` files (a file named ``mixture`` is the mixture, not a stem).
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec

from stemforge.transforms import AUDIO_EXTENSIONS

RESERVED = ("track", "mixture")


@dataclass(frozen=True)
class StemSetTrack:
    """One track of a stem set: its key, the URL of each stem, and of its mixture when one is given."""

    key: str
    stems: dict[str, str]
    mixture: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _resolve(root: str, entry: str) -> str:
    if entry.startswith("/") or "://" in entry:
        return entry
    return posixpath.normpath(posixpath.join(root, entry)) if "://" not in root else f"{root}/{entry}"


def _rows(fs: fsspec.AbstractFileSystem, path: str) -> list[dict[str, Any]]:
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as handle:
            return pq.read_table(handle, use_threads=False, pre_buffer=False).to_pylist()
    with fs.open(path, "rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8")
        if suffix == ".csv":
            return list(csv.DictReader(text))
        return [json.loads(line) for line in text if line.strip()]


def read_stemset(uri: str, stems: tuple[str, ...] | None = None,
                 storage_options: Mapping[str, Any] | None = None,
                 on_error: Callable[[str, ValueError], None] | None = None) -> list[StemSetTrack]:
    """The tracks of a stem-set manifest or folder, sorted by key. ``stems`` names the stem columns of a
    manifest (default: every column but ``track``/``mixture`` whose values look like audio paths). A manifest
    row without a path for a stem raises, or with ``on_error`` is reported as (row label, error) and skipped."""
    fs, path = fsspec.core.url_to_fs(uri.rstrip("/"), **dict(storage_options or {}))
    if path.lower().endswith((".csv", ".jsonl", ".parquet")):
        root = uri.rstrip("/").rsplit("/", 1)[0] if "/" in uri else "."
        tracks = []
        for number, row in enumerate(_rows(fs, path), 1):
            names = stems or tuple(k for k, v in row.items() if k not in RESERVED and isinstance(v, str)
                                   and v.lower().endswith(AUDIO_EXTENSIONS))
            missing = [n for n in names if not row.get(n)]
            if not names or missing:
                error = ValueError(f"{uri}: row {number} has no path for stem {', '.join(missing) or '(none)'}")
                if on_error is None:
                    raise error
                on_error(str(row.get("track") or f"row {number}"), error)
                continue
            paths = {n: _resolve(root, str(row[n])) for n in names}
            key = str(row.get("track") or posixpath.splitext(posixpath.basename(paths[names[0]]))[0])
            mixture = _resolve(root, str(row["mixture"])) if row.get("mixture") else None
            tracks.append(StemSetTrack(key, paths, mixture))
        return sorted(tracks, key=lambda t: t.key)
    if not fs.isdir(path):
        raise FileNotFoundError(f"{uri}: no stem-set manifest (.csv/.jsonl/.parquet) or folder of {{track}}/{{stem}} files")
    tracks = []
    for folder in sorted(p for p in fs.ls(path, detail=False) if fs.isdir(p)):
        files = {posixpath.splitext(posixpath.basename(f))[0]: fs.unstrip_protocol(f) if "://" in uri else f
                 for f in fs.ls(folder, detail=False) if f.lower().endswith(AUDIO_EXTENSIONS)}
        found = {n: u for n, u in files.items() if n != "mixture" and (stems is None or n in stems)}
        if found:
            tracks.append(StemSetTrack(posixpath.basename(folder), found, files.get("mixture")))
    if not tracks:
        raise FileNotFoundError(f"{uri}: no {{track}}/{{stem}}.{{ext}} audio files found")
    return tracks
