"""Augmentation of a voice before it is mixed: the same speaker made to sound like many, in many rooms and
through many microphones. Each effect is drawn from the generator it is given, so a seed gives the same
voice.

- speed (resampling by 0.88–1.14): pitch, formants and tempo together, i.e. a different vocal tract size;
- pitch shift (±3 semitones, audiomentations): pitch without tempo, so pitch and formants move apart;
- time stretch (0.85–1.2, audiomentations);
- EQ (audiomentations' seven-band parametric EQ);
- room reverb: a synthetic impulse response (exponentially decaying noise, RT60 0.15–0.9 s), wet 10–45 %;
- band-limiting: a telephone-like band pass, or a low pass at 3–8 kHz;
- compression: a feed-forward RMS compressor (ratio 2–6, threshold 10–25 dB below the peak).
"""

from __future__ import annotations

import random

import numpy as np
from scipy.signal import fftconvolve, lfilter

from stemforge.transforms import resample

EFFECTS = ("speed", "pitch", "stretch", "eq", "reverb", "bandlimit", "compress")
PROBABILITY = {"speed": 0.5, "pitch": 0.3, "stretch": 0.3, "eq": 0.5, "reverb": 0.4, "bandlimit": 0.25,
               "compress": 0.4}


def reverb(wave: np.ndarray, sr: int, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """``wave`` in a room: convolved with decaying noise whose level falls 60 dB in ``rt60`` seconds."""
    t = np.arange(int(rt60 * sr)) / sr
    response = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    response[0] = 0.0
    response /= max(float(np.sqrt(np.sum(response**2))), 1e-9)
    tail = fftconvolve(wave, response)[: wave.size]
    return ((1 - wet) * wave + wet * tail).astype(np.float32)


def compress(wave: np.ndarray, sr: int, threshold_db: float, ratio: float) -> np.ndarray:
    """A feed-forward compressor on the signal's 10 ms RMS envelope: levels above ``threshold_db`` (relative
    to the peak) rise only by 1/``ratio``; the output keeps the input's peak level."""
    alpha = np.exp(-1.0 / (0.01 * sr))
    envelope = np.sqrt(np.maximum(lfilter([1 - alpha], [1, -alpha], wave.astype(np.float64) ** 2), 1e-12))
    peak = max(float(np.abs(wave).max()), 1e-9)
    level_db = 20 * np.log10(envelope / peak)
    gain_db = np.minimum(0.0, (threshold_db - level_db) * (1 - 1 / ratio))
    out = wave * 10 ** (gain_db / 20)
    return (out * peak / max(float(np.abs(out).max()), 1e-9)).astype(np.float32)


def augment_voice(wave: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """``wave`` (mono float32) with a random subset of :data:`EFFECTS`; returns the new wave (any length)
    and the names of the effects applied, with their settings, for the manifest."""
    from audiomentations import BandPassFilter, LowPassFilter, PitchShift, SevenBandParametricEQ, TimeStretch

    applied: list[str] = []
    draws = {name: rng.random() < PROBABILITY[name] for name in EFFECTS}
    seed = int(rng.integers(2**31))
    random.seed(seed)  # audiomentations draws its parameters from Python's and numpy's global generators
    np.random.seed(seed)
    if draws["speed"]:
        factor = float(rng.uniform(0.88, 1.14))
        wave = resample(wave[None], int(round(sr * factor)), sr)[0]
        applied.append(f"speed {factor:.3f}")
    if draws["pitch"]:
        wave = PitchShift(min_semitones=-3, max_semitones=3, p=1.0)(wave, sr)
        applied.append("pitch")
    if draws["stretch"]:
        wave = TimeStretch(min_rate=0.85, max_rate=1.2, leave_length_unchanged=False, p=1.0)(wave, sr)
        applied.append("stretch")
    if draws["eq"]:
        wave = SevenBandParametricEQ(min_gain_db=-8, max_gain_db=8, p=1.0)(wave, sr)
        applied.append("eq")
    if draws["reverb"]:
        rt60, wet = float(rng.uniform(0.15, 0.9)), float(rng.uniform(0.1, 0.45))
        wave = reverb(wave, sr, rt60, wet, rng)
        applied.append(f"reverb {rt60:.2f}s {wet:.2f}")
    if draws["bandlimit"]:
        if rng.random() < 0.5:
            wave = BandPassFilter(min_center_freq=900, max_center_freq=1400, min_bandwidth_fraction=1.2,
                                  max_bandwidth_fraction=1.8, p=1.0)(wave, sr)
            applied.append("bandpass")
        else:
            wave = LowPassFilter(min_cutoff_freq=3000, max_cutoff_freq=8000, p=1.0)(wave, sr)
            applied.append("lowpass")
    if draws["compress"]:
        threshold, ratio = float(rng.uniform(-25, -10)), float(rng.uniform(2, 6))
        wave = compress(wave, sr, threshold, ratio)
        applied.append(f"compress {threshold:.0f}dB {ratio:.1f}:1")
    return np.nan_to_num(wave.astype(np.float32)), applied
