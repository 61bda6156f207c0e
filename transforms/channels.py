"""Channel policy for the model, which takes stereo ``[2, N]``.

* mono: duplicated to both sides;
* stereo: unchanged;
* more than two channels, ``multichannel="downmix"`` (default): a bare array
  carries no speaker layout, so the policy is layout-agnostic. Channels 0 and 1
  are taken as front left/right (true of WAV/FLAC/Vorbis/Opus orderings for
  3.0 to 7.1); every further channel (centre, LFE, surrounds …) is added to both
  sides at −3 dB (gain 1/√2). Each output row is then divided by its gain sum
  (1 + (C−2)/√2) so the mix never exceeds the input's peak: a signal present
  identically in all channels comes out unchanged. See :func:`downmix_matrix`.
* more than two channels, ``multichannel="reject"``: AudioError
  ``too_many_channels``.

The policy is per sample, so it can be applied block by block.
"""

from __future__ import annotations

import math

import numpy as np

from stemforge.transforms.errors import AudioError

MULTICHANNEL_POLICIES = ("downmix", "reject")
_SIDE_GAIN = 1.0 / math.sqrt(2.0)


def downmix_matrix(channels: int) -> np.ndarray:
    """The ``[2, channels]`` float64 matrix that the downmix policy applies (stereo out = M @ in)."""
    if channels < 1:
        raise ValueError("channels must be positive")
    if channels == 1:
        return np.ones((2, 1))
    matrix = np.zeros((2, channels))
    matrix[0, 0] = matrix[1, 1] = 1.0
    matrix[:, 2:] = _SIDE_GAIN
    return matrix / matrix.sum(axis=1, keepdims=True)


def to_model_channels(samples: np.ndarray, multichannel: str = "downmix", uri: str = "<array>") -> np.ndarray:
    """float32 ``[C, N]`` → float32 ``[2, N]`` by the module's policy.

    ``uri`` only names the source in a ``too_many_channels`` AudioError.
    """
    if multichannel not in MULTICHANNEL_POLICIES:
        raise ValueError(f"multichannel must be one of {MULTICHANNEL_POLICIES}, got {multichannel!r}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ValueError(f"expected [channels, frames], got shape {samples.shape}")
    channels = samples.shape[0]
    if channels == 1:
        return np.repeat(samples, 2, axis=0)
    if channels == 2:
        return samples.copy()
    if multichannel == "reject":
        raise AudioError(uri, "too_many_channels", f"{channels} channels; the model takes at most 2")
    return (downmix_matrix(channels) @ samples.astype(np.float64)).astype(np.float32)
