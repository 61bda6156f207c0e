"""Expanding an input URI (directory, glob or manifest) into sources with safe, unique track keys."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
import re
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import fsspec

from pipeline.storage import StorageOptions, filesystem, options_for, protocol_of
from transforms.mixing import MixPlan
from transforms.stemsets import read_stemset

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".txt", ".parquet")
_UNSAFE = re.compile(r'[\\:*?"<>|]')


@dataclass(frozen=True)
class TrackRef:
    """One input: where it is read from and the key its outputs are written under."""

    source: str
    track_key: str


@dataclass(frozen=True)
class MixRef(TrackRef):
    """One track of a stem set (a mix run's input): its stems (name → URL), and once a variant is drawn,
    that variant's plan."""

    stems: tuple[tuple[str, str], ...] = ()
    plan: MixPlan | None = None


def expand_stemset(uri: str, sources: tuple[str, ...],
                   storage_options: StorageOptions) -> Iterator[MixRef | tuple[TrackRef, ValueError]]:
    """Every track of a stem-set manifest or folder, or (the track, its error) for one that lacks a stem."""
    base = uri.rstrip("/")
    bad: list[tuple[str, ValueError]] = []
    tracks = read_stemset(uri, sources, options_for(uri, storage_options),
                          on_error=lambda label, exc: bad.append((label, exc)))
    for label, exc in bad:
        yield TrackRef(f"{base}#{label}", sanitize_key(label)), exc
    for track in tracks:
        ref = TrackRef(f"{base}#{track.key}", sanitize_key(track.key))
        missing = [s for s in sources if s not in track.stems]
        if missing:
            yield ref, ValueError(f"{ref.source}: no {', '.join(missing)} stem file")
            continue
        yield MixRef(ref.source, ref.track_key, tuple(sorted(track.stems.items())))


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _unprotocol(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs.unstrip_protocol(path) if protocol_of(fs.unstrip_protocol(path)) != "file" else path


def sanitize_key(relative: str) -> str:
    """A track key that can never escape its output folder: no '..', no absolute or empty parts,
    no control or shell-hostile characters; the extension is dropped."""
    stem, ext = posixpath.splitext(relative.replace("\\", "/"))
    if "/" in ext:
        stem = stem + ext
    parts = []
    for part in stem.split("/"):
        part = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in part)
        part = _UNSAFE.sub("_", part).strip()
        if part in ("", "."):
            continue
        if part == "..":
            part = "__"
        parts.append(part.lstrip(".") or "_")
    return "/".join(parts) or "_"


def unique_keys(refs: list[TrackRef]) -> list[TrackRef]:
    """Resolve sources that map to one key: the first source (sorted) keeps it, the others get
    a suffix from a hash of their source, so every key is distinct and stable for that source."""
    ordered = sorted(refs, key=lambda r: r.source)
    out = [ordered[0]]
    for ref in ordered[1:]:
        digest = hashlib.sha256(ref.source.encode()).hexdigest()[:8]
        out.append(replace(ref, track_key=f"{ref.track_key}~{digest}"))
    return out


def _manifest_entries(uri: str, storage_options: StorageOptions) -> Iterator[str]:
    fs, path = filesystem(uri, storage_options)
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as handle:
            table = pq.read_table(handle, columns=["path"], use_threads=False, pre_buffer=False)
        yield from (str(p) for p in table.column("path").to_pylist() if p)
        return
    with fs.open(path, "rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8")
        if suffix == ".csv":
            reader = csv.DictReader(text)
            if "path" not in (reader.fieldnames or []):
                raise ValueError(f"{uri}: CSV manifest has no 'path' column")
            yield from (row["path"] for row in reader if row.get("path"))
        elif suffix == ".jsonl":
            for number, line in enumerate(text, 1):
                if line.strip():
                    entry = json.loads(line)
                    if not isinstance(entry, dict) or "path" not in entry:
                        raise ValueError(f"{uri}: line {number} has no 'path'")
                    yield str(entry["path"])
        else:
            yield from (line.rstrip("\r\n") for line in text if line.strip() and not line.startswith("#"))


def _without_credentials(entry: str) -> str:
    """An absolute entry as a key's relative path: a URL's host and path, never its user:password@ or query."""
    if "://" not in entry:
        return entry
    parts = urllib.parse.urlsplit(entry)
    return parts.netloc.rsplit("@", 1)[-1] + parts.path


def _is_absolute(entry: str) -> bool:
    return entry.startswith("/") or "://" in entry


def expand_input(uri: str, extensions: tuple[str, ...], storage_options: StorageOptions,
                 ignored: Counter[str] | None = None) -> Iterator[TrackRef]:
    """Yield every source the input URI names, keyed relative to the input root.

    A manifest's entries resolve against its folder; a glob's root is its non-magic prefix;
    a directory is searched recursively for the configured extensions, and the files it skips
    are counted per extension in ``ignored`` (never dropped without a word).
    """
    fs, path = filesystem(uri, storage_options)
    lowered = path.lower()
    if lowered.endswith(MANIFEST_SUFFIXES) and not _has_magic(path):
        root = posixpath.dirname(path)
        for entry in _manifest_entries(uri, storage_options):
            if _is_absolute(entry):
                source = entry
                relative = _without_credentials(entry)
            elif "://" in root:  # a filesystem whose paths are URLs (http): keep the scheme's '//'
                scheme, rest = root.split("://", 1)
                source = f"{scheme}://{posixpath.normpath(posixpath.join(rest, entry))}"
                relative = entry
            else:
                source = _unprotocol(fs, posixpath.normpath(posixpath.join(root, entry)))
                relative = entry
            yield TrackRef(source, sanitize_key(relative))
        return
    if _has_magic(path):
        prefix = path[: min(path.index(c) for c in "*?[" if c in path)]
        root = prefix if prefix.endswith("/") else posixpath.dirname(prefix)
        matches = [m for m in fs.glob(path) if not fs.isdir(m)]
    elif fs.isdir(path):
        root = path
        matches = fs.find(path)
    elif fs.exists(path):
        root = posixpath.dirname(path)
        matches = [path]
    else:
        raise FileNotFoundError(f"{uri}: no such file, directory or manifest")
    for match in sorted(matches):
        extension = posixpath.splitext(match)[1].lower()
        if extension in extensions or match == path:
            relative = posixpath.relpath(match, root) if root else match
            yield TrackRef(_unprotocol(fs, match), sanitize_key(relative))
        elif ignored is not None:
            ignored[extension or "(none)"] += 1


def describe_ignored(ignored: Mapping[str, int]) -> str:
    """``ignored 12 files (.txt 9, .jpg 3)``: the files a listing skipped, most common extension first."""
    total = sum(ignored.values())
    parts = ", ".join(f"{ext} {n}" for ext, n in sorted(ignored.items(), key=lambda item: (-item[1], item[0])))
    return f"ignored {total} file{'s' if total != 1 else ''} ({parts})"
