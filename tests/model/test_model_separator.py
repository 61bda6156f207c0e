"""Separator: padding and stitching proven lossless with stand-in nets, and equal to vocal-remover's procedure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stemforge_testing import upstream_mask
from torch import nn

from stemforge.model import InferenceModel, Separator

N_FFT = 32  # stand-in nets ignore n_fft; a small one keeps the oracle tests fast
BINS = N_FFT // 2 + 1


class StandInNet(nn.Module):
    """A mask network with a known answer; ``kind`` picks it.

    - "ones" / "zeros": constant masks;
    - "content": mask = floor(16·x)/16 per element, i.e. a time–frequency
      pattern read from the input itself, so any misplaced frame shows;
    - "position": mask = (frame index within the window) / window width, which
      reveals exactly which window and which part of it produced each frame.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.offset = 64
        self.n_fft = N_FFT
        self.output_bin = BINS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "ones":
            return torch.ones_like(x)
        if self.kind == "zeros":
            return torch.zeros_like(x)
        if self.kind == "content":
            return torch.clamp(torch.floor(x * 16) / 16, 0, 1)
        width = x.shape[-1]
        return (torch.arange(width, dtype=x.dtype) / width).expand_as(x).clone()

    def predict_mask(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[..., self.offset : -self.offset]


def _pattern_spectrogram(n_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A complex spectrogram whose normalised magnitudes are (q + 0.5)/16 with random phases, plus
    one element of magnitude 1 (the peak); returns it and the mask the "content" net must give."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 16, size=(2, BINS, n_frames))
    magnitude = (q + 0.5) / 16
    expected = q / 16
    magnitude[1, BINS // 2, n_frames // 2] = 1.0
    expected[1, BINS // 2, n_frames // 2] = 1.0
    phase = rng.uniform(-np.pi, np.pi, size=q.shape)
    spec = (magnitude * np.exp(1j * phase)).astype(np.complex64)
    return spec, expected.astype(np.float32)


def _position_mask(n_frames: int, cropsize: int, offset: int, tta: bool) -> np.ndarray:
    """Expected "position" mask from the reference facts: frame t is kept from the window whose
    centre covers it, at index offset + (t + shift) % roi of that window."""
    roi = cropsize - 2 * offset
    t = np.arange(n_frames)
    width = np.float32(cropsize)  # the stand-in divides in float32
    first = (offset + t % roi).astype(np.float32) / width
    if tta:
        second = (offset + (t + roi // 2) % roi).astype(np.float32) / width
        first = (first + second) * np.float32(0.5)
    return np.broadcast_to(first, (2, BINS, n_frames))


FRAME_COUNTS = [1, 128, 129, 10 * 128 + 7]


@pytest.mark.parametrize("n_frames", FRAME_COUNTS)
@pytest.mark.parametrize("tta", [False, True])
def test_content_oracle_first_is_mask_times_x_exactly(n_frames, tta):
    spec, expected = _pattern_spectrogram(n_frames, seed=n_frames)
    sep = Separator(StandInNet("content"), batch_size=3, tta=tta, device="cpu")
    first, second = sep.separate(spec)
    np.testing.assert_array_equal(sep.predict_mask(spec), expected)
    np.testing.assert_array_equal(first, expected * spec)
    np.testing.assert_array_equal(second, (1 - expected) * spec)
    assert first.dtype == second.dtype == np.complex64


@pytest.mark.parametrize("n_frames", FRAME_COUNTS)
@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize("cropsize", [256, 160])
def test_position_oracle_keeps_each_windows_centre(n_frames, tta, cropsize):
    spec, _ = _pattern_spectrogram(n_frames, seed=1)
    sep = Separator(StandInNet("position"), batch_size=4, cropsize=cropsize, tta=tta, device="cpu")
    expected = _position_mask(n_frames, cropsize, 64, tta)
    np.testing.assert_array_equal(sep.predict_mask(spec), expected)
    np.testing.assert_array_equal(sep.separate(spec)[0], expected * spec)


@pytest.mark.parametrize("n_frames", FRAME_COUNTS)
@pytest.mark.parametrize("tta", [False, True])
def test_constant_oracles(n_frames, tta):
    spec, _ = _pattern_spectrogram(n_frames, seed=2)
    first, second = Separator(StandInNet("ones"), tta=tta, device="cpu").separate(spec)
    np.testing.assert_array_equal(first, spec)
    np.testing.assert_array_equal(second, np.zeros_like(spec))
    first, second = Separator(StandInNet("zeros"), tta=tta, device="cpu").separate(spec)
    np.testing.assert_array_equal(first, np.zeros_like(spec))
    np.testing.assert_array_equal(second, spec)


def test_postprocess_applies_merge_artifacts_semantics():
    # A constant 0.5 mask over 300 frames is one high run 0..299: weight 1 up to 299-32, a fade-out over
    # 267..298, 0 on the last frame.
    class Half(StandInNet):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x, 0.5)

    spec, _ = _pattern_spectrogram(300, seed=4)
    mask = Separator(Half("half"), postprocess=True, device="cpu").predict_mask(spec)
    weight = np.zeros(300)
    weight[:267] = 1.0
    weight[267:299] = np.linspace(1.0, 0.0, 32)
    np.testing.assert_allclose(mask, np.broadcast_to(0.5 + 0.5 * weight, mask.shape), atol=1e-7)


@pytest.mark.parametrize(("n_frames", "tta"), [(300, False), (256, True), (77, True)])
def test_small_cascadednet_matches_upstream_procedure(small_net, n_frames, tta):
    rng = np.random.default_rng(n_frames)
    spec = (rng.standard_normal((2, 129, n_frames)) + 1j * rng.standard_normal((2, 129, n_frames))).astype(
        np.complex64
    )
    expected = upstream_mask(small_net, spec, 256, tta)
    got = Separator(small_net, batch_size=2, tta=tta, device="cpu").predict_mask(spec)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.min() >= 0 and got.max() <= 1


def test_results_do_not_depend_on_batch_size(small_net):
    rng = np.random.default_rng(7)
    spec = (rng.standard_normal((2, 129, 700)) * np.exp(1j * rng.uniform(0, 6, (2, 129, 700)))).astype(
        np.complex64
    )
    model = InferenceModel(small_net, device="cpu")
    masks = [Separator(model, batch_size=b, tta=True).predict_mask(spec) for b in (1, 3, 16)]
    np.testing.assert_allclose(masks[1], masks[0], atol=1e-6)
    np.testing.assert_allclose(masks[2], masks[0], atol=1e-6)


@pytest.mark.parametrize("tta", [False, True])
def test_silent_input_is_masked_as_the_network_masks_zeros(small_net, tta):
    """A silent track is not peak-normalised (0/0): the network sees zeros, so every frame's mask is the mask the
    network gives an all-zero window at that frame's place in its window (and, with TTA, the average with the
    grid shifted by roi/2). The reference runs the bare network once, without Separator's windowing."""
    frames = 200
    sep = Separator(small_net, tta=tta, device="cpu")
    with torch.no_grad():
        centre = small_net.predict_mask(torch.zeros(1, 2, 129, sep.cropsize))[0].numpy()
    place = np.arange(frames) % sep.roi
    expected = centre[:, :, place]
    if tta:
        expected = (expected + centre[:, :, (place + sep.roi // 2) % sep.roi]) * 0.5
    assert centre.std() > 0  # the mask varies along the window: a wrong placement would show
    mask = sep.predict_mask(np.zeros((2, 129, frames), dtype=np.complex64))
    np.testing.assert_allclose(mask, expected, rtol=0, atol=1e-6)


def test_rejects_bad_input_and_settings(small_net):
    sep = Separator(small_net, device="cpu")
    with pytest.raises(ValueError, match="129"):
        sep.separate(np.zeros((2, 128, 10), dtype=np.complex64))
    with pytest.raises(ValueError, match="non-finite"):
        sep.separate(np.full((2, 129, 10), np.nan, dtype=np.complex64))
    with pytest.raises(ValueError, match="cropsize"):
        Separator(small_net, cropsize=128, device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        Separator(small_net, batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="InferenceModel"):
        Separator(InferenceModel(small_net, device="cpu"), device="cpu")
