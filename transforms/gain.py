"""``Gain``: audiomentations' Gain (a random gain in dB) as a :class:`~transforms.linear.LinearTransform`.

The same class name, arguments and samples as ``audiomentations.Gain`` (it is a subclass), so a chain entry
``{transform: Gain, ...}`` and its recorded provenance are unchanged; what it adds is the linear interface.
"""

from __future__ import annotations

import audiomentations
import numpy as np
from audiomentations.core.utils import convert_decibels_to_amplitude_ratio

from stemforge.transforms.linear import LinearTransform, ReadFn


class Gain(LinearTransform, audiomentations.Gain):
    """A gain drawn uniformly in ``[min_gain_db, max_gain_db]`` dB."""

    ROW_COLUMNS = {"gain_db": "gain_db"}

    def draw_parameters(self, rng: np.random.Generator) -> dict[str, float]:
        """``gain_db`` drawn from ``rng``."""
        return {"gain_db": float(rng.uniform(self.min_gain_db, self.max_gain_db))}

    def freeze(self, drawn: dict[str, float]) -> None:
        """Scale by the drawn gain (the amplitude ratio audiomentations' Gain applies)."""
        self.parameters = {"should_apply": True,
                           "amplitude_ratio": float(convert_decibels_to_amplitude_ratio(drawn["gain_db"]))}
        self.freeze_parameters()

    def stream(self, source: ReadFn, n_frames: int, sample_rate: int, chunk_frames: int) -> ReadFn:
        """``source`` scaled as audiomentations' Gain scales (a float32 array times a Python float)."""
        ratio = self.parameters["amplitude_ratio"]

        def read(start: int, stop: int) -> np.ndarray:
            return source(start, stop) * ratio
        return read

    def configured_ranges(self) -> dict[str, tuple[float, float]]:
        """``gain_db`` from min to max."""
        return {"gain_db": (self.min_gain_db, self.max_gain_db)}
