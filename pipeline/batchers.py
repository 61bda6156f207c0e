"""One WindowBatcher per worker process and run: one model, every thread's tracks filling its batches.

``model.share_across_processes`` loads ``model.model_copies`` copies per machine in Beam's MultiProcessShared
server and calls them from every SDK process (one GPU, many processes).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable

import numpy as np
from apache_beam.utils.multi_process_shared import MultiProcessShared

from stemforge.config.run import ModelConfig
from stemforge.model.batcher import WindowBatcher
from stemforge.pipeline.engine.inference import load_model
from stemforge.pipeline.storage import StorageOptions

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
