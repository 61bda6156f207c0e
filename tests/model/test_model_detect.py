"""Detecting the network from a state dict's keys and shapes, and load_checkpoint for every family,
checked on state dicts built by audio-separator's (UVR's) own network classes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from stemforge_testing import randomise_batchnorm, spread_mask
from uvr_reference import uvr_or_skip

from stemforge.model import (
    ASPP_CAPACITIES,
    CascadedASPPNet,
    CascadedNet,
    CheckpointError,
    NetSpec,
    detect_net,
    infer_config,
    load_checkpoint,
)

CANONICAL = {31191: 31191, 33966: 33966, 129605: 129605, 123812: 123812, 123821: 123812, 537238: 537238, 537227: 537238}
LSTM_KEY = "stg1_low_band_net.0.lstm_dec2.lstm.weight_ih_l0"


@pytest.fixture(scope="module")
def ref():
    return uvr_or_skip()


def _one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    text = str(exc.value)
    assert "\n" not in text and str(path) in text
    return text


def _layout(state: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    return [(key, tuple(t.shape)) for key, t in state.items()]


@pytest.mark.parametrize("nn_arch", sorted(CANONICAL))
def test_every_aspp_class_is_detected_from_uvrs_layout(ref, nn_arch):
    with torch.device("meta"):
        state = ref["nets"].determine_model_capacity(2048, nn_arch).state_dict()
    spec = detect_net(state)
    assert spec == NetSpec("aspp", nn_arch=CANONICAL[nn_arch])
    assert ASPP_CAPACITIES[spec.nn_arch] == ASPP_CAPACITIES[nn_arch]
    with torch.device("meta"):
        assert _layout(spec.build(1536).state_dict()) == _layout(state)  # 4band_44100's n_fft: weights fit any


@pytest.mark.parametrize("n_fft", [2048, 1344, 1792])  # 1-band files, 4band_v3 (672 bins), 4band_v4_ms_fullband
@pytest.mark.parametrize("nout", [16, 32, 48, 64])
def test_cascadednet_nout_lstm_and_bins_are_detected_from_uvrs_layout(ref, nout, n_fft):
    with torch.device("meta"):
        state = ref["nets_new"].CascadedNet(n_fft, 56817, nout=nout, nout_lstm=128).state_dict()
    spec = detect_net(state)
    assert spec == NetSpec("cascaded", nout=nout, nout_lstm=128, n_fft=n_fft)
    assert infer_config(state) == (nout, 128)
    assert len(state) == 689  # README §1.5
    with torch.device("meta"):
        assert _layout(spec.build().state_dict()) == _layout(state)  # UVR's VR 5.1 net is our CascadedNet


def test_infer_config_refuses_an_aspp_state_dict():
    with torch.device("meta"):
        state = CascadedASPPNet(2048, 123812).state_dict()
    with pytest.raises(ValueError, match="not a CascadedNet.*nn_arch=123812"):
        infer_config(state)


@pytest.fixture(scope="module")
def uvr_aspp_file(ref, tmp_path_factory) -> tuple[Path, torch.nn.Module, torch.Tensor]:
    """A checkpoint saved from UVR's own 33966 net (random weights, spread mask), as UVR's files are."""
    torch.manual_seed(3)
    x = torch.rand(1, 2, 65, 288) + 1e-3
    theirs = spread_mask(randomise_batchnorm(ref["nets"].determine_model_capacity(128, 33966), 3).eval(), x)
    path = tmp_path_factory.mktemp("uvr") / "SP-UVR-33966.pth"
    torch.save(theirs.state_dict(), path)
    return path, theirs, x


def test_uvr_aspp_checkpoint_loads_and_runs_as_uvr(uvr_aspp_file):
    path, theirs, x = uvr_aspp_file
    net = load_checkpoint(path, n_fft=128, device="cpu")
    assert isinstance(net, CascadedASPPNet) and net.nn_arch == 33966 and not net.training
    with torch.no_grad():
        torch.testing.assert_close(net.predict_mask(x), theirs.predict_mask(x), atol=1e-5, rtol=0)


def test_an_aspp_checkpoint_needs_an_n_fft_that_fits(uvr_aspp_file):
    path, _, _ = uvr_aspp_file
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=None, device="cpu")
    assert "must be given" in _one_line(exc, path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=1000, device="cpu")
    assert "n_fft=1000" in _one_line(exc, path)
    assert load_checkpoint(path, n_fft=1344, device="cpu").n_fft == 1344  # 4band_v3's bins


@pytest.fixture(scope="module")
def vr51_file(ref, tmp_path_factory) -> Path:
    """A checkpoint saved from UVR's VR 5.1 net with nout 16 for 4band_v3 (n_fft 1344)."""
    torch.manual_seed(4)
    path = tmp_path_factory.mktemp("uvr") / "UVR-VR51-nout16.pth"
    torch.save(ref["nets_new"].CascadedNet(1344, 56817, nout=16, nout_lstm=128).state_dict(), path)
    return path


def test_a_cascadednet_checkpoint_takes_its_own_n_fft(vr51_file):
    net = load_checkpoint(vr51_file, n_fft=None, device="cpu")
    assert isinstance(net, CascadedNet) and net.n_fft == 1344 and net.out.weight.shape[1] == 16
    assert load_checkpoint(vr51_file, n_fft=1344, device="cpu").n_fft == 1344


def test_a_cascadednet_checkpoint_with_other_bins_is_a_one_line_error(vr51_file):
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(vr51_file, n_fft=2048, device="cpu")
    text = _one_line(exc, vr51_file)
    assert "n_fft=2048" in text and "n_fft=1344 (672 bins)" in text and repr(LSTM_KEY) in text


@pytest.fixture(scope="module")
def aspp_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(5)
    return CascadedASPPNet(128, 31191).state_dict()


def test_missing_batch_counters_are_tolerated(aspp_state, tmp_path):
    state = {k: v for k, v in aspp_state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "no_counters.pth")
    loaded = load_checkpoint(tmp_path / "no_counters.pth", n_fft=128, device="cpu").state_dict()
    assert loaded.keys() == aspp_state.keys()
    assert all(torch.equal(loaded[k], aspp_state[k]) for k in state)


def _drop(state: dict[str, torch.Tensor], fragment: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if fragment not in k}


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("no_conv5.pth", lambda s: _drop(s, ".aspp.conv5."), "4 ASPP branches matches no UVR capacity class"),
        (
            "one_missing.pth",
            lambda s: _drop(s, "stg3_full_band_net.dec2.conv.conv.1.running_mean"),
            "'stg3_full_band_net.dec2.conv.conv.1.running_mean' is missing",
        ),
        ("reshaped.pth", lambda s: {**s, "stg2_bridge.conv.0.weight": torch.zeros(8, 20, 1, 1)}, "has shape (8, 20, 1, 1)"),
        ("extra.pth", lambda s: {**s, "stg4_bridge.conv.0.weight": torch.zeros(1)}, "unexpected tensor 'stg4_bridge"),
        ("foreign.pth", lambda s: {"out.weight": torch.zeros(2, 8, 1, 1), "fc.weight": torch.zeros(8, 8)}, "neither"),
        ("mixed.pth", lambda s: {**s, "aux_out.weight": torch.zeros(2, 8, 1, 1)}, "both"),
        ("no_out.pth", lambda s: _drop(s, "out.weight"), "no 4-D tensor 'out.weight'"),
    ],
)
def test_state_dicts_that_match_no_family_are_one_line_errors_naming_the_file(aspp_state, tmp_path, name, make, expected):
    path = tmp_path / name
    torch.save(make(aspp_state), path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=128, device="cpu")
    assert expected in _one_line(exc, path)


def test_truncated_aspp_file_is_a_one_line_error(aspp_state, tmp_path):
    torch.save(aspp_state, tmp_path / "full.pth")
    path = tmp_path / "cut.pth"
    path.write_bytes((tmp_path / "full.pth").read_bytes()[:100_000])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=128, device="cpu")
    _one_line(exc, path)


def test_load_checkpoint_gives_the_shared_branch_conv7s_weights_as_uvr(ref, uvr_aspp_file, tmp_path):
    _, theirs, x = uvr_aspp_file
    gen = torch.Generator().manual_seed(6)
    state = {
        k: v * (0.5 + torch.rand(v.shape, generator=gen)) if ".aspp.conv7." in k and v.is_floating_point() else v
        for k, v in theirs.state_dict().items()
    }
    torch.save(state, tmp_path / "distinct_conv7.pth")
    net = load_checkpoint(tmp_path / "distinct_conv7.pth", n_fft=128, device="cpu")
    key = "stg2_full_band_net.aspp.conv6.conv.0.weight"
    assert torch.equal(net.state_dict()[key], state[key.replace("conv6", "conv7")])
    assert not torch.equal(state[key], state[key.replace("conv6", "conv7")])
    uvr_net = ref["nets"].determine_model_capacity(128, 33966).eval()
    uvr_net.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(net.predict_mask(x), uvr_net.predict_mask(x), atol=1e-5, rtol=0)
