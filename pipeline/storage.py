"""fsspec plumbing for every read and write of a run: per-protocol options and atomic publishing.

On a local filesystem a file is written under a temporary name and renamed into place; on an
object store it is uploaded as one complete object, which readers never see half-written.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import get_protocol

StorageOptions = dict[str, dict[str, Any]]


def protocol_of(uri: str) -> str:
    """fsspec's protocol name for a URL; plain paths are 'file'."""
    protocol = get_protocol(uri)
    return "file" if protocol in ("file", "local") else protocol


def options_for(uri: str, storage_options: StorageOptions) -> dict[str, Any]:
    """The keyword arguments configured for the URL's protocol (s3a/s3 and gs/gcs share theirs)."""
    protocol = protocol_of(uri)
    aliases = {"s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az", "https": "http"}
    return dict(storage_options.get(protocol) or storage_options.get(aliases.get(protocol, protocol)) or {})


def filesystem(uri: str, storage_options: StorageOptions) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and in-filesystem path of a URL."""
    return fsspec.core.url_to_fs(uri, **options_for(uri, storage_options))


def join(base: str, *parts: str) -> str:
    """Join URL or path components with '/' (never the OS separator: URLs are posix)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local filesystem, where rename is atomic."""
    return isinstance(fs, LocalFileSystem)


def publish_file(local_path: str, uri: str, storage_options: StorageOptions) -> None:
    """Move a finished local file to its final URL so that it appears whole or not at all."""
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        fs.makedirs(fs._parent(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
        fs.put_file(local_path, tmp)
        os.replace(tmp, path)
    else:
        fs.put_file(local_path, path)


def publish_bytes(data: bytes, uri: str, storage_options: StorageOptions) -> None:
    """Write bytes to a URL atomically (rename locally, a single object upload elsewhere)."""
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        fs.makedirs(fs._parent(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)


def read_bytes(uri: str, storage_options: StorageOptions) -> bytes:
    """Read a whole (small) object."""
    fs, path = filesystem(uri, storage_options)
    return fs.cat_file(path)
