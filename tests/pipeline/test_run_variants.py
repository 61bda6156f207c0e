"""Augmented variants, determinism across Beam's multi-processing runner, reruns and increments."""

import json
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from stemforge_testing import TINY, read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.transforms import AugmentChain, derive_seed

CHAIN = [
    {"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 3000.0, "q": 0.7071, "jitter": [0.8, 1.2], "p": 1.0},
    {"transform": "Gain", "min_gain_db": -6.0, "max_gain_db": -1.0, "p": 1.0},
]
AUGMENT = {"variants": 2, "seed": 11, "keep_clean": True, "chain": CHAIN}


def _run(config: Path, source: Path, out: Path, ckpt: Path, *extra: str) -> dict:
    assert main(["run", "--config", str(config), "--input", str(source), "--output", str(out),
                 "--checkpoint", str(ckpt), *extra]) == 0
    return read_manifest(max((out / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime_ns))


def _rows(out: Path, manifest: dict) -> list[dict]:
    rows = [r for shard in manifest["shards"] for r in pq.read_table(out / shard).to_pylist()]
    return sorted(rows, key=lambda r: (r["track_key"], r["variant"], r["segment"]))


def _magnitude(rows: list[dict], column: str) -> np.ndarray:
    bins = TINY["n_fft"] // 2 + 1
    return np.concatenate([np.asarray(r[column]).reshape(2, bins, -1)[..., : r["num_frames"]] for r in rows], -1)


def _stft(wave: np.ndarray) -> np.ndarray:
    return np.stack([librosa.stft(c, n_fft=TINY["n_fft"], hop_length=TINY["hop_length"]) for c in wave])


@pytest.fixture(scope="module")
def augmented(corpus, tiny_checkpoint, tmp_path_factory):
    _, files = corpus
    out = tmp_path_factory.mktemp("aug")
    config = write_config(out.parent / "aug.yaml", augment=AUGMENT)
    return config, out, _run(config, files["sines"], out, tiny_checkpoint, "--direct_num_workers", "1")


def test_variants_record_distinct_drawn_parameters(augmented):
    _, out, manifest = augmented
    rows = _rows(out, manifest)
    by_variant = {v: [r for r in rows if r["variant"] == v] for v in (0, 1)}
    firsts = [by_variant[v][0] for v in (0, 1)]
    assert firsts[0]["lowpass_cutoff_hz"] != firsts[1]["lowpass_cutoff_hz"]
    for variant, first in enumerate(firsts):
        assert 2400 <= first["lowpass_cutoff_hz"] <= 3600 and 0.8 * 0.7071 <= first["lowpass_q"] <= 1.2 * 0.7071
        assert -6.0 <= first["gain_db"] <= -1.0
        assert first["seed"] == derive_seed(11, "sines", variant)
        params = json.loads(first["augment_params"])
        assert [p["transform"] for p in params] == ["ZeroPhaseBiquadLowPass", "Gain"]
        assert params[0]["cutoff_hz"] == pytest.approx(first["lowpass_cutoff_hz"], rel=1e-6)
        assert {r["lowpass_cutoff_hz"] for r in by_variant[variant]} == {first["lowpass_cutoff_hz"]}
    assert manifest["counts"]["variants"] == 2 and manifest["tracks"] == ["sines"]
    assert (out / "stems" / "sines" / "v1" / "vocals.wav").is_file()


def test_mixture_is_the_augmented_waveform_and_clean_the_input(augmented, corpus):
    _, out, manifest = augmented
    _, files = corpus
    wave, sr = sf.read(files["sines"], dtype="float32", always_2d=True)
    wave = wave.T
    rows = _rows(out, manifest)
    clean = _stft(wave)
    for variant in (0, 1):
        plan = AugmentChain.from_config(CHAIN).draw(11, "sines", variant, sr, 2)
        mixture = _stft(plan.apply(wave))
        got = [r for r in rows if r["variant"] == variant]
        scale = np.abs(clean).max()
        np.testing.assert_allclose(_magnitude(got, "mixture"), np.abs(mixture), atol=1e-5 * scale)
        np.testing.assert_allclose(_magnitude(got, "clean"), np.abs(clean), atol=1e-5 * scale)
        assert np.abs(_magnitude(got, "mixture") - np.abs(clean)).max() > 1e-3 * scale


def test_multi_processing_runner_gives_the_same_rows(augmented, corpus, tiny_checkpoint, tmp_path):
    config, out, manifest = augmented
    _, files = corpus
    other = _run(config, files["sines"], tmp_path / "mp", tiny_checkpoint,
                 "--direct_num_workers", "2", "--direct_running_mode", "multi_processing")
    expected, got = _rows(out, manifest), _rows(tmp_path / "mp", other)
    assert len(got) == len(expected)
    model_columns = {"instruments", "vocals"}
    for a, b in zip(expected, got):
        assert a.keys() == b.keys()
        for key in a.keys() - model_columns:
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
        # Model outputs may differ in the last bit: CPU kernels pick algorithms by batch size and threads.
        for key in model_columns:
            np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-5, atol=1e-7)
    stem = Path("stems/sines/v1/instruments.wav")
    np.testing.assert_allclose(sf.read(out / stem)[0], sf.read(tmp_path / "mp" / stem)[0], atol=1e-6)


def test_rerun_skips_committed_tracks_and_increments_process_only_new_ones(corpus, tiny_checkpoint, tmp_path):
    _, files = corpus
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    shutil.copy(files["sines"], inputs / "a.wav")
    config = write_config(tmp_path / "c.yaml")
    first = _run(config, inputs, out, tiny_checkpoint)
    stem = out / "stems" / "a" / "v0" / "vocals.wav"
    before = stem.read_bytes()
    second = _run(config, inputs, out, tiny_checkpoint, "--set", "run.run_id=again")
    assert second["counts"]["skipped"] == 1 and second["counts"]["rows"] == 0 and second["shards"] == []
    assert stem.read_bytes() == before
    shutil.copy(files["chirp22k"], inputs / "b.wav")
    third = _run(config, inputs, out, tiny_checkpoint, "--set", "run.run_id=more")
    assert third["tracks"] == ["b"] and third["counts"]["skipped"] == 1
    changed = _run(config, inputs, out, tiny_checkpoint, "--set", "run.run_id=tta", "--set", "model.tta=true")
    assert changed["tracks"] == ["a", "b"] and changed["fingerprint"] != first["fingerprint"]


def test_manifest_input_dead_letters_a_missing_file(corpus, tiny_checkpoint, tmp_path):
    _folder, files = corpus
    manifest = tmp_path / "list.csv"
    manifest.write_text(f"path\n{files['sines']}\n{tmp_path / 'gone.wav'}\n")
    result = _run(write_config(tmp_path / "c.yaml"), manifest, tmp_path / "out", tiny_checkpoint)
    assert result["tracks"] == [str(files["sines"].with_suffix(""))[1:]]
    error = json.loads((tmp_path / "out" / "errors" / f"{result['run_id']}.jsonl").read_text())
    assert error["error"] == "not_found" and error["stage"] == "read" and "gone.wav" in error["message"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speech_from_espeak_is_separated(tiny_checkpoint, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    subprocess.run(["espeak-ng", "-w", str(inputs / "speech.wav"), "the quick brown fox"], check=True)
    result = _run(write_config(tmp_path / "c.yaml"), inputs, tmp_path / "out", tiny_checkpoint)
    assert result["tracks"] == ["speech"]
    source = sf.info(inputs / "speech.wav")
    stem = sf.info(tmp_path / "out" / "stems" / "speech" / "v0" / "vocals.wav")
    assert stem.samplerate == 44100 and abs(stem.frames - source.frames * 44100 / source.samplerate) <= 1


def _fatal(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_fatal_problems_exit_non_zero_with_one_line(corpus, tiny_checkpoint, tmp_path, capsys):
    folder, _ = corpus
    config = str(write_config(tmp_path / "c.yaml"))
    base = ["run", "--config", config, "--output", str(tmp_path / "out")]
    assert "model.checkpoint: required" in _fatal(base + ["--input", str(folder)], capsys)
    err = _fatal(base + ["--input", str(tmp_path / "nothing*.wav"), "--checkpoint", str(tiny_checkpoint)], capsys)
    assert "no input matched" in err
    err = _fatal(base + ["--input", str(folder), "--checkpoint", str(tmp_path / "missing.pth")], capsys)
    assert "missing.pth" in err
    err = _fatal(base + ["--input", str(folder), "--checkpoint", str(tiny_checkpoint), "--set", "model.n_fft=1024"],
                 capsys)
    assert "n_fft" in err


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_checkpoint_is_refused_and_never_runs(corpus, tmp_path, capsys):
    import torch

    folder, _ = corpus
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"weight": _Payload(marker)}, evil)
    assert not marker.exists()
    err = _fatal(["run", "--config", str(write_config(tmp_path / "c.yaml")), "--input", str(folder),
                  "--output", str(tmp_path / "out"), "--checkpoint", str(evil)], capsys)
    assert "evil.pth" in err
    assert not marker.exists()
    assert not (tmp_path / "out" / "runs").exists()


def test_inputs_mapping_to_one_key_get_distinct_keys(tiny_checkpoint, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    tone = 0.1 * np.sin(np.linspace(0, 300, 13230))
    sf.write(inputs / "a.wav", tone, 44100)
    sf.write(inputs / "a.flac", tone, 44100)
    result = _run(write_config(tmp_path / "c.yaml"), inputs, tmp_path / "out", tiny_checkpoint)
    assert len(result["tracks"]) == 2 and result["tracks"][0] == "a"
    assert result["tracks"][1].startswith("a~")
    for key in result["tracks"]:
        assert (tmp_path / "out" / "stems" / key / "v0" / "vocals.wav").is_file()
