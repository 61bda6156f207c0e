"""Mix runs (`mix:`): mixtures made from stem sets by the real pipeline (FnApiRunner), checked against an
independent rebuild from the recorded plan: the stem files cut at the recorded offset, times the recorded
gain, low-passed by the recorded cutoff and Q (EBEN's filt-filt biquad, scipy here), scaled by the recorded
gain; the rows against librosa's STFT of the written files."""

import json
import warnings
from pathlib import Path

import librosa
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from scipy import signal
from stemforge_testing import SR, music, read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.config.run import ConfigError, build_config
from stemforge.training.config import DataConfig
from stemforge.training.data import inspect_data

N_FFT, HOP = 512, 256
CHAIN = [{"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 3000.0, "q": 0.7071, "jitter": [0.8, 1.2], "p": 1.0},
         {"transform": "Gain", "min_gain_db": -6.0, "max_gain_db": 6.0, "p": 1.0}]


def _voice(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    tone = np.sin(2 * np.pi * rng.uniform(150, 300) * t * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)))
    return (0.4 * np.stack([tone, 0.8 * tone])).astype(np.float32)


def _stemset(folder: Path, lengths: dict[str, float]) -> Path:
    """A {track}/{stem}.wav folder of float WAV stems (music as instruments, a gliding tone as vocals)."""
    for number, (key, seconds) in enumerate(lengths.items()):
        (folder / key).mkdir(parents=True)
        n = int(SR * seconds)
        sf.write(folder / key / "instruments.wav", (0.5 * music(n, seed=number)).T, SR, subtype="FLOAT")
        sf.write(folder / key / "vocals.wav", _voice(n, number).T, SR, subtype="FLOAT")
    return folder


def _run(tmp_path: Path, stems: Path, name: str = "out", **sections) -> Path:
    mix = {"stems": ["instruments", "vocals"]}
    mix.update(sections.pop("mix", {}))
    config = write_config(tmp_path / f"{name}.yaml", mix=mix, **sections)
    out = tmp_path / name
    assert main(["run", "--config", str(config), "--input", str(stems), "--output", str(out),
                 "--direct_num_workers", "1", "--quiet"]) == 0
    return out


def _manifest(out: Path) -> dict:
    [path] = (out / "runs").glob("*.json")
    return read_manifest(path)


def _rows(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(out / s) for s in _manifest(out)["shards"]])


def _stft_magnitude(wave: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.abs(librosa.stft(wave, n_fft=N_FFT, hop_length=HOP, window="hann", center=True,
                                   pad_mode="constant"))


def _lowpass(x: np.ndarray, cutoff: float, q: float, pad: int = 10000) -> np.ndarray:
    """EBEN's remove_hf: reflection padding, an RBJ biquad low-pass forward, then backward, from rest."""
    w0 = 2 * np.pi * cutoff / SR
    alpha = np.sin(w0) / (2 * q)
    b = np.array([(1 - np.cos(w0)) / 2, 1 - np.cos(w0), (1 - np.cos(w0)) / 2])
    a = np.array([1 + alpha, -2 * np.cos(w0), 1 - alpha])
    pad = min(pad, x.shape[-1] - 1)
    y = np.pad(x.astype(np.float64), ((0, 0), (pad, pad)), mode="reflect")
    y = signal.lfilter(b, a, signal.lfilter(b, a, y, axis=-1)[:, ::-1], axis=-1)[:, ::-1]
    return y[:, pad:-pad] if pad else y


def _rebuild(draw: dict, length: int, params: list[dict]) -> np.ndarray:
    """One target, rebuilt from its recorded draw and the recorded augmentation."""
    if draw["dropped"]:
        return np.zeros((2, length))
    total = np.zeros((2, length))
    for source in draw["sources"]:
        audio = sf.read(source, dtype="float64", always_2d=True)[0].T
        start = round(draw["offset"] * max(audio.shape[1] - length, 0))
        part = audio[:, start:start + length]
        total[:, :part.shape[1]] += part
    total *= 10 ** (draw["gain_db"] / 20)
    low, gain = params
    if low["applied"]:
        total = _lowpass(total, low["cutoff_hz"], low["q"])
    if gain["applied"]:
        total *= 10 ** (gain["gain_db"] / 20)
    return total


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("mix")
    stems = _stemset(work / "stems", {"a": 2.0, "b": 3.0, "c": 1.5})
    out = _run(work, stems, augment={"variants": 2, "seed": 11, "chain": CHAIN},
               mix={"gain_db": [-6.0, 6.0], "remix_p": 1.0})
    return stems, out


def test_mixtures_rebuild_from_their_recorded_plan(mixed):
    stems, out = mixed
    manifest = _manifest(out)
    assert manifest["counts"]["succeeded"] == 3 and manifest["counts"]["variants"] == 6
    table = _rows(out)
    seen = {}
    for row in table.select(["track_key", "variant", "mix_params", "augment_params", "dropped"]).to_pylist():
        seen[(row["track_key"], row["variant"])] = row
    assert len(seen) == 6
    for (key, variant), row in seen.items():
        plan, params = json.loads(row["mix_params"]), json.loads(row["augment_params"])
        assert [d["target"] for d in plan] == ["instruments", "vocals"] and row["dropped"] == ""
        own, other = plan
        assert own["track"] == key and own["offset"] == 0.0  # the first target anchors the variant
        assert other["track"] != key and 0.0 <= other["offset"] < 1.0  # remix_p 1: always another track
        assert all(-6.0 <= d["gain_db"] <= 6.0 for d in plan)
        folder = out / "stems" / key / f"v{variant}"
        files = {name: sf.read(folder / f"{name}.wav", dtype="float64")[0].T
                 for name in ("mixture", "instruments", "vocals")}
        length = sf.info(stems / key / "instruments.wav").frames
        assert files["mixture"].shape == (2, length)
        np.testing.assert_allclose(files["mixture"], files["instruments"] + files["vocals"], atol=1e-6)
        for draw in plan:
            np.testing.assert_allclose(files[draw["target"]], _rebuild(draw, length, params), atol=2e-5)
    # the variants of one track are different mixtures
    assert seen[("a", 0)]["mix_params"] != seen[("a", 1)]["mix_params"]


def test_rows_hold_the_magnitudes_of_the_written_stems(mixed):
    _, out = mixed
    table = _rows(out).filter(pa.compute.equal(pa.compute.field("track_key"), "b"))
    rows = sorted(table.to_pylist(), key=lambda r: (r["variant"], r["segment"]))
    assert [c for c in table.schema.names if c in ("mixture", "instruments", "vocals", "teacher_vocals")] == [
        "mixture", "instruments", "vocals"]
    for name in ("mixture", "instruments", "vocals"):
        wave = sf.read(out / "stems" / "b" / "v1" / f"{name}.wav", dtype="float32")[0].T
        expected = _stft_magnitude(wave)
        got = np.concatenate([np.asarray(r[name])[..., : r["num_frames"]] for r in rows if r["variant"] == 1], -1)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_mix_run_is_training_data(mixed):
    _, out = mixed
    data = inspect_data(DataConfig(roots=(str(out),), val_rate=0.0))
    assert data.stems == ("instruments", "vocals") and data.target == "instruments"
    assert data.n_fft == N_FFT and set(data.train_keys) == {"a", "b", "c"}


def test_a_rerun_skips_committed_tracks(mixed, tmp_path):
    stems, out = mixed
    config = write_config(tmp_path / "again.yaml", augment={"variants": 2, "seed": 11, "chain": CHAIN},
                          mix={"stems": ["instruments", "vocals"], "gain_db": [-6.0, 6.0], "remix_p": 1.0})
    assert main(["run", "--config", str(config), "--input", str(stems), "--output", str(out),
                 "--direct_num_workers", "1", "--quiet"]) == 0
    newest = max((read_manifest(p) for p in (out / "runs").glob("*.json")), key=lambda m: m["finished_at"])
    assert newest["counts"]["skipped"] == 3 and newest["counts"]["variants"] == 0


def test_dropped_targets_are_silent_and_never_all(tmp_path):
    stems = _stemset(tmp_path / "stems", {"a": 1.0, "b": 1.0})
    out = _run(tmp_path, stems, augment={"variants": 4, "seed": 3}, mix={"drop_p": 0.9})
    table = _rows(out)
    dropped = {(r["track_key"], r["variant"]): r["dropped"] for r in table.to_pylist()}
    assert any(dropped.values()) and all(d in ("", "instruments", "vocals") for d in dropped.values())
    for (key, variant), name in dropped.items():
        if not name:
            continue
        folder = out / "stems" / key / f"v{variant}"
        silent = sf.read(folder / f"{name}.wav")[0]
        kept = "vocals" if name == "instruments" else "instruments"
        assert not np.any(silent) and np.any(sf.read(folder / f"{kept}.wav")[0])
        np.testing.assert_array_equal(sf.read(folder / "mixture.wav")[0], sf.read(folder / f"{kept}.wav")[0])
        rows = [r for r in table.to_pylist() if (r["track_key"], r["variant"]) == (key, variant)]
        assert all(not np.any(np.asarray(r[name])) for r in rows)


def test_bad_stems_are_dead_lettered_and_the_rest_commits(tmp_path):
    stems = _stemset(tmp_path / "stems", {"good": 1.0, "long": 1.0, "rate": 1.0, "lonely": 1.0})
    sf.write(stems / "long" / "vocals.wav", _voice(int(SR * 1.5), 0).T, SR, subtype="FLOAT")  # 0.5 s longer
    sf.write(stems / "rate" / "vocals.wav", _voice(22050, 0).T, 22050, subtype="FLOAT")  # resampled, kept
    (stems / "lonely" / "vocals.wav").unlink()
    manifest_path = tmp_path / "set.csv"
    manifest_path.write_text("track,instruments,vocals\n"
                             f"gone,{stems}/good/instruments.wav,{stems}/nowhere/vocals.wav\n"
                             "empty,stems/good/instruments.wav,\n")
    config = write_config(tmp_path / "c.yaml", mix={"stems": ["instruments", "vocals"]})
    out = tmp_path / "out"
    assert main(["run", "--config", str(config), "--set", f"input.uri=[{stems}, {manifest_path}]",
                 "--output", str(out), "--direct_num_workers", "1", "--quiet"]) == 0
    manifest = _manifest(out)
    assert manifest["tracks"] == ["good", "rate"]
    errors = {json.loads(line)["track_key"]: json.loads(line)
              for line in (out / "errors" / f"{manifest['run_id']}.jsonl").read_text().splitlines()}
    assert set(errors) == {"long", "lonely", "gone", "empty"}
    assert "stems differ in length (instruments.wav 1.000 s, vocals.wav 1.500 s)" in errors["long"]["message"]
    assert "no vocals stem file" in errors["lonely"]["message"] and "lonely" in errors["lonely"]["source"]
    assert "nowhere/vocals.wav" in errors["gone"]["message"] and errors["gone"]["stage"] == "read"
    assert "row 2 has no path for stem vocals" in errors["empty"]["message"]
    rate = sf.read(out / "stems" / "rate" / "v0" / "vocals.wav")[0]
    assert rate.shape == (SR, 2) and np.abs(rate).max() > 0.1


def test_a_checkpoint_adds_teacher_columns(tmp_path, tiny_checkpoint):
    stems = _stemset(tmp_path / "stems", {"a": 1.5})
    out = _run(tmp_path, stems, model={"checkpoint": str(tiny_checkpoint)}, output={"write_stems": False})
    table = _rows(out)
    names = [c for c in table.schema.names if c in ("mixture", "instruments", "vocals", "teacher_instruments",
                                                    "teacher_vocals")]
    assert names == ["mixture", "instruments", "vocals", "teacher_instruments", "teacher_vocals"]
    for row in table.to_pylist():
        mixture = np.asarray(row["mixture"])
        teacher = np.asarray(row["teacher_instruments"]) + np.asarray(row["teacher_vocals"])
        np.testing.assert_allclose(teacher, mixture, rtol=1e-5, atol=1e-6)
        assert not np.allclose(np.asarray(row["teacher_vocals"]), np.asarray(row["vocals"]), atol=1e-3)


def test_streamed_long_tracks_equal_one_block(tmp_path):
    stems = _stemset(tmp_path / "stems", {"a": 3.0, "b": 2.5})
    args = {"augment": {"variants": 1, "seed": 2, "chain": CHAIN}, "mix": {"remix_p": 1.0, "gain_db": [-3, 3]}}
    streamed = _rows(_run(tmp_path, stems, "streamed", run={"chunk_seconds": 0.6}, **json.loads(json.dumps(args))))
    whole = _rows(_run(tmp_path, stems, "whole", run={"chunk_seconds": 60.0}, **json.loads(json.dumps(args))))
    key = ["track_key", "variant", "segment"]
    streamed, whole = streamed.sort_by([(k, "ascending") for k in key]), whole.sort_by([(k, "ascending") for k in key])
    for name in ("mixture", "instruments", "vocals"):
        np.testing.assert_allclose(np.asarray(streamed.column(name).to_pylist()),
                                   np.asarray(whole.column(name).to_pylist()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("section", "message"), [
    ({"augment": {"chain": [{"transform": "PolarityInversion", "p": 1.0}]}, "mix": {"stems": ["a", "b"]}},
     "augment.chain: PolarityInversion is not applied to mixed stems"),
    ({"mix": {"stems": ["mixture", "b"]}}, "mix.stems: 'mixture' is a reserved column name"),
    ({"mix": {"stems": {"vocals": []}}}, "mix.stems: every target must list at least one stem-set stem"),
    ({"mix": {"stems": ["a"], "gain_db": [3, -3]}}, "mix.gain_db: gain_db is [low, high]"),
])
def test_mix_config_errors_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_config(section)


def test_report_and_inspect_show_a_mix_run(mixed, capsys):
    _, out = mixed
    assert main(["report", str(out), "--samples", "1"]) == 0
    html = (out / "report.html").read_text()
    assert "Stem files (mixture, instruments, vocals)" in html
    assert "Spectrograms of a, variant 0: mixture, instruments, vocals" in html
    assert main(["inspect", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    [run] = [r for r in report["runs"] if r["shards"]]  # the rerun test adds a run with no shards
    columns = [c["name"] for c in run["shards"][0]["schema"]]
    assert {"mix_params", "dropped", "mixture", "instruments", "vocals"} <= set(columns)
