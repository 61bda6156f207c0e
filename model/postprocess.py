"""Mask post-processing: vocal-remover's ``merge_artifacts`` and UVR's aggressiveness.

Long stretches where the instrument mask is high in every bin are usually
instrument-only passages in which the net leaves faint vocal artefacts;
pushing the mask to 1 there (with short fades at the edges) removes them.
UVR runs the same ``merge_artifacts`` with ``thres=0.2``; vocal-remover's
default, kept here, is 0.05.
"""

from __future__ import annotations

import numpy as np


def _runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive indices in sorted ``frames`` as ``(first, last)`` pairs."""
    if frames.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1)
    firsts = np.concatenate(([frames[0]], frames[breaks + 1]))
    lasts = np.concatenate((frames[breaks], [frames[-1]]))
    return [(int(a), int(b)) for a, b in zip(firsts, lasts)]


def _frame_weight(
    high_frames: np.ndarray, n_frames: int, min_range: int, fade_size: int
) -> np.ndarray:
    """Per-frame weight in [0, 1]: 1 inside long high-mask runs, linear fades at their edges."""
    weight = np.zeros(n_frames, dtype=np.float64)
    fade_in = np.linspace(0.0, 1.0, fade_size)
    fade_out = np.linspace(1.0, 0.0, fade_size)
    previous_last: int | None = None
    for first, last in _runs(high_frames):
        if last - first <= min_range:
            continue
        if previous_last is not None and first - previous_last < fade_size:
            # Too close to the previous run for a full fade: bridge the gap.
            first = previous_last - 2 * fade_size
        if first == 0:
            ones_from = 0
        else:
            weight[first : first + fade_size] = fade_in
            ones_from = first + fade_size
        weight[last - fade_size : last] = fade_out
        weight[ones_from : last - fade_size] = 1.0
        previous_last = last
    return weight


def artifact_weights(
    frame_min: np.ndarray, thres: float = 0.05, min_range: int = 64, fade_size: int = 32
) -> np.ndarray:
    """Per-frame weights (float32, in [0, 1]) of ``merge_artifacts``, from each frame's mask minimum.

    ``frame_min[t]`` is the mask's minimum over channels and bins at frame t:
    one value per frame is all the run detection needs, so a long track can be
    post-processed as a stream. For a float32 mask, ``mask + weight * (1 - mask)``
    then equals ``merge_artifacts(mask)`` bit for bit.
    """
    if min_range < fade_size * 2:
        raise ValueError(f"min_range ({min_range}) must be >= 2 * fade_size ({2 * fade_size})")
    frame_min = np.asarray(frame_min)
    if frame_min.ndim != 1:
        raise ValueError(f"frame_min must hold one value per frame, got shape {frame_min.shape}")
    high_frames = np.flatnonzero(frame_min > thres)
    return _frame_weight(high_frames, frame_min.shape[0], min_range, fade_size).astype(np.float32)


def merge_artifacts(
    mask: np.ndarray, thres: float = 0.05, min_range: int = 64, fade_size: int = 32
) -> np.ndarray:
    """Raise ``mask`` ``[channels, bins, frames]`` towards 1 over long runs of confidently high frames.

    A frame is high when the mask's minimum over channels and bins exceeds
    ``thres``. Runs of consecutive high frames whose last index is more than
    ``min_range`` after their first get weight 1, fading in over ``fade_size``
    frames from the run's start (no fade when it starts at frame 0) and out
    over the ``fade_size`` frames before its last index; a run starting less
    than ``fade_size`` after the previous long run's last frame starts its fade
    at that frame − 2·``fade_size``. Returns ``mask + weight·(1 − mask)`` as a
    new array; with no high frames the mask is returned unchanged.
    """
    if mask.ndim != 3:
        raise ValueError(f"mask must be [channels, bins, frames], got shape {mask.shape}")
    weight = artifact_weights(mask.min(axis=(0, 1)), thres, min_range, fade_size)
    return mask + weight.astype(mask.dtype) * (1 - mask)


def adjust_aggression(mask: np.ndarray, aggression: int, split_bin: int, flip: bool) -> np.ndarray:
    """UVR's aggressiveness: raise the mask to a power, gently below ``split_bin`` and harder above.

    ``mask`` is ``[..., bins, frames]`` (UVR's ``[channels, bins, frames]``).
    With ``aggr = 2 * aggression / 100`` (``1 - aggr`` when ``flip``, which
    UVR sets when the mask's stem is a non-accompaniment stem such as vocals),
    rows below ``split_bin`` (band 1's ``crop_stop``) get exponent
    ``1 + aggr / 3`` and the rest ``1 + aggr``. Aggression 0 means no change
    and returns ``mask`` itself; otherwise a new array of the same dtype.
    UVR's per-channel ``aggr_correction`` is absent from every band table, so
    it is not modelled.
    """
    aggr = int(aggression) / 100 * 2
    if aggr == 0:
        return mask
    if flip:
        aggr = 1 - aggr
    out = np.empty_like(mask)
    out[..., :split_bin, :] = np.power(mask[..., :split_bin, :], 1 + aggr / 3)
    out[..., split_bin:, :] = np.power(mask[..., split_bin:, :], 1 + aggr)
    return out
