"""Window geometry of vocal-remover's inference, in original (unpadded) frame coordinates.

The spectrogram is padded with ``pad_left`` zero frames on the left and
``pad_right`` on the right; window ``i`` is padded frames
``[i*roi, i*roi + cropsize)``, and only its centre ``roi`` frames (``offset``
frames of context dropped on each side) are kept. Expressing windows in
original coordinates lets a caller cut windows straight from a track (see
``crop_frames``) without materialising the padded array, so windows of many
tracks can share one batch and still reproduce ``Separator`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def make_padding(n_frames: int, cropsize: int, offset: int) -> tuple[int, int, int]:
    """vocal-remover's padding rule: ``(pad_left, pad_right, roi)``.

    ``roi = cropsize - 2*offset`` (``cropsize`` if that is 0);
    ``pad_left = offset``; ``pad_right = roi - n_frames % roi + offset``, so a
    length that is a multiple of roi still gets one extra, all-padding roi.
    """
    roi = cropsize - 2 * offset
    if roi == 0:
        roi = cropsize
    if roi <= 0:
        raise ValueError(f"cropsize={cropsize} must exceed 2*offset={2 * offset}")
    left = offset
    right = roi - n_frames % roi + offset
    return left, right, roi


@dataclass(frozen=True)
class WindowGrid:
    """The windows covering ``n_frames`` frames; ``shift`` extra zero frames pad both sides.

    ``shift=0`` is the main pass; ``shift=roi//2`` is the test-time-augmentation
    pass, whose windows straddle the main pass's seams.
    """

    n_frames: int
    cropsize: int
    offset: int
    shift: int = 0

    def __post_init__(self) -> None:
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")
        if self.offset < 0 or self.shift < 0:
            raise ValueError(f"offset and shift must be >= 0, got {self.offset} and {self.shift}")
        covered = self.num_windows * self.roi - self.shift
        if covered < self.n_frames:
            raise ValueError(
                f"shift={self.shift} leaves frames {covered}..{self.n_frames - 1} uncovered "
                f"(roi={self.roi}); use 0 or roi//2 with an even roi"
            )

    @property
    def roi(self) -> int:
        """Frames each window contributes (its centre)."""
        return make_padding(self.n_frames, self.cropsize, self.offset)[2]

    @property
    def pad_left(self) -> int:
        """Zero frames before frame 0 of the padded spectrogram."""
        return make_padding(self.n_frames, self.cropsize, self.offset)[0] + self.shift

    @property
    def pad_right(self) -> int:
        """Zero frames after the last frame of the padded spectrogram."""
        return make_padding(self.n_frames, self.cropsize, self.offset)[1] + self.shift

    @property
    def padded_frames(self) -> int:
        """Width of the padded spectrogram."""
        return self.pad_left + self.n_frames + self.pad_right

    @property
    def num_windows(self) -> int:
        """``(padded width - 2*offset) // roi``, as upstream."""
        return (self.padded_frames - 2 * self.offset) // self.roi

    def _check(self, i: int) -> None:
        if not 0 <= i < self.num_windows:
            raise IndexError(f"window {i} out of range [0, {self.num_windows})")

    def input_span(self, i: int) -> tuple[int, int]:
        """Original frames ``[start, stop)`` that window ``i`` reads (zeros outside ``[0, n_frames)``)."""
        self._check(i)
        start = i * self.roi - self.pad_left
        return start, start + self.cropsize

    def output_span(self, i: int) -> tuple[int, int]:
        """Original frames ``[start, stop)`` that window ``i``'s centre covers, before trimming."""
        start = self.input_span(i)[0] + self.offset
        return start, start + self.roi

    def contributing(self) -> list[int]:
        """Windows whose centre overlaps the track; the others only yield frames that are trimmed away."""
        spans = (self.output_span(i) for i in range(self.num_windows))
        return [i for i, (start, stop) in enumerate(spans) if stop > 0 and start < self.n_frames]


def crop_frames(spec: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``spec[..., start:stop]`` with zeros wherever the range lies outside ``[0, frames)``."""
    if stop < start:
        raise ValueError(f"stop={stop} is before start={start}")
    frames = spec.shape[-1]
    out = np.zeros(spec.shape[:-1] + (stop - start,), dtype=spec.dtype)
    lo, hi = max(start, 0), min(stop, frames)
    if lo < hi:
        out[..., lo - start : hi - start] = spec[..., lo:hi]
    return out
