"""CascadedASPPNet against audio-separator's (UVR's) own nets: state-dict layout, masks, the shared
conv6/conv7 branch, and InferenceModel (BatchNorm folding, channels_last, autocast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stemforge_testing import randomise_batchnorm, spread_mask
from torch import nn
from uvr_reference import uvr_or_skip

from stemforge.model import ASPP_CAPACITIES, CascadedASPPNet, InferenceModel, fold_batchnorm

# Key counts per capacity class (README §1.2), including num_batches_tracked.
KEY_COUNTS = {31191: 459, 33966: 515, 129605: 559, 123812: 459, 123821: 459, 537238: 515, 537227: 515}
# Small valid sizes: each half of n_fft//2 bins and the width must be multiples of 16 (32 with enc5);
# widths leave 16/32 frames after cropping offset=128 on each side.
N_FFT = 128
WIDTH = 288


@pytest.fixture(scope="module")
def ref():
    return uvr_or_skip()


def _layout(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(t.shape)) for key, t in net.state_dict().items()]


def _inputs(n_fft: int, width: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 2, n_fft // 2 + 1, width, generator=gen) + 1e-3


def _random_net(
    n_fft: int, nn_arch: int, x: torch.Tensor, seed: int = 0, target_std: float = 4.0
) -> CascadedASPPNet:
    """A random-weight net with trained-looking BatchNorm and an output layer that spreads the mask."""
    torch.manual_seed(seed)
    net = randomise_batchnorm(CascadedASPPNet(n_fft, nn_arch), seed).eval()
    return spread_mask(net, x, target_std)


def _ref_masks(ref, net: nn.Module, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
    theirs = ref["nets"].determine_model_capacity(net.n_fft, net.nn_arch).eval()
    theirs.load_state_dict(net.state_dict() if state is None else state, strict=True)
    with torch.no_grad():
        return theirs.predict_mask(x)


def _assert_spread(mask: torch.Tensor) -> None:
    low, high = (mask < 0.25).float().mean().item(), (mask > 0.75).float().mean().item()
    assert mask.std().item() > 0.15 and low > 0.05 and high > 0.05, "mask crowds around one value"


@pytest.mark.parametrize("nn_arch", sorted(KEY_COUNTS))
def test_state_dict_keys_and_shapes_equal_uvrs(ref, nn_arch):
    with torch.device("meta"):
        ours = CascadedASPPNet(N_FFT, nn_arch)
        theirs = ref["nets"].determine_model_capacity(N_FFT, nn_arch)
    assert _layout(ours) == _layout(theirs)
    assert len(ours.state_dict()) == KEY_COUNTS[nn_arch]
    assert (ours.offset, ours.max_bin, ours.output_bin, ours.n_fft) == (128, 64, 65, N_FFT)


def test_123812_layout_matches_the_reference_facts():
    """README §1.4: 459 keys, 74 BatchNorms, 31,651,360 weights; shapes do not depend on n_fft."""
    with torch.device("meta"):
        net = CascadedASPPNet(2048, 123812)
        small = CascadedASPPNet(N_FFT, 123812)
    state = net.state_dict()
    assert _layout(net) == _layout(small)
    assert len(state) == 459
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 74
    assert sum(t.numel() for k, t in state.items() if not k.endswith("num_batches_tracked")) == 31_651_360
    expected = {
        "stg1_low_band_net.enc1.conv1.conv.0.weight": (32, 2, 3, 3),
        "stg1_low_band_net.aspp.bottleneck.0.conv.0.weight": (512, 1280, 1, 1),
        "stg1_low_band_net.aspp.conv3.conv.0.weight": (256, 1, 3, 3),
        "stg1_low_band_net.aspp.conv3.conv.1.weight": (256, 256, 1, 1),
        "stg1_low_band_net.dec1.conv.conv.0.weight": (32, 96, 3, 3),
        "stg2_bridge.conv.0.weight": (16, 34, 1, 1),
        "stg3_bridge.conv.0.weight": (32, 66, 1, 1),
        "stg3_full_band_net.enc4.conv2.conv.0.weight": (512, 512, 3, 3),
        "stg3_full_band_net.aspp.bottleneck.0.conv.0.weight": (1024, 2560, 1, 1),
        "stg3_full_band_net.dec4.conv.conv.0.weight": (512, 1536, 3, 3),
        "out.weight": (2, 64, 1, 1),
        "aux1_out.weight": (2, 32, 1, 1),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected


@pytest.mark.parametrize("nn_arch", [31191, 33966, 129605, 123812])
def test_masks_equal_uvrs(ref, nn_arch):
    x = _inputs(N_FFT, WIDTH, batch=2)
    net = _random_net(N_FFT, nn_arch, x)
    with torch.no_grad():
        ours = net.predict_mask(x)
    assert ours.shape == (2, 2, N_FFT // 2 + 1, WIDTH - 256)
    _assert_spread(ours)
    torch.testing.assert_close(ours, _ref_masks(ref, net, x), atol=1e-5, rtol=0)
    # The replicated last bin.
    assert torch.equal(ours[:, :, -1], ours[:, :, -2])


@pytest.fixture(scope="module")
def hp2_net() -> tuple[CascadedASPPNet, torch.Tensor]:
    """The ~134M-parameter ch64 net (537238), built once, with its tiny input (n_fft 64, 272 frames)."""
    x = _inputs(64, 272)
    return _random_net(64, 537238, x), x


def test_hp2_ch64_masks_equal_uvrs(ref, hp2_net):
    net, x = hp2_net
    with torch.no_grad():
        ours = net.predict_mask(x)
    _assert_spread(ours)
    torch.testing.assert_close(ours, _ref_masks(ref, net, x), atol=1e-5, rtol=0)


def _with_distinct_conv7(state: dict[str, torch.Tensor], seed: int = 5) -> dict[str, torch.Tensor]:
    """``state`` with every ``aspp.conv7`` tensor replaced so it differs from ``aspp.conv6``."""
    gen = torch.Generator().manual_seed(seed)
    out = dict(state)
    for key, tensor in state.items():
        if ".aspp.conv7." in key and tensor.is_floating_point():
            out[key] = tensor * (0.5 + torch.rand(tensor.shape, generator=gen))
    return out


def test_shared_conv6_conv7_use_conv7s_weights_as_uvr(ref):
    x = _inputs(N_FFT, WIDTH)
    net = _random_net(N_FFT, 33966, x)
    state = _with_distinct_conv7(net.state_dict())
    key6 = "stg3_full_band_net.aspp.conv6.conv.1.weight"
    key7 = key6.replace("conv6", "conv7")
    assert not torch.equal(state[key6], state[key7])

    net.load_state_dict(state, strict=True)
    for stage in (net.stg1_low_band_net, net.stg2_full_band_net, net.stg3_full_band_net):
        assert stage.aspp.conv6 is stage.aspp.conv7
    assert torch.equal(net.state_dict()[key6], state[key7])
    with torch.no_grad():
        ours = net.predict_mask(x)
    _assert_spread(ours)
    torch.testing.assert_close(ours, _ref_masks(ref, net, x, state), atol=1e-5, rtol=0)


def test_seven_branches_of_hp2_share_conv6_and_conv7(hp2_net):
    net, _ = hp2_net
    assert net.stg3_full_band_net.aspp.conv6 is net.stg3_full_band_net.aspp.conv7
    assert ASPP_CAPACITIES[537238].branches == 7


@pytest.mark.parametrize("nn_arch", [33966, 129605, 123812])
def test_inference_model_folded_channels_last_equals_plain_net(nn_arch):
    x = _inputs(N_FFT, WIDTH, batch=2, seed=1)
    # A milder spread than elsewhere: a random net's logits are small differences of large sums, and
    # re-scaling them to std 4 magnifies float32 rounding (folding and channels_last reorder sums) to ~1e-5.
    net = _random_net(N_FFT, nn_arch, x, target_std=2.0)
    with torch.no_grad():
        plain = net.predict_mask(x).numpy()
    _assert_spread(torch.from_numpy(plain))
    model = InferenceModel(net, device="cpu", precision="fp32", optimize=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.net.modules())
    assert (model.offset, model.n_fft) == (128, N_FFT)
    out = model(x.numpy())
    assert out.shape == plain.shape == (2, 2, N_FFT // 2 + 1, WIDTH - 256)
    np.testing.assert_allclose(out, plain, atol=1e-5, rtol=0)
    bf16 = InferenceModel(net, device="cpu", precision="bf16")(x.numpy())
    assert bf16.dtype == np.float32 and np.abs(bf16 - plain).mean() < 0.05


def test_fold_batchnorm_folds_every_separable_block_exactly():
    """In float64 the folded net equals the original to rounding: the fold itself is exact."""
    x = _inputs(N_FFT, WIDTH).double()
    net = _random_net(N_FFT, 33966, x.float()).double()
    batchnorms = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the shared branch counts once
    with torch.no_grad():
        before = net.predict_mask(x)
        assert fold_batchnorm(net) == batchnorms
        after = net.predict_mask(x)
    _assert_spread(before)
    torch.testing.assert_close(after, before, atol=1e-10, rtol=0)
    separable = net.stg1_low_band_net.aspp.conv3.conv
    assert isinstance(separable[2], nn.Identity) and separable[1].bias is not None
    assert separable[0].bias is None  # the depthwise conv is untouched


def test_invalid_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="n_fft"):
        CascadedASPPNet(1344, 129605)  # 336 bins per half do not halve five times
    with pytest.raises(ValueError, match="unknown CascadedASPPNet capacity"):
        CascadedASPPNet(2048, 56817)
    net = CascadedASPPNet(N_FFT, 129605).eval()
    with pytest.raises(ValueError, match="multiple of 32"), torch.no_grad():
        net.predict_mask(_inputs(N_FFT, 272))
    with pytest.raises(ValueError, match="offset=128"), torch.no_grad():
        net.predict_mask(_inputs(N_FFT, 256))


def test_training_mode_returns_mask_and_both_aux_masks():
    net = CascadedASPPNet(N_FFT, 31191).train()
    mask, aux1, aux2 = net(_inputs(N_FFT, 32, batch=2))
    assert mask.shape == aux1.shape == aux2.shape == (2, 2, N_FFT // 2 + 1, 32)
