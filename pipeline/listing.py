"""Expanding an input URI (directory, glob or manifest) into sources with safe track keys and, where the
listing gives it, each source's content fingerprint (size and version)."""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import re
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fsspec

from stemforge.pipeline.entries import Part, manifest_entries
from stemforge.pipeline.storage import StorageOptions, filesystem, is_local, modified_time, options_for, protocol_of
from stemforge.transforms.mixing import MixPlan
from stemforge.transforms.stemsets import read_stemset

LOG = logging.getLogger(__name__)
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".txt", ".parquet")
KEY_PUNCTUATION = " ._-+=,@%~"  # what a key keeps besides letters, digits and marks; all else becomes '_'
_PLAIN = re.compile(f"[A-Za-z0-9{re.escape(KEY_PUNCTUATION)}]*")  # ASCII that a key keeps as it is


@dataclass(frozen=True)
class TrackRef:
    """One input: where it is read from, the key its outputs are written under, and its content fingerprint
    (``size`` and ``version``: the store's generation or ETag, else the modification time; None: unknown)."""

    source: str
    track_key: str
    size: int | None = None
    version: str | None = None


@dataclass(frozen=True)
class MixRef(TrackRef):
    """One track of a stem set (a mix run's input): its stems (name → URL), and once a variant is drawn,
    that variant's plan."""

    stems: tuple[tuple[str, str], ...] = ()
    plan: MixPlan | None = None


def content_of(info: Mapping[str, Any]) -> dict[str, Any]:
    """A listed object's content fingerprint, as TrackRef fields: its size, and its version (the store's
    generation or ETag where it has one, else its modification time)."""
    size = info.get("size")
    for name in ("generation", "ETag", "etag"):
        if info.get(name):
            return {"size": size, "version": f"{name.lower()}:{info[name]}"}
    mtime = modified_time(dict(info))
    return {"size": size, "version": None if mtime is None else f"mtime:{mtime!r}"}


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
        yield MixRef(ref.source, ref.track_key, stems=tuple(sorted(track.stems.items())))


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _is_local_path(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """Whether a path of ``fs`` is named as it is (a local path), not as a URL with its protocol."""
    return protocol_of(fs.unstrip_protocol(path)) == "file"


def _unprotocol(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if _is_local_path(fs, path) else fs.unstrip_protocol(path)


@functools.lru_cache(maxsize=4096)
def _key_char(ch: str) -> str:
    return ch if unicodedata.category(ch)[0] in "LNM" or ch in KEY_PUNCTUATION else "_"


def _key_part(part: str) -> str:
    """A path part with every character a key may not hold replaced by '_' (most parts need no change)."""
    return part if _PLAIN.fullmatch(part) else "".join(_key_char(ch) for ch in part)


def sanitize_key(relative: str) -> str:
    """A track key that can never escape its output folder nor surprise a shell: letters, digits, marks and
    ``KEY_PUNCTUATION`` only (every other character becomes '_'), no '..' (becomes '__'), no absolute or empty
    parts, no part that starts with '.', '-' or '~'; the extension is dropped."""
    stem, ext = posixpath.splitext(relative.replace("\\", "/"))
    if "/" in ext:
        stem = stem + ext
    parts = []
    for part in stem.split("/"):
        part = _key_part(part).strip()
        if part in ("", "."):
            continue
        if part == "..":
            part = "__"
        part = part.lstrip(".") or "_"
        parts.append("_" + part[1:] if part.startswith(("-", "~")) else part)
    return "/".join(parts) or "_"


def _without_credentials(entry: str) -> str:
    """An absolute entry as a key's relative path: a URL's host and path, never its user:password@ or query."""
    if "://" not in entry:
        return entry
    parts = urllib.parse.urlsplit(entry)
    return parts.netloc.rsplit("@", 1)[-1] + parts.path


def _is_absolute(entry: str) -> bool:
    return entry.startswith("/") or "://" in entry


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _glob_root(path: str) -> str:
    prefix = path[: min(path.index(c) for c in "*?[" if c in path)]
    return prefix if prefix.endswith("/") else posixpath.dirname(prefix)


def scanned_folder(uri: str, storage_options: StorageOptions) -> str | None:
    """The folder (a path of the URI's filesystem) that a directory or glob input searches; None for a file or
    a manifest, which name their sources."""
    fs, path = filesystem(uri, storage_options)
    if _has_magic(path):
        return _glob_root(path).rstrip("/")
    if path.lower().endswith(MANIFEST_SUFFIXES) or not fs.isdir(path):
        return None
    return path.rstrip("/")


def _excluded_under(root: str, uri: str, exclude: tuple[str, ...], storage_options: StorageOptions) -> list[str]:
    """The ``exclude`` folders (URLs) that lie strictly inside a searched folder, as paths of its filesystem."""
    inside = []
    for folder in exclude:
        if protocol_of(folder) == protocol_of(uri):
            path = filesystem(folder, storage_options)[1].rstrip("/")
            if path != root.rstrip("/") and _inside(path, root):
                inside.append(path)
    return inside


def _walk_local(root: str, excluded: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every file under a local folder with its size and mtime, as found (lazily). Symlinked folders are
    followed, each real folder entered once: a link into the searched folder itself (listed through its real
    path), a loop, or a folder reached a second time is logged and not entered."""
    real_root = os.path.realpath(root)
    real_excluded = [os.path.realpath(e) for e in excluded]
    entered = {real_root}
    for top, dirs, files in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(dirs):
            path, real = posixpath.join(top, name), os.path.realpath(posixpath.join(top, name))
            if any(_inside(path, e) for e in excluded) or any(_inside(real, e) for e in real_excluded):
                continue
            if real in entered or (os.path.islink(path) and _inside(real, real_root)):
                LOG.warning("%s: symlinked folder not followed: its target %s is listed already", path, real)
                continue
            entered.add(real)
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = posixpath.join(top, name)
            try:
                found = os.stat(path)
            except OSError:  # a broken link: listed, so its read names the problem
                yield path, {}
                continue
            yield path, {"size": found.st_size, "mtime": found.st_mtime}


def _search(fs: fsspec.AbstractFileSystem, root: str, excluded: list[str],
            found: dict[str, dict[str, Any]] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every file under a folder with its listing info, leaving out the excluded folders. ``found``: an object
    store's whole listing of it; None: list it folder by folder (the first file comes at once)."""
    if is_local(fs):
        yield from _walk_local(root, excluded)
        return
    listed: Iterable[tuple[str, dict[str, Any]]] = found.items() if found is not None else (
        (info["name"], info) for _, _, files in fs.walk(root, detail=True) for info in files.values())
    yield from ((path, info) for path, info in listed if not any(_inside(path, e) for e in excluded))


def expand_input(uri: str, extensions: tuple[str, ...], storage_options: StorageOptions,
                 exclude: tuple[str, ...] = (), ignored: Counter[str] | None = None,
                 lazy: bool = False, part: Part = None) -> Iterator[TrackRef]:
    """Yield every source the input URI names, keyed relative to the input root, with the content fingerprint
    the listing gives.

    A manifest's entries resolve against its folder (``part``: only that part of it, ``pipeline.entries``);
    a glob's root is its non-magic prefix;
    a directory is searched recursively for the configured extensions, and the files it skips
    are counted per extension in ``ignored`` (never dropped without a word). A searched folder (directory
    or glob) leaves out every ``exclude`` folder inside it (the run's outputs). ``lazy``: list an object
    store folder by folder, so the first source comes without listing the whole folder.
    """
    fs, path = filesystem(uri, storage_options)
    lowered = path.lower()
    if lowered.endswith(MANIFEST_SUFFIXES) and not _has_magic(path):
        root = posixpath.dirname(path)
        local = _is_local_path(fs, root)  # the same for every entry: they are all under root
        for entry in manifest_entries(uri, storage_options, part):
            if _is_absolute(entry):
                source = entry
                relative = _without_credentials(entry)
            elif "://" in root:  # a filesystem whose paths are URLs (http): keep the scheme's '//'
                scheme, rest = root.split("://", 1)
                source = f"{scheme}://{posixpath.normpath(posixpath.join(rest, entry))}"
                relative = entry
            else:
                joined = posixpath.normpath(posixpath.join(root, entry))
                source = joined if local else fs.unstrip_protocol(joined)
                relative = entry
            yield TrackRef(source, sanitize_key(relative))
        return
    if _has_magic(path):
        root = _glob_root(path)
        excluded = _excluded_under(root, uri, exclude, storage_options)
        matches: Iterator[tuple[str, dict[str, Any]]] = (
            (m, info) for m, info in sorted(fs.glob(path, detail=True).items())
            if info.get("type") != "directory" and not (is_local(fs) and os.path.isdir(m))
            and not any(_inside(m, e) for e in excluded))
    # an object store lists a folder once, recursively, which also tells a folder from a file (asking isdir
    # first would list the folder a second time); lazy: folder by folder instead
    elif (found := None if is_local(fs) or lazy else fs.find(path, detail=True)) and list(found) == [path]:
        root = posixpath.dirname(path)
        matches = iter(found.items())
    elif found or fs.isdir(path):
        root = path
        matches = _search(fs, path, _excluded_under(root, uri, exclude, storage_options), found)
    elif fs.exists(path):
        root = posixpath.dirname(path)
        matches = iter([(path, fs.info(path))])
    else:
        raise FileNotFoundError(f"{uri}: no such file, directory or manifest")
    for match, info in matches:
        extension = posixpath.splitext(match)[1].lower()
        if extension in extensions or match == path:
            relative = posixpath.relpath(match, root) if root else match
            yield TrackRef(_unprotocol(fs, match), sanitize_key(relative), **content_of(info))
        elif ignored is not None:
            ignored[extension or "(none)"] += 1


def describe_ignored(ignored: Mapping[str, int]) -> str:
    """``ignored 12 files (.txt 9, .jpg 3)``: the files a listing skipped, most common extension first."""
    total = sum(ignored.values())
    parts = ", ".join(f"{ext} {n}" for ext, n in sorted(ignored.items(), key=lambda item: (-item[1], item[0])))
    return f"ignored {total} file{'s' if total != 1 else ''} ({parts})"
