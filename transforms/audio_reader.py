"""The interface both decoders share: :class:`AudioInfo` and the checked reads of :class:`AudioReader`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from stemforge.transforms.errors import AudioError

DEFAULT_BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class AudioInfo:
    """What is known before reading: frame count, rate, channel count, container, encoding, and how.

    ``decoder`` is ``"libsndfile"`` or ``"ffmpeg"``; ``length`` says where ``frames`` comes from:
    ``"declared"`` (a header states the exact count, and decoding delivered it) or ``"counted"``
    (the stream was decoded to its end and its frames counted: no exact count in the file).
    """

    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str
    decoder: str = "libsndfile"
    length: str = "declared"


class AudioReader:
    """An open audio file with checked random-access reads (see :func:`transforms.open_audio`).

    Subclasses decode frames into an array (``_decode_into``); this class checks ranges, lengths
    and values, so both decoders raise the same :class:`AudioError` reasons.
    """

    def __init__(self, uri: str, info: AudioInfo) -> None:
        self.uri = uri
        self.info = info

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as float32 ``[channels, stop - start]``.

        Raises AudioError ``truncated`` if the decoder fails or delivers fewer
        frames than asked, ``non_finite`` on NaN/inf.
        """
        if not 0 <= start <= stop <= self.info.frames:
            raise ValueError(f"frame range [{start}, {stop}) outside [0, {self.info.frames}]")
        out = np.empty((self.info.channels, stop - start), dtype=np.float32)
        self._fill(out, start)
        return out

    def blocks(self, block_frames: int = DEFAULT_BLOCK_FRAMES, start: int = 0,
               stop: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive checked blocks of at most ``block_frames`` covering ``[start, stop)``."""
        stop = self.info.frames if stop is None else stop
        if block_frames <= 0:
            raise ValueError("block_frames must be positive")
        for block_start in range(start, stop, block_frames):
            yield self.read(block_start, min(block_start + block_frames, stop))

    def _fill(self, out: np.ndarray, start: int) -> None:
        """Decode into ``out`` (``[channels, n]``) from frame ``start``, checking length and values."""
        wanted = out.shape[1]
        if wanted == 0:
            return
        done = self._decode_into(out, start)
        if done < wanted:
            raise AudioError(
                self.uri, "truncated",
                f"stream ends at frame {start + done}, header declares {self.info.frames} frames",
            )
        if not np.isfinite(out).all():
            first = int(np.argwhere(~np.isfinite(out))[0, 1]) + start
            raise AudioError(self.uri, "non_finite", f"NaN or infinite sample at frame {first}")

    def _decode_into(self, out: np.ndarray, start: int) -> int:
        """Fill ``out`` from frame ``start``; return how many frames were delivered."""
        raise NotImplementedError
