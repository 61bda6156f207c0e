"""Both homes of a track's spectral arithmetic (transforms.spectral_ops) against librosa, computed here: the
host's numpy to float rounding, the device's torch (on CPU tensors here, the same code a GPU runs) within
the bounds docs/performance.md states. The block functions are fed block by block, as the pipeline feeds them."""

import warnings

import librosa
import numpy as np
import pytest
import torch
from stemforge_testing import music

from stemforge.transforms import device_stft, end_padded_frames, frames_for_samples, num_frames
from stemforge.transforms.spectral_ops import DeviceSpectralOps, HostSpectralOps

N_FFT, HOP = 512, 128
N = 20_000
OPS = [pytest.param(HostSpectralOps(), 1e-6, id="host"), pytest.param(DeviceSpectralOps("cpu"), 1e-5, id="device")]


def _librosa_stft(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([librosa.stft(c, n_fft=N_FFT, hop_length=HOP) for c in x])


@pytest.fixture(scope="module")
def track():
    wave = music(N, seed=11)
    return wave, _librosa_stft(wave)


@pytest.mark.parametrize(("ops", "bound"), OPS)
def test_frames_and_peak_equal_librosa_block_by_block(ops, bound, track):
    wave, expected = track
    total = num_frames(N, HOP)
    peak = 0.0
    for f0 in range(0, total, 50):
        f1 = min(f0 + 50, total)
        spec, block_peak = ops.frames_and_peak(lambda a, b: wave[:, a:b], N, f0, f1, N_FFT, HOP)
        assert spec.dtype == np.complex64 and spec.shape == (2, N_FFT // 2 + 1, f1 - f0)
        reference = expected[..., f0:f1]
        assert np.abs(spec - reference).max() <= bound * np.abs(expected).max()
        assert block_peak == pytest.approx(np.abs(reference).max(), rel=bound)
        peak = max(peak, block_peak)
    assert peak == pytest.approx(np.abs(expected).max(), rel=bound)


@pytest.mark.parametrize(("ops", "bound"), OPS)
def test_window_is_the_normalised_magnitude(ops, bound, track):
    _, expected = track
    window = ops.window(expected[..., 10:74], 3.5)
    got = window.numpy() if isinstance(window, torch.Tensor) else window
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.abs(expected[..., 10:74]) / 3.5, rtol=bound)


def test_windows_for_a_model_in_another_process_come_back_to_the_host(track):
    """share_across_processes: the model is served by another process, which takes host arrays."""
    _, expected = track
    window = DeviceSpectralOps("cpu", host_windows=True).window(expected[..., :64], 2.0)
    assert isinstance(window, np.ndarray)
    np.testing.assert_allclose(window, np.abs(expected[..., :64]) / 2.0, rtol=1e-5)


@pytest.mark.parametrize(("ops", "bound"), OPS)
def test_stems_equal_librosa_inverse_of_the_masked_spectrogram(ops, bound, track):
    """The stems' inverse runs over the end-padded analysis (the track then n_fft zeros), a block at a time."""
    wave, _ = track
    padded = N + N_FFT
    spec = _librosa_stft(np.pad(wave, ((0, 0), (0, N_FFT))))
    assert spec.shape[-1] == end_padded_frames(N, N_FFT, HOP)
    mask = np.random.default_rng(2).uniform(0, 1, spec.shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [np.stack([librosa.istft(s[c], n_fft=N_FFT, hop_length=HOP, length=padded) for c in range(2)])
                    for s in (mask * spec, (1 - mask) * spec)]
    got = [[], []]
    for start in range(0, N, 3000):
        stop = min(start + 3000, N)
        f0, f1 = frames_for_samples(start, stop, padded, N_FFT, HOP)
        first = max(f0 - 3, 0)  # frames from before the block, as a cache hands them over
        for k, stem in enumerate(ops.stems(spec[..., first:f1], mask[..., first:f1], first, start, stop, padded,
                                           N_FFT, HOP)):
            got[k].append(stem())
    for parts, reference in zip(got, expected):
        stem = np.concatenate(parts, axis=-1)
        assert stem.shape == (2, N) and stem.dtype == np.float32
        assert np.abs(stem - reference[:, :N]).max() <= bound * np.abs(reference).max()


@pytest.mark.parametrize(("ops", "bound"), OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_columns_are_the_magnitudes_cast_and_zero_padded(ops, bound, dtype, track):
    _, expected = track
    spec = expected[..., 5:65]
    mask = np.random.default_rng(3).uniform(0, 1, spec.shape).astype(np.float32)
    magnitude = np.abs(spec)
    columns = ops.columns(spec, mask, np.dtype(dtype), 100)
    only = ops.columns(spec, None, np.dtype(dtype), 100)
    assert len(columns) == 3 and len(only) == 1
    tolerance = bound if dtype == np.float32 else 2 ** -10  # float16's rounding
    for got, reference in zip(columns, (magnitude, mask * magnitude, (1 - mask) * magnitude)):
        assert got.dtype == dtype and got.shape == (2, N_FFT // 2 + 1, 100)
        assert not got[..., 60:].any()
        np.testing.assert_allclose(got[..., :60].astype(np.float32), reference, rtol=tolerance,
                                   atol=tolerance * magnitude.max())
    np.testing.assert_array_equal(only[0], columns[0])


def test_transfer_round_trip_keeps_dtype_and_values():
    transfer = device_stft.Transfer("cpu")
    for array in (music(300, seed=1), _librosa_stft(music(2000, seed=2))):
        tensor = transfer.upload(array)
        assert tensor.device.type == "cpu" and tensor.dtype == torch.from_numpy(array).dtype
        np.testing.assert_array_equal(transfer.download(tensor * 1), array)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pinned_transfers_and_ops_agree_with_the_host(track):
    """Pinned buffers reused across more uploads than the ring holds, on the thread's own stream."""
    wave, expected = track
    transfer = device_stft.Transfer("cuda")
    arrays = [np.full((3, 1000 * (i + 1)), i, np.float32) for i in range(9)]
    tensors = [transfer.upload(a) for a in arrays]
    for array, tensor in zip(arrays, tensors):
        np.testing.assert_array_equal(transfer.download(tensor), array)
    ops = DeviceSpectralOps("cuda")
    spec, peak = ops.frames_and_peak(lambda a, b: wave[:, a:b], N, 0, 60, N_FFT, HOP)
    assert np.abs(spec - expected[..., :60]).max() <= 1e-5 * np.abs(expected).max()
    assert ops.window(spec, peak).device.type == "cuda"
