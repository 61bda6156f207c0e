"""`stemforge separate`: demucs-style stems in one command, the same pipeline as `run` (its options are config
keys), clear errors for what it cannot do."""

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from stemforge_testing import TINY, read_manifest

from stemforge.model.shipped import VOICE_MUSIC
from stemforge.pipeline.cli import main

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"model.{key}={value}")]
STEMS = ("instruments", "vocals")


def _manifest(out: Path) -> dict:
    [path] = (out / "runs").glob("*.json")
    return read_manifest(path)


@pytest.fixture(scope="module")
def separated(corpus, tiny_checkpoint, tmp_path_factory):
    folder, files = corpus
    out = tmp_path_factory.mktemp("sep")
    code = main(["separate", str(files["sines"]), str(folder / "sub"), str(folder / "broken.wav"), "-o", str(out),
                 "--checkpoint", str(tiny_checkpoint), "--quiet", *TINY_SETS])
    return code, out


def test_files_and_folders_become_out_track_stem_files(separated, capsys):
    code, out = separated
    assert code == 0
    manifest = _manifest(out)
    assert manifest["tracks"] == ["noise", "sines"] and manifest["counts"]["failed"] == 1
    for key in manifest["tracks"]:
        assert sorted(p.name for p in (out / key).iterdir()) == [f"{stem}.flac" for stem in STEMS]
    assert manifest["shards"] == [] and not (out / "spectrograms").exists()  # stems only by default
    assert not (out / "stems").exists()


def test_it_says_where_the_stems_are_and_why_an_input_was_rejected(corpus, tiny_checkpoint, tmp_path, capsys):
    folder, files = corpus
    code = main(["separate", str(files["sines"]), str(folder / "broken.wav"), "-o", str(tmp_path / "o"),
                 "--checkpoint", str(tiny_checkpoint), "--quiet", *TINY_SETS])
    captured = capsys.readouterr()
    assert code == 0
    assert "1 track separated into" in captured.out and "sines: sines/instruments.flac, sines/vocals.flac" in captured.out
    [rejected] = [line for line in captured.err.splitlines() if "rejected:" in line]
    assert "broken.wav" in rejected


def test_its_stems_are_those_of_run_with_the_same_config_keys(separated, corpus, tiny_checkpoint, tmp_path):
    _, out = separated
    _, files = corpus
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    run_out = tmp_path / "run"
    assert main(["run", "--config", str(config), "--input", str(files["sines"]), "--output", str(run_out),
                 "--checkpoint", str(tiny_checkpoint), "--quiet", *TINY_SETS]) == 0
    for stem in STEMS:
        ours, rate = sf.read(out / "sines" / f"{stem}.flac")
        theirs, _ = sf.read(run_out / "stems" / "sines" / "v0" / f"{stem}.flac")
        assert rate == 44100 and np.array_equal(ours, theirs)


def test_format_subtype_filename_and_shards_are_config_keys(corpus, tiny_checkpoint, tmp_path):
    _, files = corpus
    out = tmp_path / "o"
    assert main(["separate", str(files["sines"]), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--quiet",
                 "--format", "wav", "--subtype", "FLOAT", "--filename", "{stem}/{track_key}.{ext}", "--shards",
                 *TINY_SETS]) == 0
    manifest = _manifest(out)
    output = manifest["config"]["output"]
    assert (output["stem_format"], output["stem_subtype"], output["stem_path"], output["write_spectrograms"]) == (
        "wav", "FLOAT", "{stem}/{track_key}.{ext}", True)
    for stem in STEMS:
        assert sf.info(str(out / stem / "sines.wav")).subtype == "FLOAT"
    [shard] = manifest["shards"]
    assert pq.read_table(out / shard).num_rows == manifest["counts"]["rows"] > 0


def test_flac_compression_changes_the_bytes_not_the_samples(separated, corpus, tiny_checkpoint, tmp_path):
    _, out = separated
    _, files = corpus
    fast = tmp_path / "fast"
    assert main(["separate", str(files["sines"]), "-o", str(fast), "--checkpoint", str(tiny_checkpoint), "--quiet",
                 "--set", "output.flac_compression=0", *TINY_SETS]) == 0
    for stem in STEMS:
        default, level0 = out / "sines" / f"{stem}.flac", fast / "sines" / f"{stem}.flac"
        np.testing.assert_array_equal(sf.read(level0)[0], sf.read(default)[0])
        assert level0.stat().st_size > default.stat().st_size


def test_model_by_name_from_the_model_folder(corpus, tiny_checkpoint, tmp_path, capsys):
    _, files = corpus
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / "mine.pth")
    out = tmp_path / "o"
    assert main(["separate", str(files["sines"]), "-o", str(out), "--model", "mine.pth", "--model-dir", str(models),
                 "--quiet", *TINY_SETS]) == 0
    assert _manifest(out)["checkpoint"]["uri"] == str(models / "mine.pth")
    capsys.readouterr()
    assert main(["separate", str(files["sines"]), "-o", str(out), "--model", "other.pth", "--model-dir",
                 str(models)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "other.pth" in err and "mine.pth" in err


@pytest.mark.parametrize(("extra", "expected"), [
    (["--checkpoint", "a.pth", "--model", "b.pth"], "not both"),
    (["--checkpoint", "a.pth", "--bogus"], "unrecognised arguments: --bogus"),
    (["--checkpoint", "a.pth", "--set", "augment.variants=2"], "must contain {variant}"),
    (["--checkpoint", "a.pth", "--filename", "{stem}.{ext}"], "must contain {track_key} and {stem}"),
])
def test_what_it_cannot_run_is_one_line_and_exit_code_2(corpus, tmp_path, capsys, extra, expected):
    _, files = corpus
    assert main(["separate", str(files["sines"]), "-o", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and expected in err, err


def test_without_a_model_it_runs_the_shipped_one(corpus, tmp_path, capsys):
    _, files = corpus
    out = tmp_path / "o"
    assert main(["separate", str(files["sines"]), "-o", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"using the shipped {VOICE_MUSIC.name} model" in captured.err
    [manifest] = [read_manifest(p) for p in (out / "runs").glob("*.json")]
    assert manifest["checkpoint"]["sha256"] == VOICE_MUSIC.sha256 and not manifest["random_init"]
    assert manifest["config"]["model"]["n_fft"] == VOICE_MUSIC.n_fft
    assert sorted(p.name for p in (out / "sines").iterdir()) == ["instruments.flac", "vocals.flac"]


def test_the_shipped_model_given_as_a_checkpoint_runs_at_its_own_geometry(corpus, tmp_path, capsys):
    """Recognised by its sha256: the same stems as without --checkpoint; a geometry set explicitly is refused,
    naming the shipped model's own."""
    _, files = corpus
    outs = {name: tmp_path / name for name in ("default", "checkpoint")}
    assert main(["separate", str(files["sines"]), "-o", str(outs["default"]), "--quiet"]) == 0
    assert main(["separate", str(files["sines"]), "-o", str(outs["checkpoint"]), "--quiet",
                 "--checkpoint", str(VOICE_MUSIC.path)]) == 0
    model = _manifest(outs["checkpoint"])["config"]["model"]
    assert (model["n_fft"], model["hop_length"]) == (VOICE_MUSIC.n_fft, VOICE_MUSIC.hop_length)
    for stem in STEMS:
        assert np.array_equal(sf.read(outs["checkpoint"] / "sines" / f"{stem}.flac")[0],
                              sf.read(outs["default"] / "sines" / f"{stem}.flac")[0])
    capsys.readouterr()
    assert main(["separate", str(files["sines"]), "-o", str(tmp_path / "o"), "--quiet",
                 "--checkpoint", str(VOICE_MUSIC.path), "--set", "model.n_fft=2048"]) == 2
    assert capsys.readouterr().err == (
        f"stemforge: model.n_fft: {VOICE_MUSIC.path} is stemforge's shipped {VOICE_MUSIC.name} model, single-band "
        f"at n_fft {VOICE_MUSIC.n_fft} and hop {VOICE_MUSIC.hop_length}, not n_fft 2048: set "
        f"model.n_fft={VOICE_MUSIC.n_fft} and model.hop_length={VOICE_MUSIC.hop_length} (evaluate: --n-fft "
        f"{VOICE_MUSIC.n_fft} --hop-length {VOICE_MUSIC.hop_length})\n")


def test_an_input_that_does_not_exist_is_fatal(tiny_checkpoint, tmp_path, capsys):
    missing = tmp_path / "nothing-here.wav"
    assert main(["separate", str(missing), "-o", str(tmp_path / "o"), "--checkpoint", str(tiny_checkpoint),
                 "--quiet", *TINY_SETS]) == 2
    assert f"no input matched {missing}" in capsys.readouterr().err
