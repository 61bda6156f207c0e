"""Metrics against hand computations, stem sets in both layouts, and `stemforge evaluate` against an independent
computation of the same scores."""

import csv
import io
import shutil

import numpy as np
import pytest
import soundfile as sf
from stemforge_testing import SR, TINY, music

from stemforge.model import Separator, load_checkpoint
from stemforge.pipeline.cli import main
from stemforge.training.evaluate import evaluate, to_csv
from stemforge.training.metrics import sdr, si_sdr
from stemforge.transforms.stemsets import read_stemset


def test_si_sdr_and_sdr_of_a_hand_computed_case():
    reference = np.array([1.0, 0.0, -1.0, 0.0])  # zero mean
    noise = np.array([0.0, 0.5, 0.0, -0.5])  # orthogonal to it, zero mean
    estimate = 2 * reference + noise
    # SI-SDR: alpha = <e, s>/<s, s> = 4/2 = 2; target energy 4·2 = 8; residual energy 0.5 → 10·log10(16)
    assert si_sdr(reference, estimate) == pytest.approx(10 * np.log10(16.0), abs=1e-9)
    # SDR: Σs² = 2, Σ(s − ŝ)² = Σ(−s − n)² = 2 + 0.5 → 10·log10(0.8)
    assert sdr(reference, estimate) == pytest.approx(10 * np.log10(0.8), abs=1e-9)
    assert si_sdr(reference, 0.1 * estimate) == pytest.approx(si_sdr(reference, estimate), abs=1e-9)
    assert sdr(reference, 0.1 * estimate) != pytest.approx(sdr(reference, estimate))
    with pytest.raises(ValueError, match="differ in shape"):
        si_sdr(reference, estimate[:3])


def _voice(n: int, seed: int) -> np.ndarray:
    """A gliding harmonic tone with syllable-like bursts: not music, but voice-shaped."""
    t = np.arange(n) / SR
    pitch = 180 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) > 0.3)
    return np.stack([0.3 * tone, 0.28 * tone]).astype(np.float32)


@pytest.fixture(scope="module")
def stemset(tmp_path_factory):
    root = tmp_path_factory.mktemp("stemset")
    for index in range(2):
        folder = root / "tracks" / f"song{index}"
        folder.mkdir(parents=True)
        n = int(SR * (2.0 + index))
        sf.write(folder / "instruments.wav", 0.5 * music(n, seed=index).T, SR, subtype="FLOAT")
        sf.write(folder / "vocals.wav", _voice(n, index).T, SR, subtype="FLOAT")
    bad = root / "tracks" / "uneven"
    bad.mkdir()
    sf.write(bad / "instruments.wav", 0.5 * music(SR, seed=5).T, SR, subtype="FLOAT")
    sf.write(bad / "vocals.wav", _voice(SR // 2, 5).T, SR, subtype="FLOAT")
    manifest = root / "set.csv"
    manifest.write_text("track,instruments,vocals\n" + "".join(
        f"song{i},tracks/song{i}/instruments.wav,tracks/song{i}/vocals.wav\n" for i in range(2)))
    return root


def test_both_layouts_name_the_same_tracks_and_files(stemset):
    folder = read_stemset(str(stemset / "tracks"))
    listed = read_stemset(str(stemset / "set.csv"))
    assert [t.key for t in folder] == ["song0", "song1", "uneven"]
    assert [(t.key, t.stems) for t in listed] == [(t.key, t.stems) for t in folder[:2]]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_stemset(str(stemset / "nowhere"))
    (stemset / "holes.csv").write_text("track,instruments,vocals\nx,a.wav,\n")
    with pytest.raises(ValueError, match="row 1 has no path for stem vocals"):
        read_stemset(str(stemset / "holes.csv"), stems=("instruments", "vocals"))


def _independent_si_sdr(s: np.ndarray, e: np.ndarray) -> float:
    s = s.astype(np.float64).ravel() - s.mean()
    e = e.astype(np.float64).ravel() - e.mean()
    target = (e @ s) / (s @ s) * s
    return 10 * np.log10((target @ target) / ((e - target) @ (e - target)))


def test_evaluate_scores_each_stem_as_an_independent_computation_does(stemset, tiny_checkpoint):
    rows = evaluate(str(tiny_checkpoint), str(stemset / "tracks"), n_fft=TINY["n_fft"], hop_length=TINY["hop_length"],
                    device="cpu")
    assert [(r["track"], r["stem"]) for r in rows] == [("song0", "instruments"), ("song0", "vocals"),
                                                       ("song1", "instruments"), ("song1", "vocals"),
                                                       ("uneven", None)]
    assert "stems differ in length" in rows[-1]["error"]
    separator = Separator(load_checkpoint(str(tiny_checkpoint), n_fft=TINY["n_fft"], device="cpu"),
                          cropsize=TINY["cropsize"])
    for index in range(2):
        stems = {name: sf.read(stemset / "tracks" / f"song{index}" / f"{name}.wav", dtype="float32")[0].T
                 for name in ("instruments", "vocals")}
        mixture = stems["instruments"] + stems["vocals"]
        estimates = dict(zip(("instruments", "vocals"), separator.separate_audio(mixture, TINY["hop_length"])))
        for row in rows[2 * index: 2 * index + 2]:
            reference = stems[row["stem"]]
            assert row["si_sdr_mixture"] == pytest.approx(_independent_si_sdr(reference, mixture), abs=1e-6)
            assert row["si_sdr"] == pytest.approx(_independent_si_sdr(reference, estimates[row["stem"]]), abs=1e-4)
            assert row["si_sdr_improvement"] == pytest.approx(row["si_sdr"] - row["si_sdr_mixture"], abs=1e-9)
            assert row["seconds"] == pytest.approx(2.0 + index)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert float(parsed[1]["si_sdr"]) == pytest.approx(rows[1]["si_sdr"], abs=1e-4) and parsed[4]["error"]


def test_the_command_prints_a_table_writes_a_csv_and_refuses_bad_input(stemset, tiny_checkpoint, tmp_path, capsys):
    output = tmp_path / "scores.csv"
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(stemset / "set.csv"),
            "--n-fft", str(TINY["n_fft"]), "--hop-length", str(TINY["hop_length"]), "--device", "cpu"]
    assert main([*args, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "SI-SDRi" in printed and "mean of 2" in printed
    assert len(list(csv.DictReader(output.open()))) == 4
    other = tmp_path / "other"
    shutil.copytree(stemset / "tracks" / "song0", other / "song0")
    for stem in ("instruments", "vocals"):
        (other / "song0" / f"{stem}.wav").rename(other / "song0" / f"{'drums' if stem == 'vocals' else 'bass'}.wav")
    assert main([*args[:3], "--data", str(other), *args[5:]]) == 2
    assert "match none of the stem set's (bass, drums)" in capsys.readouterr().err
    assert main([*args[:3], "--data", str(tmp_path / "missing"), *args[5:]]) == 2
    assert "missing" in capsys.readouterr().err


def test_a_silent_or_solo_stem_is_an_error_row_left_out_of_the_means(stemset, tiny_checkpoint, tmp_path, capsys):
    data = tmp_path / "tracks"
    shutil.copytree(stemset / "tracks" / "song0", data / "song0")
    (data / "solo").mkdir()  # only a vocals stem: the mixture is the vocals themselves
    shutil.copy(stemset / "tracks" / "song1" / "vocals.wav", data / "solo" / "vocals.wav")
    shutil.copytree(stemset / "tracks" / "song1", data / "mute")
    sf.write(data / "mute" / "vocals.wav", np.zeros((3 * SR, 2), np.float32), SR, subtype="FLOAT")
    rows = evaluate(str(tiny_checkpoint), str(data), n_fft=TINY["n_fft"], hop_length=TINY["hop_length"], device="cpu")
    errors = {(r["track"], r["stem"]): r["error"] for r in rows if r["error"]}
    alone = "the mixture is {} alone (no other stem, or only silent ones): there is nothing to separate"
    assert errors == {  # with silent vocals, the instruments are the whole mixture
        ("mute", "instruments"): alone.format("instruments"),
        ("mute", "vocals"): "vocals is silent (RMS below -100 dBFS): there is nothing to measure a separation against",
        ("solo", "vocals"): alone.format("vocals")}
    assert all(r["si_sdr"] is None for r in rows if r["error"])
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--n-fft", str(TINY["n_fft"]),
                 "--hop-length", str(TINY["hop_length"]), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    song0 = {r["stem"]: r for r in rows if r["track"] == "song0"}
    for stem in ("instruments", "vocals"):  # each mean covers song0 alone
        assert f"{'mean of 1 track':<28} {stem:<14} " + " ".join(
            f"{song0[stem][k]:8.2f}" for k in ("sdr", "si_sdr", "si_sdr_mixture", "si_sdr_improvement")) in lines
    assert lines[-1] == "left out of the means (see their errors): instruments of mute; vocals of mute, solo"
