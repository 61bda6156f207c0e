"""UVR models end to end in ``Separator.separate_audio``, against UVR's procedure as audio-separator runs it.

The reference is audio-separator 0.47.1's ``VRSeparator`` driven directly (its ``loading_mix``,
``inference_vr`` and ``spec_to_wav``: UVR's stems before its output normalisation and int16 writing),
on a float WAV made here and a random-weight checkpoint in UVR's layout whose output layer is set so
the masks spread over (0, 1). Its stems are one hop shorter than the input at most; ours keep every
sample, so they are compared over the reference's length.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from model_testutils import randomise_batchnorm, spread_mask
from stemforge_testing import music, snr_db
from uvr_reference import uvr_or_skip

from model import Aggression, CascadedASPPNet, CascadedNet, Separator
from transforms import load_band_params
from transforms.multiband import analyse

SR = 44100
SECONDS = 3.0


def _net(kind: str | int, n_fft: int, wave: np.ndarray, bands) -> torch.nn.Module:
    torch.manual_seed(1)
    if isinstance(kind, int):
        net = CascadedASPPNet(n_fft, kind)
    else:
        net = CascadedNet(n_fft, nout=int(kind), nout_lstm=128)
    net = randomise_batchnorm(net).eval()
    spec = analyse(wave, bands, is_v51=not isinstance(kind, int)).spec
    mag = np.abs(spec) / np.abs(spec).max()
    width = 512
    x = torch.from_numpy(np.ascontiguousarray(mag[None, :, :, :width]).astype(np.float32))
    if x.shape[-1] < width:
        x = torch.nn.functional.pad(x, (0, width - x.shape[-1]))
    return spread_mask(net, x, target_std=2.0)


def _reference(tmp_path, net, kind, bands_name: str, primary: str, aggression: int, tta: bool,
               high_end: bool, wav) -> tuple[np.ndarray, np.ndarray]:
    ref = uvr_or_skip()
    path = tmp_path / "model.pth"
    torch.save(net.state_dict(), path)
    data = {"vr_model_param": bands_name, "primary_stem": primary}
    if not isinstance(kind, int):
        data.update(nout=int(kind), nout_lstm=128)
    common = {"logger": logging.getLogger("uvr-reference"), "log_level": logging.WARNING,
              "torch_device": torch.device("cpu"), "torch_device_cpu": torch.device("cpu"), "torch_device_mps": None,
              "model_name": "model", "model_path": str(path), "model_data": data, "output_dir": str(tmp_path),
              "output_format": "wav", "normalization_threshold": 0.9, "amplification_threshold": 0.0,
              "enable_denoise": False, "invert_using_spec": False, "sample_rate": SR, "use_soundfile": True}
    arch = {"batch_size": 1, "window_size": 512, "aggression": aggression, "enable_tta": tta,
            "enable_post_process": False, "post_process_threshold": 0.2, "high_end_process": high_end}
    sep = ref["VRSeparator"](common, arch)
    sep.audio_file_path, sep.wav_subtype = str(wav), "FLOAT"
    sep._ensure_model_loaded(kind if isinstance(kind, int) else 56817)
    y, v = sep.inference_vr(sep.loading_mix(), sep.torch_device, sep.aggressiveness)
    stems = [sep.spec_to_wav(np.nan_to_num(s)) for s in (y, v)]
    if sep.model_samplerate != SR:
        import librosa

        stems = [librosa.resample(s, orig_sr=sep.model_samplerate, target_sr=SR) for s in stems]
    return stems[0], stems[1]


def _check(tmp_path, kind, bands_name: str, primary: str = "Instrumental", aggression: int = 5,
           tta: bool = False, high_end: bool = False, min_snr: float = 60.0) -> None:
    bands = load_band_params(bands_name)
    wave = music(int(SECONDS * SR) + 123, seed=3)
    wav = tmp_path / "mix.wav"
    sf.write(wav, wave.T, SR, subtype="FLOAT")
    net = _net(kind, bands.n_fft, wave, bands)
    expected = _reference(tmp_path, net, kind, bands_name, primary, aggression, tta, high_end, wav)
    flip = primary in ("Vocals", "Other", "Bass", "Drums", "Woodwinds")
    sep = Separator(net, batch_size=1, cropsize=512, tta=tta, device="cpu",
                    aggression=Aggression(aggression, bands.bands[0].crop_stop, flip))
    got = sep.separate_audio(wave, bands=bands, high_end=high_end)
    mask_std = np.std(np.abs(expected[0]) / (np.abs(expected[0]) + np.abs(expected[1]) + 1e-9))
    assert mask_std > 0.05  # the masks spread: the two stems really differ
    for ours, theirs in zip(got, expected):
        assert ours.shape == wave.shape
        n = min(theirs.shape[1], wave.shape[1])
        assert n >= wave.shape[1] - bands.top.hl * math.ceil(SR / bands.sr)
        assert snr_db(ours[:, :n], theirs[:, :n]) >= min_snr


@pytest.mark.parametrize(("kind", "bands_name"), [(123812, "4band_v2"), (31191, "2band_32000"), ("48", "4band_v3")])
def test_uvr_models_equal_uvrs_procedure(tmp_path, kind, bands_name):
    _check(tmp_path, kind, bands_name)


@pytest.mark.parametrize(("primary", "aggression", "tta"), [("Instrumental", 0, True), ("Vocals", 10, False)])
def test_aggression_and_tta_follow_uvr(tmp_path, primary, aggression, tta):
    _check(tmp_path, 31191, "1band_sr44100_hl1024", primary=primary, aggression=aggression, tta=tta)


def test_mirroring_follows_uvr(tmp_path):
    _check(tmp_path, 31191, "4band_44100", high_end=True)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "bands_name"), [
    (31191, "4band_44100"), (31191, "1band_sr44100_hl1024"), (33966, "4band_v2"), (129605, "4band_44100"),
    (123812, "3band_44100_msb2"), (123812, "4band_44100"), (537238, "3band_44100_msb2"),
    ("16", "1band_sr44100_hl1024"), ("32", "4band_v4_ms_fullband"), ("48", "4band_v3"), ("64", "4band_v3"),
    ("64", "4band_v4_ms_fullband"),
])
def test_every_capacity_class_and_table_equals_uvrs_procedure(tmp_path, kind, bands_name):
    _check(tmp_path, kind, bands_name)


@pytest.mark.slow
@pytest.mark.parametrize("aggression", [0, 5, 10])
@pytest.mark.parametrize("primary", ["Instrumental", "Vocals"])
@pytest.mark.parametrize("tta", [False, True])
def test_aggression_primary_and_tta_matrix(tmp_path, aggression, primary, tta):
    _check(tmp_path, 123812, "4band_v2", primary=primary, aggression=aggression, tta=tta)
