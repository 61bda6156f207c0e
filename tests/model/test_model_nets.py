"""CascadedNet and its layers: module tree / state-dict format, shapes, modes, mask range."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from stemforge.model import CascadedNet
from stemforge.model.layers import ASPPModule, Decoder, crop_center


@pytest.fixture(scope="module")
def full_size_state() -> dict[str, torch.Tensor]:
    return CascadedNet(2048, nout=32, nout_lstm=128).state_dict()


def test_full_size_state_dict_has_upstream_keys_and_count(full_size_state):
    assert len(full_size_state) == 689
    keys = list(full_size_state)
    assert keys[0] == "stg1_low_band_net.0.enc1.conv.0.weight"
    assert keys[-2:] == ["out.weight", "aux_out.weight"]
    for key in [
        "stg1_low_band_net.1.conv.1.running_var",
        "stg1_high_band_net.aspp.conv1.1.conv.0.weight",
        "stg2_low_band_net.0.enc5.conv2.conv.1.num_batches_tracked",
        "stg3_full_band_net.aspp.bottleneck.conv.0.weight",
        "stg3_full_band_net.lstm_dec2.lstm.weight_hh_l0_reverse",
        "stg3_full_band_net.lstm_dec2.dense.1.running_mean",
        "stg3_full_band_net.dec1.conv1.conv.0.weight",
    ]:
        assert key in full_size_state, key


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        # Shapes worked out from the seed's channel arithmetic for n_fft=2048, nout=32, nout_lstm=128.
        ("stg1_low_band_net.0.enc1.conv.0.weight", (16, 2, 3, 3)),
        ("stg1_low_band_net.1.conv.0.weight", (8, 16, 1, 1)),
        ("stg1_high_band_net.enc5.conv1.conv.0.weight", (64, 48, 3, 3)),
        ("stg1_high_band_net.lstm_dec2.lstm.weight_ih_l0", (4 * 32, 256)),
        ("stg2_low_band_net.0.enc1.conv.0.weight", (32, 10, 3, 3)),
        ("stg2_high_band_net.dec1.conv1.conv.0.weight", (16, 16 * 3 + 1, 3, 3)),
        ("stg3_full_band_net.enc1.conv.0.weight", (32, 26, 3, 3)),
        ("stg3_full_band_net.aspp.bottleneck.conv.0.weight", (256, 256 * 5, 1, 1)),
        ("stg3_full_band_net.dec4.conv1.conv.0.weight", (192, 32 * 14, 3, 3)),
        ("stg3_full_band_net.lstm_dec2.conv.conv.0.weight", (1, 64, 1, 1)),
        ("stg3_full_band_net.lstm_dec2.lstm.weight_ih_l0", (4 * 64, 512)),
        ("stg3_full_band_net.lstm_dec2.dense.0.weight", (512, 128)),
        ("out.weight", (2, 32, 1, 1)),
        ("aux_out.weight", (2, 24, 1, 1)),
    ],
)
def test_full_size_tensor_shapes(full_size_state, key, shape):
    assert tuple(full_size_state[key].shape) == shape


def test_aspp_dilated_branches_use_2d_dilation_as_padding():
    net = CascadedNet(256, nout=8, nout_lstm=32)
    aspp = net.stg3_full_band_net.aspp
    for name, dilation in [("conv3", (4, 2)), ("conv4", (8, 4)), ("conv5", (12, 6))]:
        conv = getattr(aspp, name).conv[0]
        assert conv.dilation == dilation and conv.padding == dilation
    assert isinstance(aspp.dropout, torch.nn.Dropout2d)


def test_offset_and_bins():
    net = CascadedNet(2048)
    assert (net.offset, net.max_bin, net.output_bin, net.nin_lstm, net.n_fft) == (64, 1024, 1025, 512, 2048)


def test_eval_forward_returns_mask_in_unit_range(small_net):
    x = torch.rand(2, 2, 129, 256) * 3
    with torch.no_grad():
        mask = small_net(x)
    assert isinstance(mask, torch.Tensor)
    assert mask.shape == (2, 2, 129, 256)
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    # The top (Nyquist) bin is not modelled: it replicates the bin below it.
    assert torch.equal(mask[:, :, -1], mask[:, :, -2])


def test_training_forward_returns_mask_and_aux():
    torch.manual_seed(0)
    net = CascadedNet(256, nout=8, nout_lstm=32).train()
    mask, aux = net(torch.rand(2, 2, 129, 160))
    assert mask.shape == aux.shape == (2, 2, 129, 160)
    for t in (mask, aux):
        assert float(t.detach().min()) >= 0.0 and float(t.detach().max()) <= 1.0
    (mask.mean() + aux.mean()).backward()
    assert net.aux_out.weight.grad is not None and net.out.weight.grad is not None


def test_predict_mask_and_predict_crop_offset(small_net):
    x = torch.rand(1, 2, 129, 256)
    with torch.no_grad():
        full = small_net(x)
        mask = small_net.predict_mask(x)
        pred = small_net.predict(x)
    assert mask.shape == (1, 2, 129, 128)
    assert torch.equal(mask, full[..., 64:-64])
    assert torch.allclose(pred, (x * full)[..., 64:-64])


def test_predict_mask_rejects_window_without_centre(small_net):
    with torch.no_grad(), pytest.raises(ValueError, match="offset"):
        small_net.predict_mask(torch.rand(1, 2, 129, 128))


def test_batch_elements_are_independent(small_net):
    x = torch.rand(3, 2, 129, 160)
    with torch.no_grad():
        together = small_net(x)
        alone = torch.cat([small_net(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_invalid_n_fft_is_rejected():
    with pytest.raises(ValueError, match="n_fft"):
        CascadedNet(1000)


def test_crop_center_crops_time_only_and_centred():
    skip = torch.arange(2 * 3 * 4 * 10, dtype=torch.float32).reshape(2, 3, 4, 10)
    target = torch.zeros(2, 5, 4, 6)
    cropped = crop_center(skip, target)
    assert torch.equal(cropped, skip[..., 2:8])
    assert crop_center(skip, torch.zeros(1, 1, 4, 10)) is skip
    with pytest.raises(ValueError, match="narrower"):
        crop_center(skip, torch.zeros(2, 3, 4, 12))


def test_decoder_upsamples_bilinear_align_corners_then_concatenates_skip():
    dec = Decoder(3 + 2, 4).eval()
    x = torch.rand(1, 3, 4, 5)
    skip = torch.rand(1, 2, 8, 12)
    with torch.no_grad():
        out = dec(x, skip)
        # Independent reference: corners of an align_corners=True ×2 upsampling equal the input's corners.
        up = torch.nn.functional.interpolate(x, size=(8, 10), mode="bilinear", align_corners=True)
        expected = dec.conv1(torch.cat([up, skip[..., 1:11]], dim=1))
    assert torch.equal(up[..., 0, 0], x[..., 0, 0]) and torch.equal(up[..., -1, -1], x[..., -1, -1])
    assert out.shape == (1, 4, 8, 10)
    assert torch.allclose(out, expected)


def test_aspp_keeps_spatial_size():
    aspp = ASPPModule(16, 8, ((4, 2), (8, 4), (12, 6))).eval()
    with torch.no_grad():
        assert aspp(torch.rand(2, 16, 9, 16)).shape == (2, 8, 9, 16)


def test_model_package_does_not_import_beam():
    code = "import sys, model; print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
