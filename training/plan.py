"""ShardDataset's plan, from scalar columns only: which committed rows exist (the index), how consecutive rows of a
track variant form runs of continuous frames, which samples an epoch has, in which order, and which of them a rank
and a DataLoader worker produce. All of it is deterministic numpy on small arrays; no spectrogram is read here, so
every rank and worker computes the same plan and takes its own part of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stemforge import shards
from stemforge.shards.files import open_shard_url

PLAN_COLUMNS = ("track_key", "variant", "start_frame", "num_frames")


@dataclass(frozen=True)
class Index:
    """Every committed row, in file and row order, with what planning and the yielded dicts need."""

    files: list[str]
    footers: list[pq.FileMetaData]  # workers open files with these, so they never re-read a footer
    columns: list[str]  # the tensor columns to read
    group_file: np.ndarray  # [G] file of each row group
    group_index: np.ndarray  # [G] its number within the file
    row_group: np.ndarray  # [R] row group (0..G-1) of each row
    row_offset: np.ndarray  # [R] position of each row within its row group
    start_frame: np.ndarray  # [R]
    num_frames: np.ndarray  # [R] real frames in the row (the rest is zero padding)
    scalars: dict[str, list[Any]]  # [R] per yielded scalar column
    run_first: np.ndarray  # [U] first row of each run of continuous frames (only rows that pass the filters)
    run_rows: np.ndarray  # [U] rows in the run
    run_frames: np.ndarray  # [U] real frames in the run


def _matches(column: pa.ChunkedArray, name: str, wanted: Any) -> np.ndarray:
    """Rows of one column that a filter keeps (nulls match only ``None``)."""
    try:
        keep = _condition(column, name, wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError) as exc:
        raise ValueError(f"filter {name!r} ({column.type}): cannot compare with {wanted!r}: {exc}") from None
    return pc.fill_null(keep, False).to_numpy(zero_copy_only=False).astype(bool)


def _condition(column: pa.ChunkedArray, name: str, wanted: Any) -> pa.ChunkedArray:
    if isinstance(wanted, dict):
        if not wanted or set(wanted) - {"min", "max"}:
            raise ValueError(f"filter {name!r}: a range is {{'min': low, 'max': high}} (either may be left out)")
        low = pc.greater_equal(column, wanted["min"]) if "min" in wanted else None
        high = pc.less_equal(column, wanted["max"]) if "max" in wanted else None
        return high if low is None else low if high is None else pc.and_(low, high)
    if isinstance(wanted, (list, tuple, set, frozenset)):
        return pc.is_in(column, value_set=pa.array(list(wanted), type=column.type))
    if wanted is None:
        return pc.is_null(column)
    return pc.equal(column, pa.scalar(wanted, type=column.type))


def _check_columns(url: str, schema: pa.Schema, columns: Sequence[str], scalars: Sequence[str]) -> None:
    tensors = [f.name for f in schema if shards.is_tensor(f.type)]
    plain = [f.name for f in schema if not shards.is_tensor(f.type)]
    for name in columns:
        if name not in tensors:
            raise ValueError(f"{url}: no tensor column {name!r}; tensor columns: {', '.join(tensors)}")
    for name in scalars:
        if name not in plain:
            raise ValueError(f"{url}: no scalar column {name!r}; scalar columns: {', '.join(plain)}")


def build_index(files: list[str], columns: Sequence[str] | None, scalars: Sequence[str], filters: dict[str, Any],
                storage_options: dict[str, Any]) -> Index:
    """Reads each shard's footer and scalar columns once (no tensors) and finds the runs."""
    if not files:
        raise FileNotFoundError("the committed runs of these roots list no shards (every input was rejected?)")
    footers, tables, groups, tensor_columns = [], [], [], list(columns or [])
    needed = list(dict.fromkeys([*PLAN_COLUMNS, *filters, *scalars]))
    for number, url in enumerate(files):
        parquet, handle = open_shard_url(url, storage_options)
        try:
            schema = parquet.schema_arrow
            if number == 0 and columns is None:
                tensor_columns = [f.name for f in schema if shards.is_tensor(f.type)]
            _check_columns(url, schema, tensor_columns, needed)
            tables.append(parquet.read(columns=needed, use_threads=handle is None))
            footers.append(parquet.metadata)
        finally:
            if handle is not None:
                handle.close()
        groups += [(number, g, parquet.metadata.row_group(g).num_rows) for g in range(parquet.num_row_groups)]
    table = pa.concat_tables(tables)
    keep = np.ones(len(table), bool)
    for name, wanted in filters.items():
        keep &= _matches(table.column(name), name, wanted)
    sizes = np.array([n for _, _, n in groups], np.int64)
    row_group = np.repeat(np.arange(len(groups)), sizes)
    row_offset = np.arange(len(table)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    values = {name: table.column(name).to_numpy(zero_copy_only=False) for name in PLAN_COLUMNS}
    first, rows, frames = _runs(keep, row_group, values)
    return Index(files, footers, tensor_columns, np.array([f for f, _, _ in groups], np.int64),
                 np.array([g for _, g, _ in groups], np.int64), row_group, row_offset,
                 values["start_frame"].astype(np.int64), values["num_frames"].astype(np.int64),
                 {name: table.column(name).to_pylist() for name in scalars}, first, rows, frames)


def _runs(keep: np.ndarray, row_group: np.ndarray, values: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Runs: maximal sequences of kept, consecutive rows of one track variant in one row group whose frames
    continue each other (a row starts where the previous one's real frames end)."""
    rows = np.flatnonzero(keep)
    key, variant, start, count = (values[name] for name in PLAN_COLUMNS)
    prev, cur = rows[:-1], rows[1:]
    joined = np.zeros(len(rows), bool)
    joined[1:] = ((cur == prev + 1) & (row_group[cur] == row_group[prev])
                  & (key[cur] == key[prev]) & (variant[cur] == variant[prev])
                  & (start[cur] == start[prev] + count[prev]))
    heads = np.flatnonzero(~joined)
    lengths = np.diff(np.append(heads, len(rows)))
    frames = np.add.reduceat(count[rows].astype(np.int64), heads) if len(rows) else np.zeros(0, np.int64)
    return rows[heads].astype(np.int64), lengths.astype(np.int64), frames


@dataclass(frozen=True)
class Samples:
    """One epoch's samples in global order: the run each comes from and its offset in it (a row offset for
    whole rows, a frame offset for crops)."""

    run: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return len(self.run)


def crops_per_run(index: Index, cropsize: int | None) -> np.ndarray:
    """Samples per run: its rows, or ceil(frames / cropsize) crops, so each frame is covered about once."""
    if cropsize is None:
        return index.run_rows
    return np.maximum(1, -(-index.run_frames // cropsize))


def epoch_samples(index: Index, cropsize: int | None, shuffle: bool, seed: int, epoch: int) -> Samples:
    """The epoch's samples in global order. Shuffled: row groups in a random order, samples within a row group
    in a random order, crop starts uniform over the run; else file order and crops tiling each run."""
    counts = crops_per_run(index, cropsize)
    run = np.repeat(np.arange(len(counts)), counts)
    nth = np.arange(len(run)) - np.repeat(np.cumsum(counts) - counts, counts)
    rng = np.random.default_rng([seed, epoch])
    if cropsize is None:
        offset = nth
    elif shuffle:
        offset = np.floor(rng.random(len(run)) * (np.maximum(index.run_frames - cropsize, 0) + 1)[run])
    else:
        offset = nth * cropsize
    samples = Samples(run, offset.astype(np.int64))
    if not shuffle:
        return samples
    group_rank = rng.permutation(len(index.group_file))
    order = np.lexsort((rng.random(len(run)), group_rank[index.row_group[index.run_first[run]]]))
    return Samples(run[order], samples.offset[order])


def share(total: int, parts: int, part: int, equal: bool) -> tuple[int, int]:
    """The contiguous [begin, end) slice of ``total`` samples that ``part`` of ``parts`` takes: equal sizes
    (dropping the last ``total % parts``) or sizes that differ by at most one (nothing dropped)."""
    if equal:
        size = total // parts
        return part * size, (part + 1) * size
    return part * total // parts, (part + 1) * total // parts


def buffer_order(length: int, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """The order a shuffle buffer of ``buffer_size`` emits a stream of ``length`` samples in, as stream
    positions: fill the buffer, then each new sample replaces a uniformly drawn one, which is emitted."""
    if buffer_size <= 1 or length <= 1:
        return np.arange(length)
    fill = min(buffer_size, length)
    buffer = list(range(fill))
    out = np.empty(length, np.int64)
    picks = rng.integers(0, fill, length - fill)
    for emitted, (position, slot) in enumerate(zip(range(fill, length), picks.tolist())):
        out[emitted] = buffer[slot]
        buffer[slot] = position
    out[length - fill:] = rng.permutation(buffer)
    return out


def worker_skips(counts: Sequence[int], step: int, batch_size: int) -> tuple[list[int], int]:
    """Where each DataLoader worker stood when its rank had delivered ``step`` samples: how many samples each had
    produced, and which worker's batch came next. The in-order DataLoader takes one batch from each worker in
    turn (0, 1, ...) and skips workers that are done."""
    taken, left, turn = [0] * len(counts), step, 0
    if step > sum(counts):
        raise ValueError(f"step {step} is past the {sum(counts)} samples this rank yields per epoch")
    while left > 0:
        size = min(batch_size, counts[turn] - taken[turn])
        if size > left:
            raise ValueError(f"step {step} falls inside a batch of {batch_size}: give whole batches")
        taken[turn] += max(size, 0)
        left -= max(size, 0)
        turn = (turn + 1) % len(counts)
    return taken, turn
