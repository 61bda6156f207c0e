"""Checks that refuse, before any work, what would otherwise fail only after it: a device this machine lacks,
and an output that is a file or cannot be written (a stem format libsndfile cannot write is refused by the
config schema itself, with ``transforms.audio_io.check_stem_format``).

Each raises ValueError with the reason in one line; the caller names the key or option (the config schema,
the launcher, the commands that write one file). Nothing here imports Beam or the config, so `stemforge
train`, `evaluate` and `report` use the same checks.
"""

from __future__ import annotations

import os
import tempfile

from stemforge.pipeline.storage import StorageOptions, filesystem, is_local, redact_uri, retrying

PROBE_PREFIX = ".stemforge-probe-"


def check_device(name: str) -> None:
    """Refuse a device this machine does not have (``cuda`` without CUDA, ``mps`` without MPS)."""
    from stemforge.model.devices import resolve_device  # torch: imported only by the commands that run a model

    resolve_device(name)


def _nearest_existing(path: str) -> str:
    """``path`` itself if it exists, else its nearest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _probe_local(folder: str, what: str) -> None:
    """Refuse unless a file can be made in ``folder`` (or in its nearest existing ancestor, where the missing
    folders would be made): a marker is created and removed at once, nothing else is written."""
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        raise ValueError(f"{what}: {existing} is a file, not a folder")
    try:
        handle, marker = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=existing)
    except OSError as exc:
        raise ValueError(f"{what}: cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(handle)
    os.remove(marker)


def check_output_folder(uri: str, storage_options: StorageOptions, what: str = "output") -> None:
    """Refuse an output folder that is a file or (locally) cannot be written in."""
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        _probe_local(path, f"{what} {uri}")
    elif retrying(lambda: fs.isfile(path), f"check {redact_uri(uri)}", storage_options):
        raise ValueError(f"{what} {redact_uri(uri)} is a file, not a folder")


def check_output_file(uri: str, storage_options: StorageOptions, what: str = "output") -> None:
    """Refuse an output file that is a folder or (locally) whose folder cannot be written in."""
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        if os.path.isdir(path):
            raise ValueError(f"{what} {uri} is a folder, not a file")
        _probe_local(os.path.dirname(os.path.abspath(path)), f"{what} {uri}")
    elif retrying(lambda: fs.isdir(path), f"check {redact_uri(uri)}", storage_options):
        raise ValueError(f"{what} {redact_uri(uri)} is a folder, not a file")
