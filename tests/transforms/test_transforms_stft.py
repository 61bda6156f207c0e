"""stft / istft against librosa, and the block-wise helpers against the whole-signal functions."""

from __future__ import annotations

import re
import warnings

import librosa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemforge.transforms import check_geometry, frames_for_samples, istft, istft_samples, num_frames, stft, stft_frames


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _librosa_stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns when n_fft exceeds a short signal
        return librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True, window="hann", pad_mode="constant")


def _signal(channels: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 44100
    sweep = np.sin(2 * np.pi * (100 + 3000 * t) * t)
    return (0.3 * sweep + 0.1 * rng.standard_normal((channels, n))).astype(np.float32)


@pytest.mark.parametrize(("n_fft", "hop"), [(2048, 1024), (1024, 256), (512, 512)])
@pytest.mark.parametrize("n", [1, 777, 2047, 44100])
def test_stft_matches_librosa(n_fft, hop, n):
    x = _signal(2, n)
    spec = stft(x, n_fft=n_fft, hop_length=hop)
    reference = _librosa_stft(x, n_fft, hop)
    assert spec.dtype == np.complex64 and spec.shape == reference.shape == (2, n_fft // 2 + 1, num_frames(n, hop))
    assert _rel(spec, reference) <= 1e-5


@pytest.mark.parametrize("n", [1, 777, 2047, 2048, 44100])
@pytest.mark.parametrize("extra", [None, 0, -100, 3000])
@pytest.mark.parametrize(("n_fft", "hop"), [(2048, 1024), (512, 128), (1000, 300)])
def test_istft_matches_librosa_and_length_is_exact(n, extra, n_fft, hop):
    x = _signal(2, n, seed=n)
    reference_spec = _librosa_stft(x, n_fft, hop)
    length = None if extra is None else max(n + extra, 0)
    y = istft(reference_spec, hop_length=hop, length=length)
    expected = librosa.istft(reference_spec, hop_length=hop, n_fft=n_fft, length=length)
    assert y.dtype == np.float32 and y.shape == expected.shape
    if length is not None:
        assert y.shape[-1] == length
    assert _rel(y, expected) <= 1e-5


def test_round_trip_reconstructs_the_signal():
    x = _signal(2, 30000)
    np.testing.assert_allclose(istft(stft(x), length=x.shape[-1]), x, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(channels=st.integers(1, 3), n=st.integers(0, 6000), hop_exp=st.integers(6, 9), overlap=st.sampled_from([1, 2, 4]))
def test_property_shapes_and_lengths(channels, n, hop_exp, overlap):
    hop = 2**hop_exp
    n_fft = hop * overlap
    x = _signal(channels, n, seed=n)
    spec = stft(x, n_fft=n_fft, hop_length=hop)
    assert spec.shape == (channels, n_fft // 2 + 1, 1 + n // hop)
    assert istft(spec, hop_length=hop, length=n).shape == (channels, n)
    assert istft(spec, hop_length=hop).shape == (channels, (spec.shape[-1] - 1) * hop)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 20000), data=st.data())
def test_stft_frames_equal_whole_stft_and_read_only_what_they_cover(n, data):
    x = _signal(2, n, seed=n)
    whole = stft(x)
    total = num_frames(n, 1024)
    start = data.draw(st.integers(0, total - 1))
    stop = data.draw(st.integers(start + 1, total))
    requests = []

    def read(a: int, b: int) -> np.ndarray:
        requests.append((a, b))
        return x[:, a:b]

    frames = stft_frames(read, n, start, stop)
    assert _rel(frames, whole[..., start:stop]) <= 1e-6
    (a, b), = requests
    assert a >= max(0, start * 1024 - 1024) and b <= min(n, (stop - 1) * 1024 + 1024)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 20000), data=st.data())
def test_istft_samples_equal_whole_istft(n, data):
    x = _signal(2, n, seed=n)
    spec = stft(x)
    whole = istft(spec, length=n)
    start = data.draw(st.integers(0, n))
    stop = data.draw(st.integers(start, n))
    f0, f1 = frames_for_samples(start, stop, n)
    part = istft_samples(spec[..., f0:f1], f0, start, stop, n)
    assert part.shape == (2, stop - start)
    np.testing.assert_allclose(part, whole[:, start:stop], rtol=0, atol=1e-5 * np.abs(whole).max(initial=1.0))
    # The named frames are all needed: dropping the last one changes the result. Checked where the output
    # reaches a quarter window into that frame: within its first samples the Hann window is so close to 0
    # (w[1]² ≈ 6e-12) that the frame's share of a sample is below float32 resolution.
    if f1 > f0 + 1 and stop - 1 >= (f1 - 1) * 1024 - 1024 + 2048 // 4:
        trimmed = spec[..., f0:f1].copy()
        trimmed[..., -1] = 0
        assert not np.array_equal(istft_samples(trimmed, f0, start, stop, n), part)


def test_block_by_block_stem_writing_concatenates_to_whole():
    n = 50000
    x = _signal(2, n)
    spec = stft(x)
    whole = istft(spec, length=n)
    blocks = []
    for start in range(0, n, 4096):
        stop = min(start + 4096, n)
        f0, f1 = frames_for_samples(start, stop, n)
        blocks.append(istft_samples(spec[..., f0:f1 + 2], f0, start, stop, n))  # extra frames are ignored
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), whole)


def test_missing_frames_are_refused():
    spec = stft(_signal(1, 10000))
    f0, f1 = frames_for_samples(3000, 5000, 10000)
    with pytest.raises(ValueError, match="need frames"):
        istft_samples(spec[..., f0 + 1:f1], f0 + 1, 3000, 5000, 10000)


@pytest.mark.parametrize("bad", [{"n_fft": 2047}, {"n_fft": 0}, {"hop_length": 0}, {"n_fft": 512, "hop_length": 1024}])
def test_invalid_sizes(bad):
    with pytest.raises(ValueError):
        stft(np.zeros((1, 100), np.float32), **bad)


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 256), (1024, 512), (1024, 768), (1024, 1000), (512, 256)])
def test_an_accepted_geometry_inverts(n_fft, hop):
    check_geometry(n_fft, hop)
    x = _signal(2, 20011)
    padded = np.pad(x, ((0, 0), (0, n_fft)))  # as stems are inverted: the track followed by n_fft zeros
    back = istft(stft(padded, n_fft, hop), hop_length=hop, length=padded.shape[1])[:, : x.shape[1]]
    np.testing.assert_allclose(back, x, atol=1e-4)


@pytest.mark.parametrize(("n_fft", "hop", "message"), [
    (1024, 1024, "hop_length 1024 must be less than n_fft 1024"),
    (2048, 4096, "hop_length 4096 must be less than n_fft 2048"),
    (1024, 1020, "hop_length 1020 with n_fft 1024: the Hann windows' overlap-add vanishes between frames"),
    (1024, 1023, "hop_length 1023 with n_fft 1024: the Hann windows' overlap-add vanishes between frames"),
])
def test_a_geometry_that_cannot_invert_is_refused(n_fft, hop, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        check_geometry(n_fft, hop)
