"""The real-size network (n_fft=2048, nout=32, nout_lstm=128) separating ~3 s of stereo audio."""

from __future__ import annotations

import numpy as np
import torch
from stemforge_testing import randomise_batchnorm

from stemforge.model import CascadedNet, Separator, load_checkpoint, make_padding, save_checkpoint

SR = 44100
HOP = 1024
N_FFT = 2048


def _stereo_spectrogram(seconds_in_frames: int) -> np.ndarray:
    """STFT (vocal-remover's n_fft/hop) of a two-channel tone-plus-noise signal."""
    n_samples = (seconds_in_frames - 1) * HOP
    t = torch.arange(n_samples) / SR
    gen = torch.Generator().manual_seed(0)
    left = 0.5 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(n_samples, generator=gen)
    right = 0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.05 * torch.randn(n_samples, generator=gen)
    spec = torch.stft(
        torch.stack([left, right]), N_FFT, hop_length=HOP, window=torch.hann_window(N_FFT), return_complex=True
    )
    return spec.numpy().astype(np.complex64)


def test_real_size_checkpoint_round_trip_and_separation(tmp_path):
    torch.manual_seed(0)
    net = randomise_batchnorm(CascadedNet(N_FFT, 32, 128)).eval()
    path = tmp_path / "real.pth"
    save_checkpoint(net, path)
    loaded = load_checkpoint(path, n_fft=N_FFT, device="cpu")
    assert len(loaded.state_dict()) == 689

    spec = _stereo_spectrogram(128)  # 128 frames ≈ 2.97 s at 44.1 kHz
    assert spec.shape == (2, 1025, 128)
    first, second = Separator(loaded, batch_size=4, device="cpu").separate(spec)
    assert first.shape == second.shape == spec.shape
    assert np.all(np.isfinite(first)) and np.all(np.isfinite(second))
    np.testing.assert_allclose(first + second, spec, atol=1e-5)

    # Reference: the plain net on vocal-remover's first window (pad offset left, divide by the peak).
    left, right, _ = make_padding(128, 256, 64)
    mag = np.abs(spec)
    window = np.pad(mag, ((0, 0), (0, 0), (left, right)))[None, :, :, :256] / mag.max()
    with torch.no_grad():
        expected_mask = net.predict_mask(torch.from_numpy(window.astype(np.float32)))[0].numpy()
    mask = np.abs(first) / np.maximum(np.abs(spec), 1e-20)
    big = np.abs(spec) > 1e-3
    np.testing.assert_allclose(mask[big], expected_mask[big], atol=1e-4)
