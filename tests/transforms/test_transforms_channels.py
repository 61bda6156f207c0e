"""Channel policy: mono duplicated, stereo kept, more than two downmixed or rejected."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stemforge.transforms import AudioError, downmix_matrix, to_model_channels, to_model_input


def test_mono_is_duplicated_and_stereo_kept():
    mono = np.arange(5, dtype=np.float32)[None]
    np.testing.assert_array_equal(to_model_channels(mono), np.vstack([mono, mono]))
    stereo = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_array_equal(to_model_channels(stereo), stereo)


def test_five_one_downmix_by_hand():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 100)).astype(np.float32)
    g = 1 / math.sqrt(2)
    norm = 1 + 4 * g
    left = (x[0] + g * (x[2] + x[3] + x[4] + x[5])) / norm
    right = (x[1] + g * (x[2] + x[3] + x[4] + x[5])) / norm
    out = to_model_channels(x)
    assert out.shape == (2, 100) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.vstack([left, right]), atol=1e-6)


@pytest.mark.parametrize("channels", [3, 4, 6, 8])
def test_downmix_never_exceeds_input_peak(channels):
    same = np.full((channels, 10), 0.9, dtype=np.float32)
    np.testing.assert_allclose(to_model_channels(same), 0.9, rtol=1e-6)
    assert downmix_matrix(channels).shape == (2, channels)


def test_reject_policy_raises_too_many_channels():
    with pytest.raises(AudioError) as caught:
        to_model_channels(np.zeros((3, 10), np.float32), multichannel="reject", uri="s3://b/k.wav")
    assert caught.value.reason == "too_many_channels" and "s3://b/k.wav" in str(caught.value)
    assert to_model_channels(np.zeros((2, 10), np.float32), multichannel="reject").shape == (2, 10)


def test_unknown_policy_and_bad_shape():
    with pytest.raises(ValueError):
        to_model_channels(np.zeros((3, 10), np.float32), multichannel="first_two")
    with pytest.raises(ValueError):
        to_model_channels(np.zeros(10, np.float32))


def test_model_input_is_stereo_at_model_rate():
    x = np.random.default_rng(2).standard_normal((1, 48000)).astype(np.float32)
    y = to_model_input(x, 48000)
    assert y.shape == (2, 44100) and y.dtype == np.float32
    np.testing.assert_array_equal(y[0], y[1])
