"""Arrays in a local scratch file, one per fixed-size slot, written and read by slot through ``pwrite`` and
``preadv`` (never memory-mapped, as ``pipeline.engine.track.ScratchAudio``): a track's spectrogram blocks and
its masks."""

from __future__ import annotations

import os

import numpy as np


class RecordFile:
    """Slots of ``record_bytes`` each (None: the size of the first array written); an array may fill less
    than its slot (a track's last block)."""

    def __init__(self, path: str, record_bytes: int | None = None) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._record = record_bytes

    def write(self, slot: int, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array)
        if self._record is None:
            self._record = data.nbytes
        os.pwrite(self._fd, data.data, slot * self._record)

    def read(self, slot: int, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A fresh (writable) array of ``shape`` from the start of ``slot``."""
        out = np.empty(shape, dtype)
        if os.preadv(self._fd, [out], slot * (self._record or 0)) != out.nbytes:
            raise OSError(f"short read of slot {slot} from the track's scratch file")
        return out

    def close(self) -> None:
        os.close(self._fd)
