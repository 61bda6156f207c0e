"""The one mask procedure of every separation path: from the centre masks of a track's model windows to the
mask of any frame range.

``Separator`` (host arrays), ``DeviceSeparator`` (torch tensors on the model's device) and the pipeline's
``MaskReader`` (windows read back from a scratch file) differ only in how a window's centre mask is obtained;
each hands :class:`MaskAssembler` a ``load(pass, window)`` callable and reads masks by frame range. The
procedure is vocal-remover's, with UVR's additions: the window grids (:func:`mask_grids`), TTA's second pass
averaged in, UVR's aggressiveness, vocal-remover's artifact merge, and the track's last frame held over the
frames after it (the stems' end padding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stemforge.model.postprocess import adjust_aggression, artifact_weights
from stemforge.model.uvr_models import FLIPPED_STEMS
from stemforge.model.windows import WindowGrid
from stemforge.transforms.bands import BandParams


@dataclass(frozen=True)
class Aggression:
    """UVR's aggressiveness setting for a model: ``value`` (UVR's integer, 5 by default), the row where
    the gentler exponent stops (``split_bin``: band 1's ``crop_stop``), and whether it is flipped
    (the mask's stem is a non-accompaniment stem such as vocals)."""

    value: int
    split_bin: int
    flip: bool = False

    @classmethod
    def for_table(cls, value: int, bands: BandParams, first_stem: str) -> Aggression:
        """UVR's rule: split at band 1's ``crop_stop``, flipped when the mask's stem (the first) is a
        non-accompaniment stem such as ``vocals``."""
        return cls(value, bands.bands[0].crop_stop, first_stem in FLIPPED_STEMS)


def mask_grids(n_frames: int, cropsize: int, offset: int, tta: bool) -> list[WindowGrid]:
    """The window grids of vocal-remover's inference: one pass, or two with TTA (the second shifted by
    half a window's centre, so its windows straddle the first pass's seams)."""
    base = WindowGrid(n_frames, cropsize, offset)
    if not tta:
        return [base]
    return [base, WindowGrid(n_frames, cropsize, offset, shift=base.roi // 2)]


def predict_windows(passes: Sequence[WindowGrid], batch_size: int, cut: Callable[[WindowGrid, int], Any],
                    predict: Callable[[list[Any]], Any]) -> dict[tuple[int, int], Any]:
    """The centre mask of every contributing window of ``passes``, by (pass, window): ``cut(grid, i)`` is
    window ``i``'s peak-normalised magnitude, ``predict(windows)`` the net's centres for a list of them,
    called with up to ``batch_size`` windows of one pass at a time (the batches ``Separator`` always made)."""
    centres: dict[tuple[int, int], Any] = {}
    for p, grid in enumerate(passes):
        needed = grid.contributing()
        for b in range(0, len(needed), batch_size):
            chunk = needed[b : b + batch_size]
            for i, centre in zip(chunk, predict([cut(grid, i) for i in chunk])):
                centres[(p, i)] = centre
    return centres


def _concat(parts: list[Any]) -> Any:
    """Frames side by side (numpy arrays or torch tensors)."""
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts, dim=-1)
    return np.concatenate(parts, axis=-1)


def _repeat_last(mask: Any, count: int) -> Any:
    """``count`` copies of the last frame of ``mask`` (numpy array or torch tensor)."""
    last = mask[..., -1:]
    if isinstance(last, torch.Tensor):
        return last.expand(*last.shape[:-1], count)
    return np.repeat(last, count, axis=-1)


class MaskAssembler:
    """The mask of a track of ``n_frames`` frames, by frame range, from its windows' centre masks.

    ``load(p, i)`` returns the centre mask ``[2, bins, roi]`` of window ``i`` of grid ``passes[p]`` (only
    windows in ``grid.contributing()`` are asked for). ``aggression`` (UVR's) is applied to the TTA average;
    with ``postprocess_threshold`` set, vocal-remover's ``merge_artifacts`` at that threshold is applied
    last, its per-frame weights found here once from the whole track. Host arrays for aggression and the
    artifact merge; a torch ``load`` supports neither (the device path has no TTA or post-processing).
    """

    def __init__(self, n_frames: int, passes: Sequence[WindowGrid], load: Callable[[int, int], Any],
                 aggression: Aggression | None = None, postprocess_threshold: float | None = None) -> None:
        if not 1 <= len(passes) <= 2:
            raise ValueError(f"expected one grid, or two with TTA, got {len(passes)}")
        self.n_frames = n_frames
        self._grids = list(passes)
        self._load = load
        self._aggression = aggression
        self._weights: np.ndarray | None = None
        if postprocess_threshold is not None:
            frame_min = np.empty(n_frames, np.float32)
            step = self._grids[0].roi
            for start in range(0, n_frames, step):
                stop = min(start + step, n_frames)
                frame_min[start:stop] = self._adjusted(start, stop).min(axis=(0, 1))
            self._weights = artifact_weights(frame_min, thres=postprocess_threshold)

    def _pass(self, pass_index: int, start: int, stop: int) -> Any:
        """Frames [start, stop) of one grid's mask, cut from the centres of the windows covering them."""
        grid = self._grids[pass_index]
        parts = []
        frame = start
        while frame < stop:
            i = (frame + grid.shift) // grid.roi
            w_start, w_stop = grid.output_span(i)
            take = min(stop, w_stop) - frame
            parts.append(self._load(pass_index, i)[..., frame - w_start : frame - w_start + take])
            frame += take
        return _concat(parts)

    def _adjusted(self, start: int, stop: int) -> Any:
        """The TTA-averaged mask with UVR's aggressiveness, which merge_artifacts then reads (UVR's order)."""
        mask = self._pass(0, start, stop)
        if len(self._grids) == 2:
            mask = (mask + self._pass(1, start, stop)) * 0.5
        if self._aggression is None:
            return mask
        a = self._aggression
        return adjust_aggression(mask, a.value, a.split_bin, a.flip)

    def _inside(self, start: int, stop: int) -> Any:
        """Frames [start, stop) within the track, artifact merge applied."""
        mask = self._adjusted(start, stop)
        if self._weights is not None:
            mask = mask + self._weights[start:stop] * (1.0 - mask)
        return mask

    def get(self, start: int, stop: int) -> Any:
        """Mask frames [start, stop), shape [2, bins, stop - start]; frames past the track's end repeat its
        last frame."""
        last = self.n_frames
        if stop <= last:
            return self._inside(start, stop)
        inside = self._inside(min(start, last - 1), last)
        held = _repeat_last(inside, stop - max(start, last))
        return _concat([inside[..., : max(last - start, 0)], held])
