"""ShardDataset: a torch IterableDataset over the committed shards of stemforge output roots."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from stemforge import shards
from stemforge.training import plan

_OPEN_FILES = 8  # parquet files a worker keeps open (row groups of one file come back after a shuffle)
_PREFETCH = 2  # row groups read and cut ahead of the buffer, by a worker's reading thread


class ShardDataset(IterableDataset):
    """Samples from the committed shards of one or more output roots (any fsspec URLs), as dicts of float32 (or
    ``dtype``) tensors ``[2, bins, frames]`` keyed by column name plus the scalar columns named in ``scalars``.

    Only shards that a committed run manifest lists are read. Each epoch's samples are planned from the scalar
    columns (no tensors), split over ranks and DataLoader workers so each is produced once, and read one row
    group at a time. Arguments:

    - ``columns``: the tensor columns to yield (default: all of them, e.g. mixture, the two stems, clean).
    - ``cropsize``: None yields whole rows as stored (``segment_frames`` frames, the last row of a track zero
      padded); an int yields crops of that many frames from a run of continuous frames (a track variant's
      consecutive rows in one row group, padding dropped), so crops cross segment rows. A run has
      ceil(frames / cropsize) crops per epoch; a run shorter than ``cropsize`` is zero-padded at the end.
      For a crop, ``start_frame`` is the track frame it starts at and ``num_frames`` its real frames; other
      scalars are those of the row it starts in.
    - ``filters``: ``{column: value}`` keeps rows equal to it, a list/tuple/set keeps rows in it, and
      ``{"min": low, "max": high}`` (inclusive, either optional) keeps a range; any scalar column.
    - ``shuffle``: row groups in a random order each epoch, then a shuffle buffer of ``buffer_size`` samples
      per worker (1: none), and random crop starts, all from (``seed``, epoch). False: file order, crops tiling
      each run. A worker holds about ``buffer_size`` samples plus two row groups' samples, in float32.
    - ``equal_ranks``: every rank yields the same number of samples (at most ``world_size`` - 1 per epoch are
      dropped), because a rank with more batches than the others hangs DDP's collectives. False reads every
      sample exactly once, with counts that differ by at most one.
    - ``rank``/``world_size``: default to torch.distributed's when initialised (construct after
      ``init_process_group``), else 0 and 1.
    - ``storage_options``: fsspec arguments for the roots' filesystem.
    - ``dtype``: of the yielded tensors; ``torch.float16`` halves what DataLoader workers pass through shared
      memory (convert on the GPU, ``batch.to(device).float()``).

    Call ``set_epoch`` before each epoch, or ``resume`` to continue an interrupted one; a DataLoader's workers
    see the change only if they are started anew for each epoch (``persistent_workers=False``, the default).
    """

    def __init__(self, roots: str | Sequence[str], columns: Sequence[str] | None = None, cropsize: int | None = None,
                 filters: dict[str, Any] | None = None, scalars: Sequence[str] = ("track_key", "variant"),
                 shuffle: bool = True, seed: int = 0, buffer_size: int = 64, equal_ranks: bool = True,
                 rank: int | None = None, world_size: int | None = None,
                 storage_options: dict[str, Any] | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if cropsize is not None and (not isinstance(cropsize, int) or isinstance(cropsize, bool) or cropsize < 1):
            raise ValueError(f"cropsize must be a positive int or None, not {cropsize!r}")
        self.storage_options = dict(storage_options or {})
        self.index: plan.Index = plan.build_index(shards.committed_shards(roots, self.storage_options), columns,
                                        list(scalars), dict(filters or {}), self.storage_options)
        self.cropsize, self.shuffle, self.seed, self.buffer_size = cropsize, shuffle, seed, buffer_size
        self.equal_ranks, self.dtype = equal_ranks, dtype
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.epoch, self._resume = 0, (0, 1)
        self._total = int(plan.crops_per_run(self.index, cropsize).sum())

    def __len__(self) -> int:
        """Samples this rank yields per epoch (the same every epoch)."""
        begin, end = plan.share(self._total, self.world_size, self.rank, self.equal_ranks)
        return end - begin

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its beginning at the next iteration (it seeds the shuffle and the crops)."""
        self.epoch, self._resume = epoch, (0, 1)

    def resume(self, epoch: int, step: int, batch_size: int = 1) -> None:
        """Continue ``epoch`` after the ``step`` samples this rank's DataLoader already delivered: the next
        iteration yields exactly what an uninterrupted one would have yielded next. ``batch_size`` is the
        DataLoader's (an in-order DataLoader takes whole batches from its workers in turn, so it decides which
        worker produced what; ``drop_last`` is assumed off); ``step`` is a whole number of its batches. Needs the
        same ranks, workers and arguments as the interrupted run."""
        if step < 0 or batch_size < 1:
            raise ValueError(f"resume needs step >= 0 and batch_size >= 1, not {step} and {batch_size}")
        self.epoch, self._resume = epoch, (step, batch_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        samples = plan.epoch_samples(self.index, self.cropsize, self.shuffle, self.seed, self.epoch)
        rank_begin, rank_end = plan.share(len(samples), self.world_size, self.rank, self.equal_ranks)
        slices = [plan.share(rank_end - rank_begin, workers, k, False) for k in range(workers)]
        skips, turn = plan.worker_skips([end - begin for begin, end in slices], *self._resume)
        role = (worker + turn) % workers  # the DataLoader asks worker 0 first: it continues the part whose turn it is
        begin, end = slices[role]
        stream = np.arange(rank_begin + begin, rank_begin + end)
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, role])
        order = plan.buffer_order(len(stream), self.buffer_size if self.shuffle else 1, rng)
        return self._emit(samples, stream, order, skips[role])

    def _emit(self, samples: plan.Samples, stream: np.ndarray, order: np.ndarray,
              skip: int) -> Iterator[dict[str, Any]]:
        """Yields the stream's samples in ``order`` after the first ``skip``. Row groups are read in stream order,
        each once and only if some of its samples are still to come, on a thread that also cuts the samples out
        (so it overlaps the DataLoader's collation), at most ``_PREFETCH`` row groups ahead of the buffer."""
        groups = self.index.row_group[self.index.run_first[samples.run[stream]]]
        heads = np.flatnonzero(np.diff(groups, prepend=-1)) if len(groups) else np.zeros(0, np.int64)
        wanted = np.zeros(len(stream), bool)
        wanted[order[skip:]] = True
        to_read = deque((a, b) for a, b in zip(heads.tolist(), np.append(heads[1:], len(groups)).tolist())
                        if wanted[a:b].any())
        files = _Files(self.index, self.storage_options)

        def load(a: int, b: int) -> dict[int, dict[str, Any]]:
            tensors = files.read(int(groups[a]))
            return {p: self._sample(samples, int(stream[p]), tensors) for p in range(a, b) if wanted[p]}

        pool = ThreadPoolExecutor(1, thread_name_prefix="shard-reader")
        pending: deque[tuple[int, Future]] = deque()
        ready: dict[int, dict[str, Any]] = {}
        loaded = 0  # stream positions below this are loaded (or never needed)
        try:
            for position in order[skip:].tolist():
                while position >= loaded:
                    while to_read and len(pending) < _PREFETCH:
                        a, b = to_read.popleft()
                        pending.append((b, pool.submit(load, a, b)))
                    loaded, future = pending.popleft()
                    ready.update(future.result())
                yield ready.pop(position)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            files.close()

    def _sample(self, samples: plan.Samples, number: int, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
        """One sample: ``dtype`` tensors copied out of the row group (converted by torch in the copy) and scalars."""
        index, run, offset = self.index, int(samples.run[number]), int(samples.offset[number])
        first, rows = int(index.run_first[run]), int(index.run_rows[run])
        if self.cropsize is None:
            row = first + offset
            out = {name: column[index.row_offset[row]].to(self.dtype, copy=True) for name, column in tensors.items()}
            start, frames = int(index.start_frame[row]), int(index.num_frames[row])
        else:
            counts = index.num_frames[first:first + rows]
            ends = np.cumsum(counts)
            row = first + int(np.searchsorted(ends, offset, side="right"))
            start = int(index.start_frame[first]) + offset
            frames = min(self.cropsize, int(ends[-1]) - offset)
            out = {name: self._crop(column, int(index.row_offset[first]), counts, ends, offset)
                   for name, column in tensors.items()}
        scalars = {name: values[row] for name, values in index.scalars.items()}
        if "start_frame" in scalars:
            scalars["start_frame"] = start
        if "num_frames" in scalars:
            scalars["num_frames"] = frames
        return out | scalars

    def _crop(self, rows: torch.Tensor, head: int, counts: np.ndarray, ends: np.ndarray, offset: int) -> torch.Tensor:
        """``cropsize`` frames from ``offset`` of a run whose rows start at ``head`` in the row group; zeros after
        the run's end."""
        assert self.cropsize is not None
        crop = torch.zeros((*rows.shape[1:-1], self.cropsize), dtype=self.dtype)
        stop = offset + self.cropsize
        for i, (count, end) in enumerate(zip(counts.tolist(), ends.tolist())):
            begin = end - count
            if end > offset and begin < stop:
                a, b = max(begin, offset), min(end, stop)
                crop[..., a - offset:b - offset] = rows[head + i, ..., a - begin:b - begin]
        return crop


class _Files:
    """Reads row groups' tensor columns as ``[rows, 2, bins, frames]`` tensors that view Arrow's buffers, with
    the footers from the index and a few files kept open. Made inside the worker, after fork."""

    def __init__(self, index: plan.Index, storage_options: dict[str, Any]) -> None:
        self._index, self._options = index, storage_options
        self._open: dict[int, tuple[pq.ParquetFile, Any | None]] = {}

    def read(self, group: int) -> dict[str, torch.Tensor]:
        number = int(self._index.group_file[group])
        if number not in self._open:
            if len(self._open) >= _OPEN_FILES:
                self._close(self._open.pop(next(iter(self._open))))
            url, footer = self._index.files[number], self._index.footers[number]
            self._open[number] = shards.open_shard_url(url, self._options, footer)
        parquet, handle = self._open[number]
        table = parquet.read_row_group(int(self._index.group_index[group]), columns=self._index.columns,
                                       use_threads=handle is None)
        with warnings.catch_warnings():  # Arrow's buffers are read-only; these views are only ever copied from
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            return {name: torch.from_numpy(shards.tensor_to_numpy(table.column(name))) for name in self._index.columns}

    @staticmethod
    def _close(opened: tuple[pq.ParquetFile, Any | None]) -> None:
        opened[0].close()
        if opened[1] is not None:
            opened[1].close()

    def close(self) -> None:
        for opened in self._open.values():
            self._close(opened)
        self._open.clear()


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit arguments win, else torch.distributed's when initialised, else a single process."""
    distributed = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if distributed else 0
    if world_size is None:
        world_size = dist.get_world_size() if distributed else 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return rank, world_size
