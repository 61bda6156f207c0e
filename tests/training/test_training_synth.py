"""The synthetic voice-over-music stem sets: reproducible from their seed, at the drawn voice-to-music ratio,
readable as a stem set."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from stemforge.training.synth import make_stemset, make_track
from stemforge.transforms.stemsets import read_stemset

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian) not installed")


def test_a_seed_makes_the_same_files_at_the_drawn_ratio(tmp_path):
    first = make_stemset(tmp_path / "a", tracks=2, seed=5, seconds=3.0, ratios_db=(-5.0, 5.0))
    make_stemset(tmp_path / "b", tracks=2, seed=5, seconds=3.0, ratios_db=(-5.0, 5.0))
    other = make_stemset(tmp_path / "c", tracks=1, seed=6, seconds=3.0)
    assert [t.key for t in first] == ["s5-0000", "s5-0001"] and other[0].key == "s6-0000"
    tracks = read_stemset(str(tmp_path / "a" / "stemset.csv"))
    assert [t.key for t in tracks] == ["s5-0000", "s5-0001"] and set(tracks[0].stems) == {"instruments", "vocals"}
    for made, track in zip(first, tracks):
        vocals, rate = sf.read(track.stems["vocals"], dtype="float32")
        music, _ = sf.read(track.stems["instruments"], dtype="float32")
        assert rate == 44100 and vocals.shape == music.shape == (3 * 44100, 2)
        ratio = 10 * np.log10(np.sum(vocals.astype(np.float64) ** 2) / np.sum(music.astype(np.float64) ** 2))
        assert ratio == pytest.approx(made.ratio_db, abs=0.01)
        assert np.abs(vocals + music).max() == pytest.approx(0.9, abs=1e-4)  # the mixture never clips
        again, _ = sf.read(tmp_path / "b" / made.key / "vocals.wav", dtype="float32")
        assert np.array_equal(again, vocals)


def test_recorded_music_replaces_the_synthesised_music(tmp_path):
    music = (0.3 * np.random.default_rng(0).standard_normal((2, 2 * 44100))).astype(np.float32)
    made = make_track(tmp_path, "rec", 2.0, 0.0, np.random.default_rng(1), music=music)
    instruments, _ = sf.read(tmp_path / "rec" / "instruments.wav", dtype="float32")
    scale = np.abs(instruments).max() / np.abs(music).max()
    np.testing.assert_allclose(instruments.T, music * scale, rtol=1e-5, atol=1e-7)
    assert made.tempo == 0.0


def test_the_synth_command(tmp_path, capsys):
    from stemforge.pipeline.cli import main

    assert main(["synth", str(tmp_path / "s"), "--tracks", "1", "--seed", "4", "--seconds", "2",
                 "--ratios-db=-3"]) == 0
    assert "synth: 1 track in" in capsys.readouterr().out
    [track] = read_stemset(str(tmp_path / "s" / "stemset.csv"))
    assert track.key == "s4-0000" and sf.info(track.stems["vocals"]).frames == 2 * 44100
    assert main(["synth", str(tmp_path / "t"), "--tracks", "1", "--seed", "4", "--ratios-db", "loud"]) == 2
    assert "synth: could not convert string to float: 'loud'" in capsys.readouterr().err
    for bad, said in ((["--tracks", "0"], "--tracks must be at least 1, got 0"),
                      (["--tracks", "-3"], "--tracks must be at least 1, got -3"),
                      (["--tracks", "1", "--seconds", "0"], "--seconds must be at least 0.5, got 0"),
                      (["--tracks", "1", "--seconds", "nan"], "--seconds must be at least 0.5, got nan")):
        assert main(["synth", str(tmp_path / "u"), "--seed", "4", *bad]) == 2
        assert capsys.readouterr().err == f"stemforge: synth: {said}\n"
        assert not (tmp_path / "u").exists()
