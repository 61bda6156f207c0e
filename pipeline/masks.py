"""Where model masks are made and kept: one WindowBatcher per worker process (one model, every thread's tracks
filling its batches), and each track variant's masks in a local scratch file beside its audio.

The masks never leave the worker: no object per window on the output store, no GroupByKey, and the track is
decoded once. ``model.share_across_processes`` loads ``model.model_copies`` copies per machine in Beam's
MultiProcessShared server and calls them from every SDK process (one GPU, many processes).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable

import numpy as np
import torch
from apache_beam.utils.multi_process_shared import MultiProcessShared

from model import InferenceModel
from model.batcher import Receiver, WindowBatcher
from pipeline.config import ModelConfig
from pipeline.inference import load_net
from pipeline.storage import StorageOptions


class TrackMasks:
    """The centre masks of one track variant's windows, written by the batcher's thread to a local file as
    they arrive (``pwrite``, so a long track's masks never sit in memory) and read back by window."""

    def __init__(self, path: str, keys: list[tuple[int, int]]) -> None:
        self._slots = {key: n for n, key in enumerate(keys)}
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
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
                mask = np.ascontiguousarray(result, np.float32)
                if self._shape is None:
                    self._shape = mask.shape
                os.pwrite(self._fd, mask.data, self._slots[key] * mask.nbytes)
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
        out = np.empty(self._shape, np.float32)
        if os.preadv(self._fd, [out], self._slots[(pass_index, index)] * out.nbytes) != out.nbytes:
            raise OSError(f"short read of the mask of window {pass_index}/{index} from the track's scratch file")
        return out

    def close(self) -> None:
        """Close the file; masks that arrive later (a track given up mid-way) are dropped."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)


def load_model(config: ModelConfig, storage_options: StorageOptions) -> InferenceModel:
    """The configured network on its device (see ``model.cpu_threads``)."""
    if config.cpu_threads is not None:
        # one intra-op pool per worker process: with several SDK processes per machine, N processes x N cores
        # threads would oversubscribe the CPUs
        torch.set_num_threads(config.cpu_threads)
    net = load_net(config, storage_options, device=config.device)
    return InferenceModel(net, device=config.device, precision=config.precision)


_LOCK = threading.Lock()
_BATCHERS: dict[str, tuple[WindowBatcher, int]] = {}


def acquire_batcher(tag: str, config: ModelConfig, storage_options: StorageOptions) -> WindowBatcher:
    """This process's batcher for run ``tag`` (made on first use; release it with :func:`release_batcher`)."""
    with _LOCK:
        if tag in _BATCHERS:
            batcher, users = _BATCHERS[tag]
        else:
            loader = functools.partial(load_model, config, storage_options)
            predict: Callable[[np.ndarray], np.ndarray]
            if config.share_across_processes:
                copy = os.getpid() % config.model_copies
                predict = MultiProcessShared(loader, tag=f"stemforge-{tag}-{copy}").acquire()
            else:
                predict = loader()
            batcher, users = WindowBatcher(predict, config.batch_size), 0
        _BATCHERS[tag] = (batcher, users + 1)
        return batcher


def release_batcher(tag: str) -> None:
    """One user fewer; the last one stops the batcher's thread and drops its model."""
    with _LOCK:
        batcher, users = _BATCHERS.pop(tag)
        if users > 1:
            _BATCHERS[tag] = (batcher, users - 1)
            return
    batcher.close()
