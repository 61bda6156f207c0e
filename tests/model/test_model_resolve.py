"""resolve_model: one place that turns a checkpoint into a network, band table, stems, window and aggression."""

import numpy as np
import pytest
import torch
from stemforge_testing import music

from stemforge.model import (
    Aggression,
    BandParamsRequired,
    CascadedASPPNet,
    CascadedNet,
    known_model,
    resolve_model,
    save_checkpoint,
)

HP_UVR_2 = "941f3f7f0b0341f12087aacdfef644b1"  # 2_HP-UVR: 4band_v2, Instrumental
HP_VOCAL_UVR_3 = "911d4048eee7223eca4ee0efb7d29256"  # 3_HP-Vocal-UVR: 4band_44100, Vocals


@pytest.fixture(scope="module")
def aspp_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("aspp") / "unknown-hp.pth"
    save_checkpoint(CascadedASPPNet(1344, 31191), str(path))
    return path


def test_a_known_uvr_model_runs_as_uvr_runs_it(aspp_file):
    setup = resolve_model(aspp_file, device="cpu", known=known_model(HP_UVR_2))
    assert setup.bands.name == "4band_v2" and setup.net.n_fft == 1344
    assert setup.stems == ("instrumental", "vocals") and setup.cropsize == 512
    assert setup.aggression == Aggression(5, 85, flip=False) and setup.postprocess_threshold == 0.2
    wave = music(44100, seed=1)
    first, second = setup.separator(device="cpu").separate_audio(wave, bands=setup.bands)
    assert first.shape == second.shape == wave.shape
    assert np.isfinite(first).all() and np.isfinite(second).all() and not np.allclose(first, second)


def test_a_vocals_primary_model_flips_aggression_and_names_vocals_first(aspp_file):
    setup = resolve_model(aspp_file, device="cpu", known=known_model(HP_VOCAL_UVR_3), aggression=10)
    assert setup.stems == ("vocals", "instrumental")
    assert setup.aggression == Aggression(10, 186, flip=True)


def test_explicit_settings_win_over_the_table(aspp_file):
    setup = resolve_model(aspp_file, device="cpu", known=known_model(HP_UVR_2), band_params="4band_v3",
                          stems=("drums", "no_drums"), cropsize=320)
    assert setup.bands.name == "4band_v3" and setup.cropsize == 320
    assert setup.stems == ("drums", "no_drums") and setup.aggression.flip


def test_an_unknown_multi_band_file_needs_a_band_table(aspp_file, tmp_path):
    assert known_model("0" * 32) is None
    with pytest.raises(BandParamsRequired, match=r"unknown-hp\.pth is a CascadedASPPNet\(.*nn_arch=31191\).*band table"):
        resolve_model(aspp_file, device="cpu")  # looked up by its UVR hash: not in the table
    setup = resolve_model(aspp_file, device="cpu", band_params="4band_v2")
    assert setup.known is None and setup.aggression is None and setup.stems == ("instruments", "vocals")
    v51 = tmp_path / "denoise-like.pth"
    save_checkpoint(CascadedNet(1344, 16, 32), str(v51))
    with pytest.raises(BandParamsRequired, match=r"CascadedNet\(n_fft=1344, nout=16, nout_lstm=32\).*n_fft=2048"):
        resolve_model(v51, device="cpu")


def test_a_vocal_remover_checkpoint_keeps_vocal_removers_defaults(tiny_checkpoint):
    setup = resolve_model(tiny_checkpoint, n_fft=512, device="cpu")
    assert setup.bands is None and setup.known is None and setup.aggression is None
    assert (setup.cropsize, setup.postprocess_threshold, setup.stems) == (256, 0.05, ("instruments", "vocals"))
    with pytest.raises(ValueError, match="aggression is UVR's setting"):
        resolve_model(tiny_checkpoint, n_fft=512, device="cpu", aggression=5)


def test_a_half_precision_copy_loads_as_rvc_ships_them(aspp_file, tmp_path):
    """RVC's uvr5 weights are UVR's networks saved in float16: they load into float32 networks."""
    half = tmp_path / "HP2_like_fp16.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in torch.load(aspp_file).items()}, half)
    full = resolve_model(aspp_file, device="cpu", band_params="4band_v2").net
    setup = resolve_model(half, device="cpu", band_params="4band_v2")
    assert next(setup.net.parameters()).dtype == torch.float32
    for (key, ours), theirs in zip(setup.net.state_dict().items(), full.state_dict().values()):
        torch.testing.assert_close(ours, theirs.to(ours.dtype).half().to(ours.dtype), msg=key)
