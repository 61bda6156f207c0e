"""Separation metrics over whole tracks, in numpy (no museval): the challenge SDR of MDX'21 / SDX'23 and
SI-SDR (Le Roux et al., 2019, "SDR - half-baked or well done?"). A track's channels are taken together."""

from __future__ import annotations

import numpy as np

EPS = 1e-12  # keeps silent references and perfect estimates finite


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10·log10(Σ s² / Σ (s − ŝ)²) in dB: the challenge SDR, which a gain error lowers."""
    s, e = _pair(reference, estimate)
    return float(10 * np.log10((np.sum(s**2) + EPS) / (np.sum((s - e) ** 2) + EPS)))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB: ŝ is split into α·s (α = ⟨ŝ, s⟩ / ‖s‖²) and the rest, after removing each
    signal's mean; the ratio of their energies. A gain on the estimate does not change it."""
    s, e = _pair(reference, estimate)
    s = s - s.mean()
    e = e - e.mean()
    alpha = np.dot(e, s) / (np.dot(s, s) + EPS)
    target = alpha * s
    return float(10 * np.log10((np.sum(target**2) + EPS) / (np.sum((e - target) ** 2) + EPS)))


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(f"reference {reference.shape} and estimate {estimate.shape} differ in shape")
    return reference.reshape(-1), estimate.reshape(-1)
