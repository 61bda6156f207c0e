"""The shipped voice/music model: the file is the one recorded (sha256, size), it loads safely into the network
its settings name, and it really separates: on voice-over-music mixtures synthesised here from a seed that
neither its training nor its held-out set used, the vocals' SI-SDR improves by several dB."""

import hashlib
import shutil

import pytest

from stemforge.model import BandParamsRequired, CascadedNet, load_checkpoint, resolve_model
from stemforge.model.shipped import VOICE_MUSIC
from stemforge.training.evaluate import evaluate
from stemforge.training.synth import make_stemset


def test_the_file_is_the_recorded_one():
    data = VOICE_MUSIC.path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == VOICE_MUSIC.sha256
    assert len(data) <= 20 * 1024 * 1024


def test_it_loads_into_the_network_its_settings_name():
    net = load_checkpoint(str(VOICE_MUSIC.path), n_fft=VOICE_MUSIC.n_fft, device="cpu", sha256=VOICE_MUSIC.sha256)
    expected = CascadedNet(VOICE_MUSIC.n_fft, nout=16, nout_lstm=64).state_dict()
    assert isinstance(net, CascadedNet)
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in expected.items()}


def test_at_another_n_fft_it_is_recognised_and_its_own_geometry_named():
    """`evaluate` without --n-fft/--hop-length, or a run at the default n_fft, is told the settings it needs."""
    with pytest.raises(BandParamsRequired) as caught:
        resolve_model(str(VOICE_MUSIC.path), n_fft=2048, device="cpu")
    assert str(caught.value) == (
        f"{VOICE_MUSIC.path} is stemforge's shipped {VOICE_MUSIC.name} model, single-band at n_fft 1024 and hop "
        "512, not n_fft 2048: set model.n_fft=1024 and model.hop_length=512 (evaluate: --n-fft 1024 "
        "--hop-length 512)")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_it_separates_a_voice_from_music(tmp_path):
    make_stemset(tmp_path, tracks=3, seed=777001, seconds=6.0, ratios_db=(-5.0, 0.0, 5.0))
    rows = evaluate(str(VOICE_MUSIC.path), str(tmp_path / "stemset.csv"), n_fft=VOICE_MUSIC.n_fft,
                    hop_length=VOICE_MUSIC.hop_length, device="cpu")
    vocals = [r for r in rows if r["stem"] == "vocals"]
    assert len(vocals) == 3 and not any(r["error"] for r in vocals)
    mean = sum(r["si_sdr_improvement"] for r in vocals) / 3
    assert mean > 5.0, vocals
