"""The entries of an input manifest, whole or one part at a time, so that a large manifest is listed by many
workers at once (as Beam's file-based sources split a file): a ``.parquet`` manifest by row group, a ``.txt`` or
``.jsonl`` manifest by byte range (a line belongs to the range it starts in). A ``.csv`` manifest is read
whole: a quoted field may hold a newline, so a byte range cannot say where a row starts. Every reader streams
(a row-group batch or a line at a time), so memory stays bounded whatever the manifest's size."""

from __future__ import annotations

import csv
import io
import json
import posixpath
from collections.abc import Iterator
from typing import IO

from stemforge.pipeline.storage import StorageOptions, filesystem

Part = tuple[str, int, int] | None  # ("rows", row group, 0) or ("bytes", start, end); None: the whole manifest
PART_BYTES = 8 << 20  # a text manifest's byte range: about 100k entries
ROWS_PER_READ = 65_536  # Parquet rows read at once


def manifest_parts(uri: str, storage_options: StorageOptions) -> list[Part]:
    """How a manifest is split for listing: one part per Parquet row group, one per ``PART_BYTES`` of a text
    manifest, the whole of a CSV manifest."""
    fs, path = filesystem(uri, storage_options)
    suffix = posixpath.splitext(path)[1].lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as handle:
            groups = pq.ParquetFile(handle).metadata.num_row_groups
        return [("rows", group, 0) for group in range(groups)] if groups > 1 else [None]
    if suffix in (".txt", ".jsonl"):
        size = fs.size(path)
        return [("bytes", start, min(start + PART_BYTES, size)) for start in range(0, size, PART_BYTES)] \
            if size > PART_BYTES else [None]
    return [None]


def _first_line(handle: IO[bytes], start: int) -> int:
    """Where the first line that starts at or after byte ``start`` starts; the handle is left there."""
    if start == 0:
        return 0
    handle.seek(start - 1)
    return start - 1 + len(handle.readline())  # the line that started before ``start`` is the previous part's


def _lines(handle: IO[bytes], start: int, end: int | None) -> Iterator[str]:
    """The lines (universal newlines, as ``open(..., newline=None)``: \\n, \\r\\n or \\r) that start in
    [start, end) of a UTF-8 file, without their line ends."""
    position = _first_line(handle, start)
    while end is None or position < end:
        raw = handle.readline()
        if not raw:
            return
        position += len(raw)
        text = raw.decode("utf-8").replace("\r\n", "\n").removesuffix("\n")
        yield from text.split("\r")


def _lines_before(handle: IO[bytes], start: int) -> int:
    """How many lines (universal newlines) end before byte ``start``: the line number a part starts after."""
    handle.seek(0)
    count, done, last = 0, 0, b""
    while done < start:
        block = handle.read(min(PART_BYTES, start - done))
        if not block:
            break
        count += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n") - (last == b"\r" and block[:1] == b"\n")
        done, last = done + len(block), block[-1:]
    return count


def _jsonl(uri: str, handle: IO[bytes], start: int, end: int | None) -> Iterator[str]:
    for offset, line in enumerate(_lines(handle, start, end)):
        if line.strip():
            entry = json.loads(line)
            if not isinstance(entry, dict) or "path" not in entry:
                number = _lines_before(handle, _first_line(handle, start)) + offset + 1
                raise ValueError(f"{uri}: line {number} has no 'path'")
            yield str(entry["path"])


def manifest_entries(uri: str, storage_options: StorageOptions, part: Part = None) -> Iterator[str]:
    """The source paths a manifest (or one part of it, from ``manifest_parts``) names, in order."""
    fs, path = filesystem(uri, storage_options)
    suffix = posixpath.splitext(path)[1].lower()
    with fs.open(path, "rb") as handle:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            groups = None if part is None else [part[1]]
            batches = pq.ParquetFile(handle).iter_batches(batch_size=ROWS_PER_READ, row_groups=groups,
                                                          columns=["path"], use_threads=False)
            for batch in batches:
                yield from (str(p) for p in batch.column(0).to_pylist() if p)
        elif suffix == ".csv":
            reader = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8"))
            if "path" not in (reader.fieldnames or []):
                raise ValueError(f"{uri}: CSV manifest has no 'path' column")
            yield from (row["path"] for row in reader if row.get("path"))
        else:
            start, end = (0, None) if part is None else part[1:]
            if suffix == ".jsonl":
                yield from _jsonl(uri, handle, start, end)
            else:
                yield from (line for line in _lines(handle, start, end) if line.strip() and not line.startswith("#"))
