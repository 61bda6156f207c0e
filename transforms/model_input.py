"""Decoded audio → the separation model's input: stereo at the model rate.

Channel policy first (so at most two channels are resampled), then soxr HQ
resampling in chunks. Both steps stream: for block-by-block work use
``to_model_channels`` per block and a :class:`~transforms.resample.Resampler`.
"""

from __future__ import annotations

import numpy as np

from stemforge.transforms.channels import to_model_channels
from stemforge.transforms.resample import DEFAULT_CHUNK_FRAMES, resample

MODEL_SAMPLE_RATE = 44100


def to_model_input(samples: np.ndarray, sample_rate: int, model_rate: int = MODEL_SAMPLE_RATE,
                   multichannel: str = "downmix", uri: str = "<array>",
                   chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> np.ndarray:
    """float32 ``[C, N]`` at ``sample_rate`` → float32 ``[2, M]`` at ``model_rate``."""
    stereo = to_model_channels(samples, multichannel=multichannel, uri=uri)
    return resample(stereo, sample_rate, model_rate, chunk_frames=chunk_frames)
