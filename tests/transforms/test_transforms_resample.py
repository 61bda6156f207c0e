"""Chunked soxr resampling: exact lengths, fidelity to analytic sines, block-by-block streaming."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from stemforge.transforms import Resampler, resample, resampled_length

RATE_PAIRS = [(48000, 44100), (22050, 44100), (44100, 48000), (8000, 44100), (96000, 44100), (44100, 16000)]


@pytest.mark.parametrize(("sr_in", "sr_out"), RATE_PAIRS)
def test_length_formula_matches_soxr_one_shot(sr_in, sr_out):
    for n in (1, 2, 3, 17, 441, 1000, 4097, 10007):
        one_shot = soxr.resample(np.zeros((n, 1), np.float32), sr_in, sr_out, quality="HQ")
        assert resampled_length(n, sr_in, sr_out) == one_shot.shape[0]


@pytest.mark.parametrize(("sr_in", "sr_out"), RATE_PAIRS)
def test_sine_survives_resampling(sr_in, sr_out):
    freq = 1000.0
    n = sr_in  # one second
    x = np.stack([np.sin(2 * np.pi * freq * np.arange(n) / sr_in),
                  np.cos(2 * np.pi * freq * np.arange(n) / sr_in)]).astype(np.float32)
    y = resample(x, sr_in, sr_out, chunk_frames=4096)
    assert y.shape == (2, resampled_length(n, sr_in, sr_out)) and y.dtype == np.float32
    t = np.arange(y.shape[1]) / sr_out
    expected = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    middle = slice(y.shape[1] // 10, -y.shape[1] // 10)  # filter edge transients aside
    assert np.max(np.abs(y[:, middle] - expected[:, middle])) < 1e-3


def test_chunking_does_not_change_the_result():
    x = np.random.default_rng(0).standard_normal((2, 30011)).astype(np.float32)
    reference = soxr.resample(np.ascontiguousarray(x.T), 48000, 44100, quality="HQ").T
    for chunk in (1000, 4096, 1 << 17):
        np.testing.assert_allclose(resample(x, 48000, 44100, chunk_frames=chunk), reference, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(channels=st.integers(1, 4), n=st.integers(0, 5000), sizes=st.lists(st.integers(1, 1500), min_size=1, max_size=8),
       pair=st.sampled_from(RATE_PAIRS))
def test_streaming_blocks_give_the_whole_output(channels, n, sizes, pair):
    sr_in, sr_out = pair
    x = np.random.default_rng(n).standard_normal((channels, n)).astype(np.float32)
    whole = resample(x, sr_in, sr_out)
    resampler = Resampler(sr_in, sr_out, channels)
    out, start, i = [], 0, 0
    while start < n:
        stop = min(n, start + sizes[i % len(sizes)])
        out.append(resampler.process(x[:, start:stop]))
        start, i = stop, i + 1
    out.append(resampler.process(np.zeros((channels, 0), np.float32), last=True))
    streamed = np.concatenate(out, axis=1)
    assert streamed.shape == whole.shape == (channels, resampled_length(n, sr_in, sr_out))
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_equal_rates_are_identity_copies():
    x = np.random.default_rng(1).standard_normal((2, 100)).astype(np.float32)
    y = resample(x, 44100, 44100)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    np.testing.assert_array_equal(Resampler(44100, 44100, 2).process(x, last=True), x)


def test_misuse_is_refused():
    resampler = Resampler(48000, 44100, 2)
    with pytest.raises(ValueError):
        resampler.process(np.zeros((3, 10), np.float32))
    resampler.process(np.zeros((2, 10), np.float32), last=True)
    with pytest.raises(RuntimeError):
        resampler.process(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError):
        resampled_length(10, 0, 44100)
