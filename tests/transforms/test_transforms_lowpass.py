"""zero_phase_lowpass and its streaming form against hand-written references and signal theory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import chirp

from stemforge.transforms.lowpass import StreamingZeroPhaseLowpass, zero_phase_lowpass

SR = 44100


@pytest.mark.parametrize(
    ("frames", "channels", "cutoff", "q", "pad"),
    [
        (400, 1, 3000.0, 0.7071, 10000),  # pad clipped to frames - 1
        (400, 2, 800.0, 1.3, 50),
        (257, 3, 12000.0, 0.5, 256),
        (2, 2, 5000.0, 0.7071, 10),
        (1, 1, 5000.0, 0.7071, 10),
        (300, 2, 4000.0, 0.9, 0),
    ],
)
def test_matches_per_sample_reference(reference_lowpass, frames, channels, cutoff, q, pad):
    x = np.random.default_rng(frames).uniform(-1, 1, (channels, frames)).astype(np.float32)
    out = zero_phase_lowpass(x, SR, cutoff, q=q, pad=pad)
    expected = reference_lowpass(x, SR, cutoff, q, pad)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("freq", [200.0, 1000.0, 2500.0, 5000.0, 8000.0])
def test_sine_gain_is_squared_biquad_magnitude(power_response, freq):
    cutoff, q = 2500.0, 0.7071
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * freq * t).astype(np.float32)[None]
    out = zero_phase_lowpass(x, SR, cutoff, q)
    middle = slice(SR // 4, 3 * SR // 4)  # away from the ends' transients
    gain = np.sqrt(np.mean(out[0, middle] ** 2) / np.mean(x[0, middle] ** 2))
    assert gain == pytest.approx(power_response(freq, SR, cutoff, q), rel=1e-3, abs=1e-6)


def test_minus_six_db_at_cutoff_for_butterworth_q():
    cutoff = 3000.0
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * cutoff * t).astype(np.float32)[None]
    out = zero_phase_lowpass(x, SR, cutoff, q=1 / np.sqrt(2))
    middle = slice(SR // 4, 3 * SR // 4)
    gain_db = 10 * np.log10(np.mean(out[0, middle] ** 2) / np.mean(x[0, middle] ** 2))
    assert gain_db == pytest.approx(-6.02, abs=0.02)


def test_impulse_response_is_symmetric():
    n = 4001
    x = np.zeros((1, n), dtype=np.float32)
    x[0, n // 2] = 1.0
    h = zero_phase_lowpass(x, SR, 4000.0, 0.9)[0]
    np.testing.assert_allclose(h, h[::-1], atol=1e-7)
    assert np.argmax(h) == n // 2
    assert h.sum() == pytest.approx(1.0, abs=1e-4)  # DC gain 1


def test_chirp_passband_has_no_phase_shift():
    t = np.arange(2 * SR) / SR
    x = chirp(t, f0=20, f1=20000, t1=t[-1], method="logarithmic").astype(np.float32)[None]
    out = zero_phase_lowpass(x, SR, 6000.0)
    spectrum_in, spectrum_out = np.fft.rfft(x[0]), np.fft.rfft(out[0])
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    passband = (freqs > 100) & (freqs < 3000)
    phase = np.angle(spectrum_out[passband] / spectrum_in[passband])
    assert np.max(np.abs(phase)) < 1e-2
    stopband = (freqs > 15000) & (freqs < 19000)
    assert np.max(np.abs(spectrum_out[stopband])) < 1e-2 * np.max(np.abs(spectrum_in[stopband]))


def test_noise_power_spectrum_follows_squared_response(power_response):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1 << 18)).astype(np.float32) * 0.1
    out = zero_phase_lowpass(x, SR, 4000.0, 0.7071)
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    ratio = np.abs(np.fft.rfft(out[0])) ** 2 / np.abs(np.fft.rfft(x[0])) ** 2
    for f in (500.0, 4000.0, 8000.0):
        band = (freqs > f * 0.97) & (freqs < f * 1.03)
        assert np.median(ratio[band]) == pytest.approx(power_response(f, SR, 4000.0, 0.7071) ** 2, rel=0.05)


def test_no_clamping_of_loud_input():
    x = np.full((1, 1000), 4.0, dtype=np.float32)
    out = zero_phase_lowpass(x, SR, 2000.0)
    np.testing.assert_allclose(out, 4.0, rtol=1e-5)


@pytest.mark.parametrize("cutoff", [SR / 2, SR])
def test_cutoff_at_or_above_nyquist_passes_through(cutoff):
    x = np.random.default_rng(0).standard_normal((2, 500)).astype(np.float32)
    out = zero_phase_lowpass(x, SR, cutoff)
    np.testing.assert_array_equal(out, x)
    assert out is not x


def test_one_dimensional_input_and_empty():
    x = np.random.default_rng(1).standard_normal(300).astype(np.float32)
    assert zero_phase_lowpass(x, SR, 1000.0).shape == (300,)
    np.testing.assert_array_equal(zero_phase_lowpass(x[None], SR, 1000.0)[0], zero_phase_lowpass(x, SR, 1000.0))
    assert zero_phase_lowpass(np.zeros((2, 0), np.float32), SR, 1000.0).shape == (2, 0)


@pytest.mark.parametrize("kwargs", [{"cutoff_hz": 0}, {"cutoff_hz": -5}, {"cutoff_hz": 100, "q": 0},
                                    {"cutoff_hz": 100, "pad": -1}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        zero_phase_lowpass(np.zeros((1, 10), np.float32), SR, **kwargs)


@settings(max_examples=40, deadline=None)
@given(channels=st.integers(1, 4), frames=st.integers(0, 3000), pad=st.integers(0, 4000),
       cutoff=st.floats(20.0, 30000.0), q=st.floats(0.3, 3.0))
def test_property_shape_dtype_finite(channels, frames, pad, cutoff, q):
    x = np.random.default_rng(frames).uniform(-1, 1, (channels, frames)).astype(np.float32)
    out = zero_phase_lowpass(x, SR, cutoff, q=q, pad=pad)
    assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()


class _CountingReader:
    """Serves frames from an array and remembers the largest request."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.largest = 0

    def __call__(self, start: int, stop: int) -> np.ndarray:
        assert 0 <= start <= stop <= self.x.shape[1]
        self.largest = max(self.largest, stop - start)
        return self.x[:, start:stop]


@settings(max_examples=30, deadline=None)
@given(frames=st.integers(1, 5000), chunk=st.integers(1, 3000), pad=st.integers(0, 3000),
       read_size=st.integers(1, 2000), channels=st.integers(1, 3))
def test_streaming_equals_whole_signal(frames, chunk, pad, read_size, channels):
    if frames / chunk > 400:
        chunk = frames // 400 + 1
    x = np.random.default_rng(frames + chunk).standard_normal((channels, frames)).astype(np.float32)
    reader = _CountingReader(x)
    stream = StreamingZeroPhaseLowpass(reader, frames, SR, 3000.0, 0.8, pad=pad, chunk_frames=chunk)
    pieces = [stream.read(s, min(s + read_size, frames)) for s in range(0, frames, read_size)]
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), zero_phase_lowpass(x, SR, 3000.0, 0.8, pad))
    assert reader.largest <= chunk


def test_streaming_pass_through_above_nyquist():
    x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    stream = StreamingZeroPhaseLowpass(lambda a, b: x[:, a:b], 1000, SR, SR, chunk_frames=100)
    np.testing.assert_array_equal(stream.read(0, 1000), x)
