"""UVR models end to end in ``Separator.separate_audio``, against UVR's procedure as audio-separator runs it.

The reference is audio-separator 0.47.1's ``VRSeparator`` driven directly (its ``loading_mix``,
``inference_vr`` and ``spec_to_wav``: UVR's stems before its output normalisation and int16 writing),
on a float WAV made here and a random-weight checkpoint in UVR's layout whose output layer is set so
the masks spread over (0, 1). Its stems are one hop shorter than the input at most; ours keep every
sample, so they are compared over the reference's length.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
from stemforge_testing import music, snr_db
from uvr_reference import uvr_stems, uvr_test_net

from stemforge.model import Aggression, Separator
from stemforge.transforms import load_band_params

SR = 44100
SECONDS = 3.0


def _check(tmp_path, kind, bands_name: str, primary: str = "Instrumental", aggression: int = 5,
           tta: bool = False, high_end: bool = False, min_snr: float = 60.0) -> None:
    bands = load_band_params(bands_name)
    wave = music(int(SECONDS * SR) + 123, seed=3)
    wav = tmp_path / "mix.wav"
    sf.write(wav, wave.T, SR, subtype="FLOAT")
    net = uvr_test_net(kind, bands, wave)
    expected = uvr_stems(tmp_path, net, kind, bands_name, wav, primary=primary, aggression=aggression, tta=tta,
                         high_end=high_end)
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
    _check(tmp_path, 31191, "4band_v2", primary=primary, aggression=aggression, tta=tta)
