"""Paths under a root: the one join that every file stemforge writes (stems, shards, errors, manifests,
reports) and every path a manifest or an option names inside a folder (shard lists, ``--model`` in
``--model-dir``) goes through, so that none of them can land outside its root.

A relative path is read as posix (URLs are posix, on every OS) and normalised first (``a/./b`` and ``a//b``
are ``a/b``, ``a/../b`` is ``b``), so a path that stays inside its root is accepted in the form it is written
to; an absolute path, an empty one, or one whose ``..`` climbs to the root or above is refused. The root
itself is the user's and is kept as given: a local folder, ``file://``, or any fsspec URL
(``s3://bucket/prefix``, ``memory://``).
"""

from __future__ import annotations

import posixpath


class PathEscape(ValueError):
    """A path that would not lie inside its root; ``why`` says how, ``reason`` is the error records' code."""

    reason = "path_escape"

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


def _escape(relative: str) -> str | None:
    """Why ``relative`` (already posix-normalised, or raw when absolute) is not a path inside a folder."""
    if relative.startswith("/"):
        return "it is an absolute path"
    if relative == ".":
        return "it names the folder itself"
    if relative == ".." or relative.startswith("../"):
        return "its '..' climbs out"
    return None


def inside(relative: str, root: str = "the folder") -> str:
    """``relative`` normalised as a posix path, or PathEscape (naming ``root``) when it is absolute, empty,
    or climbs out of its folder."""
    normal = relative if relative.startswith("/") else posixpath.normpath(relative or ".")
    why = _escape(normal)
    if why is not None:
        raise PathEscape(f"{relative!r} is not a path inside {root}: {why}", why)
    return normal


def join(root: str, *parts: str) -> str:
    """``root`` and the posix path ``parts`` make (normalised, see :func:`inside`), or PathEscape naming
    both when that path would not lie inside ``root``."""
    normal = inside("/".join(parts), root)
    base = root if root.endswith("://") else root.rstrip("/") or root[:1]
    return f"{base}{'' if base.endswith('/') or not base else '/'}{normal}"
