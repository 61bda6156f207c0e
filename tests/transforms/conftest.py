"""Shared test helpers for transforms: an independent reference for EBEN's low-pass."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest


def _rbj_lowpass(sample_rate: float, cutoff_hz: float, q: float) -> tuple[list[float], list[float]]:
    """RBJ Audio-EQ-Cookbook LPF, written out from the cookbook (not from the code under test)."""
    w0 = 2 * math.pi * cutoff_hz / sample_rate
    alpha = math.sin(w0) / (2 * q)
    b0 = (1 - math.cos(w0)) / 2
    b1 = 1 - math.cos(w0)
    b2 = (1 - math.cos(w0)) / 2
    a0 = 1 + alpha
    a1 = -2 * math.cos(w0)
    a2 = 1 - alpha
    return [b0 / a0, b1 / a0, b2 / a0], [1.0, a1 / a0, a2 / a0]


def _difference_equation(b: list[float], a: list[float], x: list[float]) -> list[float]:
    """y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2], zero initial state."""
    y: list[float] = []
    x1 = x2 = y1 = y2 = 0.0
    for xn in x:
        yn = b[0] * xn + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2
        y.append(yn)
        x2, x1 = x1, xn
        y2, y1 = y1, yn
    return y


def reference_zero_phase_lowpass(samples: np.ndarray, sample_rate: float, cutoff_hz: float, q: float,
                                 pad: int) -> np.ndarray:
    """EBEN's remove_hf by hand: np.pad reflect, per-sample biquad forward and reversed, crop."""
    x = np.asarray(samples, dtype=np.float64)
    out = np.empty_like(x)
    p = min(pad, x.shape[-1] - 1)
    b, a = _rbj_lowpass(sample_rate, cutoff_hz, q)
    for c in range(x.shape[0]):
        padded = np.pad(x[c], (p, p), mode="reflect").tolist()
        forward = _difference_equation(b, a, padded)
        backward = _difference_equation(b, a, forward[::-1])[::-1]
        out[c] = backward[p:p + x.shape[-1]]
    return out


def rbj_power_response(freq_hz: np.ndarray, sample_rate: float, cutoff_hz: float, q: float) -> np.ndarray:
    """|H(e^{jw})|² of the RBJ LPF: the magnitude a filt-filt of it must have."""
    b, a = _rbj_lowpass(sample_rate, cutoff_hz, q)
    z = np.exp(-1j * 2 * np.pi * np.asarray(freq_hz) / sample_rate)
    h = (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
    return np.abs(h) ** 2


@pytest.fixture
def reference_lowpass() -> Callable[..., np.ndarray]:
    return reference_zero_phase_lowpass


@pytest.fixture
def power_response() -> Callable[..., np.ndarray]:
    return rbj_power_response
