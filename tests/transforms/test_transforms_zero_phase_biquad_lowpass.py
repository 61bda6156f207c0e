"""ZeroPhaseBiquadLowPass as an audiomentations transform."""

from __future__ import annotations

import random

import numpy as np
import pytest
from audiomentations import Compose, Gain

from stemforge.transforms import ZeroPhaseBiquadLowPass

SR = 16000


@pytest.mark.parametrize("shape", [(600,), (1, 600), (2, 600), (5, 600)])
def test_inside_compose_with_gain(reference_lowpass, shape):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, shape).astype(np.float32)
    lowpass = ZeroPhaseBiquadLowPass(cutoff_hz=2000.0, q=0.8, p=1.0)
    gain = Gain(min_gain_db=-6.0, max_gain_db=-6.0, p=1.0)
    random.seed(1)
    out = Compose([lowpass, gain])(samples=x, sample_rate=SR)
    cutoff, q = lowpass.parameters["cutoff_hz"], lowpass.parameters["q"]
    expected = reference_lowpass(np.atleast_2d(x), SR, cutoff, q, 10000) * 10 ** (-6 / 20)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(np.atleast_2d(out), expected, atol=2e-6)


def test_jitter_draws_cutoff_and_q_independently_within_range():
    lowpass = ZeroPhaseBiquadLowPass(cutoff_hz=4000.0, q=0.7071, p=1.0)
    x = np.zeros((2, 100), dtype=np.float32)
    random.seed(7)
    ratios = []
    for _ in range(300):
        lowpass(x, SR)
        ratios.append((lowpass.parameters["cutoff_hz"] / 4000.0, lowpass.parameters["q"] / 0.7071))
    ratios = np.array(ratios)
    assert ratios.min() >= 0.8 and ratios.max() <= 1.2
    assert ratios.min() < 0.82 and ratios.max() > 1.18  # uniform over the whole range
    assert abs(np.corrcoef(ratios[:, 0], ratios[:, 1])[0, 1]) < 0.2  # independent draws


def test_no_jitter_uses_nominal_values_and_p_zero_never_applies():
    x = np.random.default_rng(2).standard_normal((2, 400)).astype(np.float32)
    fixed = ZeroPhaseBiquadLowPass(cutoff_hz=1000.0, q=1.0, jitter=(1.0, 1.0), p=1.0)
    fixed(x, SR)
    assert fixed.parameters["cutoff_hz"] == 1000.0 and fixed.parameters["q"] == 1.0
    never = ZeroPhaseBiquadLowPass(cutoff_hz=1000.0, p=0.0)
    np.testing.assert_array_equal(never(x, SR), x)
    assert never.parameters["should_apply"] is False


def test_same_global_seed_same_output():
    x = np.random.default_rng(3).standard_normal((2, 400)).astype(np.float32)
    lowpass = ZeroPhaseBiquadLowPass(cutoff_hz=3000.0, p=0.5)
    random.seed(11)
    first = [lowpass(x, SR) for _ in range(5)]
    random.seed(11)
    second = [lowpass(x, SR) for _ in range(5)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs", [{"cutoff_hz": 0}, {"cutoff_hz": 100, "q": -1},
                                    {"cutoff_hz": 100, "jitter": (1.2, 0.8)}, {"cutoff_hz": 100, "jitter": (0, 1)}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        ZeroPhaseBiquadLowPass(**kwargs)


def test_repr_and_serialisation_name_the_arguments():
    lowpass = ZeroPhaseBiquadLowPass(cutoff_hz=3000.0, q=0.9, jitter=(0.9, 1.1), p=0.25)
    assert "cutoff_hz=3000.0" in repr(lowpass)
    state = lowpass.to_dict_private()
    assert state["jitter"] == [0.9, 1.1] and state["p"] == 0.25
