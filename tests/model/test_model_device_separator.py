"""The device path (transforms.device_stft, model.DeviceSeparator) on CPU tensors: torch's STFT with librosa's
framing passed explicitly against librosa itself, its inverse against librosa's, and the whole separation
against the numpy path (Separator), whose exactness against vocal-remover the other tests prove."""

import warnings

import librosa
import numpy as np
import pytest
import torch
from stemforge_testing import music, snr_db

from stemforge.model import Separator
from stemforge.model.device_separator import DeviceSeparator
from stemforge.transforms import device_stft

N_FFT, HOP = 256, 64


def _librosa_stft(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return librosa.stft(x, n_fft=N_FFT, hop_length=HOP)  # librosa's defaults: periodic Hann, constant pad


@pytest.mark.parametrize("n", [1, 100, 257, 4410])
def test_stft_matches_librosa(n):
    x = music(n, seed=n)
    got = device_stft.stft(torch.from_numpy(x), N_FFT, HOP).numpy()
    expected = _librosa_stft(x)
    assert got.shape == expected.shape
    peak = np.abs(expected).max()
    assert np.abs(np.abs(got) - np.abs(expected)).max() / peak <= 1e-5
    assert np.abs(got - expected).max() / peak <= 1e-5


def test_torch_defaults_would_not_match():
    """The reason the window and padding are passed explicitly: torch's own defaults frame differently."""
    x = torch.from_numpy(music(2000, seed=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that no window means a rectangular one
        plain = torch.stft(x, N_FFT, hop_length=HOP, return_complex=True).numpy()
    expected = _librosa_stft(x.numpy())
    assert np.abs(plain - expected).max() / np.abs(expected).max() > 0.1


def test_istft_matches_librosa_and_inverts():
    x = music(5000, seed=3)
    spec = _librosa_stft(x)
    got = device_stft.istft(torch.from_numpy(spec), HOP, 5000).numpy()
    expected = librosa.istft(spec, hop_length=HOP, n_fft=N_FFT, length=5000)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert snr_db(got, x) > 100


def test_to_device_and_back_on_cpu():
    x = music(300, seed=2)
    tensor = device_stft.to_device(x, "cpu")
    assert tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    np.testing.assert_array_equal(device_stft.to_host(tensor), x)


@pytest.mark.parametrize(("n", "batch_size"), [(3000, 1), (44100, 3)])
def test_device_separation_equals_the_numpy_path(small_net, n, batch_size):
    wave = music(n, seed=7)
    host = Separator(small_net, batch_size=batch_size, cropsize=256, device="cpu")
    device = DeviceSeparator(host.model, batch_size=batch_size, cropsize=256)
    expected = host.separate_audio(wave, hop_length=HOP)
    got = device.separate_audio(wave, hop_length=HOP)
    for a, b in zip(got, expected):
        assert a.shape == b.shape == wave.shape
        assert snr_db(a, b) > 80


def test_device_separation_refuses_bad_input(small_net):
    separator = DeviceSeparator(small_net, cropsize=256, device="cpu")
    with pytest.raises(ValueError, match=r"expected a stereo waveform \[2, samples\]"):
        separator.separate_audio(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="cropsize must be a multiple of 16"):
        DeviceSeparator(small_net, cropsize=250, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_fp32_equals_the_cpu_path(small_net):
    wave = music(44100, seed=9)
    expected = Separator(small_net, cropsize=256, device="cpu").separate_audio(wave, hop_length=HOP)
    got = DeviceSeparator(small_net, cropsize=256, device="cuda").separate_audio(wave, hop_length=HOP)
    for a, b in zip(got, expected):
        assert snr_db(a, b) > 60
