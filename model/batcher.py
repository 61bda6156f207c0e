"""One model shared by every thread of a process: tracks submit windows, a batcher thread runs them in
fixed-size batches and hands each window's mask back, whichever tracks share a batch.

Why not a batch per track: a track's last batch would be padded, and a process preparing several tracks
(threads, or one thread with tracks still open) fills its batches from all of them. Why fixed-size: CPU
kernels choose algorithms by shape, so a padded batch keeps a window's mask independent of its batch-mates,
and a rerun reproduces it bit for bit (same device and thread count).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import torch

Receiver = Callable[[np.ndarray | BaseException], None]


class WindowBatcher:
    """Batches windows from any thread through ``predict`` (``[B, ...]`` → ``[B, ...]`` masks) on its own
    thread; at most ``max_queued`` windows wait, so a fast producer blocks instead of filling memory."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], batch_size: int,
                 max_queued: int | None = None) -> None:
        self._predict = predict
        self._batch_size = batch_size
        self._max_queued = max(max_queued or 2 * batch_size, batch_size)
        self._queue: list[tuple[np.ndarray | torch.Tensor, Receiver]] = []
        self._cond = threading.Condition()
        self._flush = False
        self._closed = False
        self._sizes: list[int] = []
        self._thread = threading.Thread(target=self._loop, name="stemforge-batcher", daemon=True)
        self._thread.start()

    def submit(self, window: np.ndarray | torch.Tensor, receive: Receiver) -> float:
        """Queue one window (a host array, or a tensor already on the model's device); ``receive`` gets its
        mask (or the batch's exception) on the batcher's thread. Returns the seconds the caller waited for
        room in the queue (model time, not the caller's work)."""
        start = time.perf_counter()
        with self._cond:
            while len(self._queue) >= self._max_queued and not self._closed:
                self._cond.wait()
            if self._closed:
                raise RuntimeError("the window batcher is closed")
            self._queue.append((window, receive))
            self._cond.notify_all()
        return time.perf_counter() - start

    def flush(self) -> None:
        """Run what is queued now, padding the last batch: a caller is about to wait for its masks."""
        with self._cond:
            if self._queue:
                self._flush = True
                self._cond.notify_all()

    def batch_sizes(self) -> list[int]:
        """The number of real (not padding) windows in each batch run since the last call."""
        with self._cond:
            sizes, self._sizes = self._sizes, []
        return sizes

    def close(self) -> None:
        """Run what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _next_batch(self) -> list[tuple[np.ndarray | torch.Tensor, Receiver]] | None:
        with self._cond:
            while not (len(self._queue) >= self._batch_size or (self._queue and (self._flush or self._closed))):
                if self._closed:
                    return None
                self._cond.wait()
            batch = self._queue[: self._batch_size]
            del self._queue[: self._batch_size]
            if not self._queue:
                self._flush = False
            self._cond.notify_all()
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            windows = _padded([w for w, _ in batch], self._batch_size)
            try:
                masks = self._predict(windows)
            except BaseException as exc:  # noqa: BLE001 - each window's track gets the error, the thread goes on
                for _, receive in batch:
                    receive(exc)
                continue
            with self._cond:
                self._sizes.append(len(batch))
            for (_, receive), mask in zip(batch, masks):
                receive(mask)


def _padded(windows: list[np.ndarray | torch.Tensor], size: int) -> np.ndarray | torch.Tensor:
    """The windows stacked and zero-padded to ``size`` (on the device they are on, for tensors)."""
    if isinstance(windows[0], torch.Tensor):
        stacked = torch.stack(windows)
        missing = stacked.new_zeros((size - len(windows), *stacked.shape[1:]))
        return torch.cat([stacked, missing]) if len(missing) else stacked
    stacked = np.stack(windows)
    if len(windows) < size:
        stacked = np.concatenate([stacked, np.zeros((size - len(windows), *stacked.shape[1:]), stacked.dtype)])
    return stacked
