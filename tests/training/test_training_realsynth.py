"""Stem sets from recorded sources: a tiny catalogue of voices and music made in the test (Debian's packages
are not needed), split by speaker and by package, reproducible, with every source file and licence recorded;
and the voice effects against what they are defined to do."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemforge.training.realsynth import make_real_stemset
from stemforge.training.sources import DEBIAN, Catalogue
from stemforge.training.synth import SR, SynthError
from stemforge.training.voice_fx import augment_voice, compress, reverb
from stemforge.transforms.stemsets import read_stemset

LICENCES = {"klettres-data": "GPL-2+", "fillets-ng-data": "GPL-2+", "wesnoth-1.16-music": "CC-BY-SA-4.0",
            "hedgewars-data": "CC0-1.0"}


def _syllable(path: Path, pitch: float, rate: int, seconds: float = 0.4) -> None:
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 6)) * np.hanning(t.size) * 0.3
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate, format="OGG", subtype="VORBIS")


def _catalogue(root: Path) -> Catalogue:
    """Two klettres speakers (de trains, fr is held out), fillets lines, one music package per side."""
    for language, pitch in (("de", 140.0), ("fr", 220.0)):
        for n in range(3):
            _syllable(root / "klettres" / language / "alpha" / f"{n}.ogg", pitch + 10 * n, 22050)
    _syllable(root / "fillets" / "level" / "en" / "line.ogg", 180.0, 22050, seconds=1.0)
    _syllable(root / "fillets" / "level" / "cs" / "line.ogg", 180.0, 22050, seconds=1.0)  # not English: unused
    rng = np.random.default_rng(0)
    for package, side in (("wesnoth-1.16-music", "train"), ("hedgewars-data", "heldout")):
        folder = root / package
        folder.mkdir()
        sf.write(folder / "song.ogg", 0.2 * rng.standard_normal((3 * SR, 2)), SR, format="OGG", subtype="VORBIS")
    for package, name in LICENCES.items():
        (root / "doc" / package).mkdir(parents=True)
        (root / "doc" / package / "copyright").write_text(f"Files: *\nCopyright: someone\nLicense: {name}\n")
    music = {"train": {"wesnoth-1.16-music": (str(root / "wesnoth-1.16-music"),)},
             "heldout": {"hedgewars-data": (str(root / "hedgewars-data"),)}}
    return Catalogue(klettres=root / "klettres", fillets=root / "fillets", music_folders=music, doc=root / "doc")


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "stemset.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_train_side_is_reproducible_and_names_its_sources_and_licences(tmp_path):
    catalogue = _catalogue(tmp_path / "src")
    kinds = {"klettres": 0.5, "fillets": 0.5}
    seen = []
    make_real_stemset(tmp_path / "a", 6, 3, "train", 2.0, (-5.0, 5.0), lambda *done: seen.append(done),
                      catalogue, kinds)
    make_real_stemset(tmp_path / "b", 6, 3, "train", 2.0, (-5.0, 5.0), None, catalogue, kinds)
    assert seen == [(n, 6) for n in range(1, 7)]
    assert (tmp_path / "a" / "stemset.csv").read_bytes() == (tmp_path / "b" / "stemset.csv").read_bytes()
    rows = _rows(tmp_path / "a")
    tracks = read_stemset(str(tmp_path / "a" / "stemset.csv"))  # the source columns are not taken for stems
    assert [t.key for t in tracks] == [f"r3-{n:04d}" for n in range(6)]
    assert all(set(t.stems) == {"instruments", "vocals"} for t in tracks)
    used_packages = set()
    for row, track in zip(rows, tracks):
        voice_files = json.loads(row["voice_files"])
        assert voice_files and all("/fr/" not in f and "/cs/" not in f for f in voice_files)  # fr is held out
        assert row["voice"] in ("klettres/de", "fillets-ng/en")
        assert json.loads(row["music_file"]) in ([], [str(tmp_path / "src" / "wesnoth-1.16-music" / "song.ogg")])
        used_packages |= set(row["packages"].split("; "))
        vocals, _ = sf.read(track.stems["vocals"], dtype="float64")
        music, _ = sf.read(track.stems["instruments"], dtype="float64")
        assert 10 * np.log10(np.sum(vocals**2) / np.sum(music**2)) == pytest.approx(float(row["ratio_db"]), abs=0.01)
        again, _ = sf.read(tmp_path / "b" / track.key / "vocals.wav", dtype="float64")
        assert np.array_equal(again, vocals)
    assert [float(r["ratio_db"]) for r in rows] == [-5.0, 5.0] * 3
    recorded = json.loads((tmp_path / "a" / "sources.json").read_text())
    assert set(recorded["packages"]) == used_packages - {""}
    for package, entry in recorded["packages"].items():
        assert entry["licences"] == [LICENCES[package]]
        assert entry["copyright_file"] == str(tmp_path / "src" / "doc" / package / "copyright")


def test_the_held_out_side_uses_only_other_speakers_and_other_music_unaugmented(tmp_path):
    catalogue = _catalogue(tmp_path / "src")
    rows = make_real_stemset(tmp_path / "h", 3, 8, "heldout", 2.0, catalogue=catalogue)
    for row in rows:
        assert row["voice"] == "klettres/fr" and row["augment"] == ""
        assert all("/klettres/fr/" in f for f in json.loads(row["voice_files"]))
        assert json.loads(row["music_file"]) == [str(tmp_path / "src" / "hedgewars-data" / "song.ogg")]
        assert row["packages"] == "hedgewars-data; klettres-data"


def test_missing_packages_are_named_before_anything_is_written(tmp_path):
    catalogue = _catalogue(tmp_path / "src")
    shutil.rmtree(tmp_path / "src" / "hedgewars-data")
    with pytest.raises(SynthError, match=r"^the heldout sources need packages that are not installed: "
                                         r"hedgewars-data \(Debian: apt-get install hedgewars-data\)$"):
        make_real_stemset(tmp_path / "h", 1, 1, "heldout", 2.0, catalogue=catalogue)
    with pytest.raises(SynthError, match=r"^--tracks must be at least 1, got 0$"):
        make_real_stemset(tmp_path / "h", 0, 1, "train", 2.0, catalogue=catalogue)
    assert not (tmp_path / "h").exists()


def test_compression_lowers_only_what_is_above_the_threshold():
    quiet = 0.1 * np.sin(2 * np.pi * 200 * np.arange(SR) / SR)
    wave = np.concatenate([quiet, 10 * quiet]).astype(np.float32)
    out = compress(wave, SR, threshold_db=-10.0, ratio=4.0)

    def level(x: np.ndarray, at: int) -> float:
        return 20 * np.log10(np.sqrt(np.mean(x[at + SR // 4: at + 3 * SR // 4] ** 2)))

    # the loud half sits 3 dB below the peak (a sine's RMS), 7 dB over the threshold: 3/4 of that removed
    assert level(out, SR) - level(out, 0) == pytest.approx(20.0 - 7.0 * 0.75, abs=0.3)
    assert np.abs(out).max() == pytest.approx(1.0, abs=1e-4)  # the input's peak is kept


def test_reverb_decays_sixty_db_in_its_rt60_and_augmentation_follows_the_seed():
    click = np.zeros(SR, np.float32)
    click[0] = 1.0
    tail = reverb(click, SR, rt60=0.4, wet=1.0, rng=np.random.default_rng(2))
    early, late = (10 * np.log10(np.mean(tail[a: a + SR // 50] ** 2)) for a in (SR // 50, SR // 50 + int(0.2 * SR)))
    assert early - late == pytest.approx(30.0, abs=4.0)  # half the RT60: 30 dB
    voice = np.sin(2 * np.pi * 150 * np.arange(SR) / SR).astype(np.float32) * 0.3
    first, applied = augment_voice(voice, SR, np.random.default_rng(11))
    second, again = augment_voice(voice, SR, np.random.default_rng(11))
    assert applied == again and np.array_equal(first, second) and np.isfinite(first).all()


@pytest.mark.skipif(DEBIAN.missing_packages("heldout") != [], reason="klettres-data/hedgewars-data/"
                    "warzone2100-music (Debian) not installed")
def test_the_command_on_the_installed_packages(tmp_path, capsys):
    from stemforge.pipeline.cli import main

    assert main(["synth-real", str(tmp_path / "s"), "--tracks", "2", "--seed", "1", "--split", "heldout",
                 "--seconds", "3"]) == 0
    captured = capsys.readouterr()
    assert "synth-real: 2 tracks in" in captured.out and "synth-real: 2/2 tracks" in captured.err
    licences = json.loads((tmp_path / "s" / "sources.json").read_text())["packages"]
    assert "klettres-data" in licences and all(entry["licences"] for entry in licences.values())
