"""``ZeroPhaseBiquadLowPass``: EBEN's ``remove_hf`` as an audiomentations transform.

Each call (unless frozen) draws ``should_apply`` with probability ``p``, then
multiplies ``cutoff_hz`` and ``q`` by two independent uniform draws from
``jitter`` — EBEN uses [0.8, 1.2] — and filters with
:func:`transforms.lowpass.zero_phase_lowpass`. The values used are in
``self.parameters["cutoff_hz"]`` / ``["q"]`` after the call.

Standalone it draws from Python's global ``random`` like every audiomentations
transform (``random.seed`` makes a Compose reproducible in one thread); the
thread-safe, seeded path is :class:`transforms.chain.AugmentChain`, which draws
with :meth:`draw_parameters` from its own numpy Generator and freezes them in
(the :class:`~transforms.linear.LinearTransform` interface).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stemforge.transforms.linear import LinearTransform, ReadFn
from stemforge.transforms.lowpass import DEFAULT_PAD, DEFAULT_Q, StreamingZeroPhaseLowpass, zero_phase_lowpass

EBEN_JITTER = (0.8, 1.2)


class ZeroPhaseBiquadLowPass(LinearTransform):
    """Zero-phase RBJ biquad low-pass with EBEN's multiplicative jitter of cutoff and Q."""

    supports_multichannel = True
    ROW_COLUMNS = {"lowpass_cutoff_hz": "cutoff_hz", "lowpass_q": "q"}

    def __init__(self, cutoff_hz: float, q: float = DEFAULT_Q, jitter: Sequence[float] = EBEN_JITTER,
                 pad: int = DEFAULT_PAD, p: float = 0.5) -> None:
        super().__init__(p)
        low, high = (float(v) for v in jitter)
        if cutoff_hz <= 0 or q <= 0:
            raise ValueError("cutoff_hz and q must be positive")
        if not 0 < low <= high:
            raise ValueError(f"jitter must be (low, high) with 0 < low <= high, got {tuple(jitter)}")
        if pad < 0:
            raise ValueError("pad must be >= 0")
        self.cutoff_hz = float(cutoff_hz)
        self.q = float(q)
        self.jitter = (low, high)
        self.pad = int(pad)

    def draw_parameters(self, rng: np.random.Generator) -> dict[str, float]:
        """Jittered ``cutoff_hz`` and ``q`` drawn from ``rng`` (cutoff first, then Q)."""
        low, high = self.jitter
        return {
            "cutoff_hz": self.cutoff_hz * float(rng.uniform(low, high)),
            "q": self.q * float(rng.uniform(low, high)),
        }

    def freeze(self, drawn: dict[str, float]) -> None:
        """Filter with the drawn cutoff and Q."""
        self.parameters = {"should_apply": True, **drawn}
        self.freeze_parameters()

    def stream(self, source: ReadFn, n_frames: int, sample_rate: int, chunk_frames: int) -> ReadFn:
        """The filtered track chunk by chunk (:class:`~transforms.lowpass.StreamingZeroPhaseLowpass`)."""
        return StreamingZeroPhaseLowpass(source, n_frames, sample_rate, self.parameters["cutoff_hz"],
                                         self.parameters["q"], self.pad, chunk_frames).read

    def configured_ranges(self) -> dict[str, tuple[float, float]]:
        """Cutoff and Q, each times the jitter's low and high."""
        low, high = self.jitter
        return {"lowpass_cutoff_hz": (self.cutoff_hz * low, self.cutoff_hz * high),
                "lowpass_q": (self.q * low, self.q * high)}

    def randomize_parameters(self, samples: NDArray[np.float32], sample_rate: int) -> None:
        super().randomize_parameters(samples, sample_rate)
        if self.parameters["should_apply"]:
            low, high = self.jitter
            self.parameters["cutoff_hz"] = self.cutoff_hz * random.uniform(low, high)
            self.parameters["q"] = self.q * random.uniform(low, high)

    def apply(self, samples: NDArray[np.float32], sample_rate: int) -> NDArray[np.float32]:
        return zero_phase_lowpass(samples, sample_rate, self.parameters["cutoff_hz"], self.parameters["q"],
                                  self.pad)

    def get_transform_init_args(self) -> dict[str, Any]:
        return {"cutoff_hz": self.cutoff_hz, "q": self.q, "jitter": list(self.jitter), "pad": self.pad}
