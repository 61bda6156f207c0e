"""End to end on Beam's DirectRunner: layout, schema, values against independent references."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import soxr
import torch
from apache_beam.options.pipeline_options import PipelineOptions
from stemforge_testing import TINY, read_manifest, upstream_stems, write_config

from stemforge.model import load_checkpoint
from stemforge.pipeline.cli import main
from stemforge.shards import tensor_to_numpy

STEMS = ("instruments", "vocals")


def _run(config: Path, corpus: Path, out: Path, ckpt: Path, *extra: str) -> dict:
    code = main(["run", "--config", str(config), "--input", str(corpus), "--output", str(out),
                 "--checkpoint", str(ckpt), *extra])
    assert code == 0
    manifests = sorted((out / "runs").glob("*.json"))
    return read_manifest(manifests[-1])


def _rows(out: Path, manifest: dict):
    tables = [pq.read_table(out / shard) for shard in manifest["shards"]]
    return tables


def _reference_stems(ckpt: Path, wave: np.ndarray, tta: bool = False):
    """vocal-remover's procedure, whole track (librosa STFT and ISTFT), with its last n_fft samples taken
    from the well-conditioned reference (the same with n_fft zeros appended, trimmed back)."""
    net = load_checkpoint(str(ckpt), n_fft=TINY["n_fft"], device="cpu")
    n_fft, hop = TINY["n_fft"], TINY["hop_length"]
    spec, *upstream = upstream_stems(net, wave, n_fft, hop, TINY["cropsize"], tta)
    _, *conditioned = upstream_stems(net, wave, n_fft, hop, TINY["cropsize"], tta, pad_end=n_fft)
    return spec, [np.concatenate([u[:, :-n_fft], c[:, -n_fft:]], axis=1) for u, c in zip(upstream, conditioned)]


@pytest.fixture(scope="module")
def separated(corpus, tiny_checkpoint, tmp_path_factory):
    folder, _ = corpus
    out = tmp_path_factory.mktemp("out")
    config = write_config(out.parent / "sep.yaml")
    return out, _run(config, folder, out, tiny_checkpoint, "--direct_num_workers", "1")


def test_layout_and_manifest(separated, corpus):
    out, manifest = separated
    assert manifest["status"] == "committed"
    assert manifest["tracks"] == ["chirp22k", "sines", "sub/noise"]
    assert manifest["counts"]["inputs"] == 4 and manifest["counts"]["failed"] == 1
    assert manifest["counts"]["succeeded"] == 3
    for key in manifest["tracks"]:
        for stem in STEMS:
            assert (out / "stems" / key / "v0" / f"{stem}.wav").is_file()
    assert set(manifest) >= {"run_id", "started_at", "finished_at", "status", "config", "checkpoint", "versions",
                             "counts", "tracks", "shards"}
    assert set(manifest["versions"]) == {"python", "torch", "apache-beam", "pyarrow", "stemforge"}
    assert len(manifest["checkpoint"]["sha256"]) == 64
    assert not (out / "_tmp").exists() or not any((out / "_tmp").iterdir())
    timing = manifest["timing"]  # one entry per committed track variant, with the worker's seconds
    assert [(t["track_key"], t["variant"]) for t in timing] == [(k, 0) for k in manifest["tracks"]]
    assert sum(t["audio_seconds"] for t in timing) == pytest.approx(manifest["counts"]["audio_seconds"], abs=0.01)
    assert all(t["prepare_seconds"] > 0 and t["assemble_seconds"] > 0 for t in timing)


def test_bad_file_is_dead_lettered_with_reason(separated, corpus):
    out, manifest = separated
    lines = (out / "errors" / f"{manifest['run_id']}.jsonl").read_text().splitlines()
    assert len(lines) == 1
    error = json.loads(lines[0])
    assert error["track_key"] == "broken" and error["stage"] == "read"
    assert error["source"].endswith("broken.wav") and "broken.wav" in error["message"]
    assert error["error"] == "unreadable"


def test_stem_lengths_follow_the_resampled_input(separated, corpus):
    out, _ = separated
    _, files = corpus
    info = sf.info(out / "stems" / "chirp22k" / "v0" / "vocals.wav")
    source = sf.info(files["chirp22k"])
    assert info.samplerate == 44100
    assert info.frames == len(soxr.resample(np.zeros(source.frames), 22050, 44100, quality="HQ"))


def test_schema_and_metadata(separated):
    out, manifest = separated
    table = _rows(out, manifest)[0]
    assert table.column_names == ["track_key", "source", "variant", "segment", "start_frame", "num_frames",
                                  "sample_rate", "n_fft", "hop_length", "seed", "lowpass_cutoff_hz", "lowpass_q",
                                  "gain_db", "augment_params", "stem_gain", "mixture", "instruments", "vocals"]
    tensor_type = table.schema.field("mixture").type  # plain nested fixed-size lists: every reader keeps the shape
    assert tensor_type == pa.list_(pa.list_(pa.list_(pa.float32(), 100), 257), 2)
    metadata = table.schema.metadata
    assert json.loads(metadata[b"stemforge.config"])["model"]["n_fft"] == 512
    assert metadata[b"stemforge.checkpoint_sha256"].decode() == manifest["checkpoint"]["sha256"]
    row_group = pq.ParquetFile(out / manifest["shards"][0]).metadata.row_group(0)
    encodings = {row_group.column(i).path_in_schema.split(".")[0]: row_group.column(i).encodings
                 for i in range(row_group.num_columns)}
    assert "RLE_DICTIONARY" in encodings["track_key"]  # constant per track: dictionary-encoded strings
    assert "RLE_DICTIONARY" not in encodings["mixture"]  # spectrograms: plain (dictionaries only cost)


def test_rows_equal_librosa_and_the_separator(separated, corpus, tiny_checkpoint):
    out, manifest = separated
    _, files = corpus
    wave, _sr = sf.read(files["sines"], dtype="float32", always_2d=True)
    spec, (first, second) = _reference_stems(tiny_checkpoint, wave.T)
    rows = [r for t in _rows(out, manifest) for r in t.to_pylist() if r["track_key"] == "sines"]
    rows.sort(key=lambda r: r["segment"])
    frames = spec.shape[-1]
    assert [r["start_frame"] for r in rows] == list(range(0, frames, 100))
    assert sum(r["num_frames"] for r in rows) == frames
    mixture = np.concatenate([np.asarray(r["mixture"]).reshape(2, 257, 100)[..., : r["num_frames"]] for r in rows], -1)
    np.testing.assert_allclose(mixture, np.abs(spec), rtol=1e-5, atol=1e-5 * np.abs(spec).max())
    for r in rows:
        parts = [np.asarray(r[name]).reshape(2, 257, 100) for name in ("mixture", *STEMS)]
        np.testing.assert_allclose(parts[1] + parts[2], parts[0], atol=1e-5)
        assert not parts[0][..., r["num_frames"]:].any()
    for stem, expected in zip(STEMS, (first, second)):
        got, _ = sf.read(out / "stems" / "sines" / "v0" / f"{stem}.wav", dtype="float32", always_2d=True)
        np.testing.assert_allclose(got.T, expected, atol=2e-5)


def test_long_input_in_many_chunks_equals_whole_track(corpus, tiny_checkpoint, tmp_path):
    _, files = corpus
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", run={"chunk_seconds": 0.55}, model={"tta": True},
                          output={"spectrogram_dtype": "float16"})
    manifest = _run(config, files["sines"], out, tiny_checkpoint)
    wave, _ = sf.read(files["sines"], dtype="float32", always_2d=True)
    spec, (first, second) = _reference_stems(tiny_checkpoint, wave.T, tta=True)
    for stem, expected in zip(STEMS, (first, second)):
        got, _ = sf.read(out / "stems" / "sines" / "v0" / f"{stem}.wav", dtype="float32", always_2d=True)
        np.testing.assert_allclose(got.T, expected, atol=2e-5)
    assert manifest["tracks"] == ["sines"]
    table = _rows(out, manifest)[0].sort_by("segment")
    tensors = tensor_to_numpy(table.column("mixture"))
    assert tensors.dtype == np.float16
    mixture = np.concatenate([t[..., :n] for t, n in zip(tensors, table.column("num_frames").to_pylist())], -1)
    np.testing.assert_array_equal(mixture, np.abs(spec).astype(np.float16))  # numpy's rounding as the reference


def test_short_clips_share_batches_and_metrics_count_the_run(tiny_checkpoint, tmp_path):
    from stemforge.config.run import load_config
    from stemforge.pipeline.graph import run
    from stemforge.pipeline.launch import make_job

    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for n in range(6):
        sf.write(folder / f"clip{n}.wav", 0.1 * rng.standard_normal((22050, 2)), 44100, subtype="FLOAT")
    (folder / "bad.wav").write_bytes(b"nope")
    config = load_config(write_config(tmp_path / "c.yaml"),
                         [f"input.uri={folder}", f"output.uri={tmp_path / 'out'}", f"model.checkpoint={tiny_checkpoint}"])
    manifest, metrics = run(make_job(config), PipelineOptions(["--runner", "FnApiRunner", "--direct_num_workers", "1"]))
    assert metrics["inputs"] == 7 and metrics["rejected"] == 1
    assert metrics["windows"] == 6 and metrics["rows"] == manifest["counts"]["rows"] == 6
    assert metrics["audio_milliseconds"] == 6 * 500
    # one window per clip, batch_size 3: every batch of three holds windows of three different tracks
    assert metrics["batch_size"] == {"count": 2, "sum": 6, "min": 3, "max": 3}


def test_cpu_threads_sets_the_worker_thread_pool(corpus, tiny_checkpoint, tmp_path):
    _, files = corpus
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    try:
        manifest = _run(write_config(tmp_path / "c.yaml", model={"cpu_threads": wanted}), files["sines"],
                        tmp_path / "out", tiny_checkpoint)  # the in-process runner: the worker is this process
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
    assert manifest["tracks"] == ["sines"] and manifest["config"]["model"]["cpu_threads"] == wanted
