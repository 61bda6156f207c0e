"""The small interface of the linear transforms a chain treats specially, so no caller asks for them by name.

A :class:`LinearTransform` is linear and time-invariant in the signal and draws its parameters without looking
at it. That is what lets a chain:

* draw it from the plan's numpy Generator (``draw_parameters``) and freeze the draw in (``freeze``), lock-free;
* stream it chunk by chunk, bit-identical to the whole (``stream``), for tracks too long to hold;
* apply it to a mix run's stems one by one: the stems still sum to the mixture (``stemforge.config.run``);
* record its draw in shard row columns (``ROW_COLUMNS``) and plot the draws against ``configured_ranges``.

Any other audiomentations transform is randomised inside the plan with isolated RNGs
(:mod:`transforms.chain`). The transforms themselves live one per module (``transforms.gain``,
``transforms.zero_phase_biquad_lowpass``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from audiomentations.core.transforms_interface import BaseWaveformTransform

ReadFn = Callable[[int, int], np.ndarray]


class LinearTransform(BaseWaveformTransform):
    """A linear, time-invariant waveform transform whose parameters are drawn without looking at the signal."""

    ROW_COLUMNS: ClassVar[dict[str, str]] = {}  # shard row column -> the drawn parameter it records

    def draw_parameters(self, rng: np.random.Generator) -> dict[str, float]:
        """The parameters of one application, drawn from ``rng`` (JSON-safe: they are the provenance)."""
        raise NotImplementedError

    def freeze(self, drawn: dict[str, float]) -> None:
        """Apply the ``drawn`` parameters from now on (``should_apply`` set; the transform frozen)."""
        raise NotImplementedError

    def stream(self, source: ReadFn, n_frames: int, sample_rate: int, chunk_frames: int) -> ReadFn:
        """A reader of this transform's output, frames ``[start, stop)``, from a reader of its input."""
        raise NotImplementedError

    def configured_ranges(self) -> dict[str, tuple[float, float]]:
        """Each row column's range of values the configuration allows a draw to take."""
        raise NotImplementedError
