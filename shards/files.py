"""Opening a shard safely from any filesystem.

A local file is opened by path, so pyarrow reads it natively with its own threads. Any other is read through
its fsspec file object on the calling thread only (no pre-buffering; callers read with ``use_threads=False``,
see :func:`threads_for`): when pyarrow's threads hold a Python file object, a process that has imported torch
aborts at exit now and then ("terminate called without an active exception", about 1 exit in 4 here).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem


def open_shard(fs: fsspec.AbstractFileSystem, path: str,
               footer: pq.FileMetaData | None = None) -> tuple[pq.ParquetFile, Any | None]:
    """The shard at ``path`` of ``fs`` as a ParquetFile, and the fsspec file to close (None for a local file)."""
    if isinstance(fs, LocalFileSystem):
        return pq.ParquetFile(fs._strip_protocol(path), metadata=footer), None
    handle = fs.open(path, "rb")
    return pq.ParquetFile(handle, metadata=footer, pre_buffer=False), handle


def open_shard_url(url: str, storage_options: dict[str, Any] | None = None,
                   footer: pq.FileMetaData | None = None) -> tuple[pq.ParquetFile, Any | None]:
    """:func:`open_shard` for a URL and its fsspec arguments."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return open_shard(fs, path, footer)


def threads_for(handle: Any | None) -> bool:
    """Whether reads of a shard opened by :func:`open_shard` may use pyarrow's threads (local files only)."""
    return handle is None


@contextmanager
def reading(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[tuple[pq.ParquetFile, bool]]:
    """``with reading(fs, path) as (parquet, use_threads):`` a shard opened by :func:`open_shard`, closed after."""
    parquet, handle = open_shard(fs, path)
    try:
        yield parquet, threads_for(handle)
    finally:
        if handle is not None:
            handle.close()
