"""Each track variant's model masks, kept in a local scratch file beside its audio as the batcher returns them,
and the finiteness rule for masks and stems.

The masks never leave the worker: no object per window on the output store, no GroupByKey, and the track is
decoded once. Who makes them (one WindowBatcher per worker process) is the pipeline's business
(``pipeline.batchers``); this module only receives them.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from stemforge.model.batcher import Receiver
from stemforge.pipeline.engine.records import RecordFile


class NonFiniteError(ValueError):
    """A model mask or a stem holding NaN or infinity: the track is rejected (reason ``non_finite``), never
    committed."""

    reason = "non_finite"


def require_finite(values: np.ndarray, what: str) -> None:
    """Raise NonFiniteError unless every value is finite."""
    if not np.isfinite(values).all():
        raise NonFiniteError(f"the {what} holds NaN or infinite values")


class TrackMasks:
    """The centre masks of one track variant's windows, written by the batcher's thread to a local file as
    they arrive (``pwrite``, so a long track's masks never sit in memory) and read back by window."""

    def __init__(self, path: str, keys: list[tuple[int, int]]) -> None:
        self._slots = {key: n for n, key in enumerate(keys)}
        self._file = RecordFile(path)
        self._lock = threading.Lock()
        self._shape: tuple[int, ...] | None = None
        self._left = len(keys)
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._closed = False
        if not keys:
            self._done.set()

    def receiver(self, key: tuple[int, int]) -> Receiver:
        """The callback the batcher calls with window ``key``'s mask."""
        return functools.partial(self._receive, key)

    def _receive(self, key: tuple[int, int], result: np.ndarray | BaseException) -> None:
        with self._lock:
            try:
                if self._closed:  # the track was given up: its file descriptor may already be another file's
                    return
                if isinstance(result, BaseException):
                    raise result
                mask = np.asarray(result, np.float32)
                require_finite(mask, "model's mask")
                self._shape = mask.shape
                self._file.write(self._slots[key], mask)
            except BaseException as exc:  # noqa: BLE001 - kept for the track's thread, never the batcher's
                self._error = self._error or exc
            finally:
                self._left -= 1
                if self._left == 0:
                    self._done.set()

    @property
    def complete(self) -> bool:
        return self._done.is_set()

    def wait(self) -> None:
        """Block until every window's mask arrived; the first failure (the model's or the disk's) is raised."""
        self._done.wait()
        if self._error is not None:
            raise self._error

    def load(self, pass_index: int, index: int) -> np.ndarray:
        """One window's mask, as the model returned it (float32)."""
        return self._file.read(self._slots[(pass_index, index)], self._shape, np.float32)

    def close(self) -> None:
        """Close the file; masks that arrive later (a track given up mid-way) are dropped."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._file.close()
