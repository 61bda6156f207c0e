"""UVR models through `stemforge run`: stems equal UVR's procedure (audio-separator), rows are UVR's combined
spectrogram, long tracks stream, and what cannot run is refused naming the key to set."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from stemforge_testing import SR, music, read_manifest, snr_db, write_config
from uvr_reference import uvr_mixture_spectrogram, uvr_stems, uvr_test_net

from stemforge.model import save_checkpoint
from stemforge.pipeline.cli import main
from stemforge.shards import tensor_to_numpy
from stemforge.transforms import load_band_params

STEMS = ("instruments", "vocals")


def _run(tmp_path: Path, wav: Path, ckpt: Path, **model) -> tuple[Path, dict]:
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", model=dict({"cropsize": 512, "batch_size": 2}, **model),
                          run={"chunk_seconds": 1.0})
    assert main(["run", "--config", str(config), "--input", str(wav), "--output", str(out),
                 "--checkpoint", str(ckpt)]) == 0
    return out, read_manifest(next((out / "runs").glob("*.json")))


@pytest.mark.parametrize(("kind", "table", "aggression", "high_end"),
                         [(31191, "4band_v2", 5, "none"), ("32", "4band_v3", 10, "mirroring")])
def test_stems_and_rows_equal_uvrs_procedure(tmp_path, kind, table, aggression, high_end):
    bands = load_band_params(table)
    wave = music(int(3.3 * SR) + 77, seed=5)
    wav = tmp_path / "mix.wav"
    sf.write(wav, wave.T, SR, subtype="FLOAT")
    net = uvr_test_net(kind, bands, wave)
    ckpt = tmp_path / "unknown-uvr.pth"
    save_checkpoint(net, str(ckpt))
    out, manifest = _run(tmp_path, wav, ckpt, band_params=table, aggression=aggression, high_end=high_end)
    assert manifest["tracks"] == ["mix"] and manifest["config"]["model"]["n_fft"] == bands.n_fft

    expected = uvr_stems(tmp_path, net, kind, table, wav, aggression=aggression, high_end=high_end == "mirroring")
    for stem, reference in zip(STEMS, expected):
        got, rate = sf.read(out / "stems" / "mix" / "v0" / f"{stem}.wav", dtype="float32", always_2d=True)
        assert rate == SR and got.shape == (wave.shape[1], 2)  # every input sample, at 44.1 kHz
        n = reference.shape[1]
        assert snr_db(got.T[:, :n], reference) >= 60

    table_rows = pq.read_table([str(out / s) for s in manifest["shards"]]).sort_by("segment")
    metadata = table_rows.schema.metadata
    assert json.loads(metadata[b"stemforge.band_params"])["name"] == table
    mixture = tensor_to_numpy(table_rows.column("mixture"))
    frames = [m[..., :k] for m, k in zip(mixture, table_rows.column("num_frames").to_pylist())]
    got = np.concatenate(frames, axis=-1)
    reference = np.abs(uvr_mixture_spectrogram(table, wav, is_v51=not isinstance(kind, int)))
    assert got.shape == reference.shape == (2, bands.bins + 1, reference.shape[-1])
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-3 * reference.max())  # float16 rows


def _refused(tmp_path: Path, capsys, **model) -> str:
    """A one-second run of an ASPP checkpoint UVR does not know, expected to stop before it starts: the error."""
    wave = music(SR, seed=1)
    wav = tmp_path / "mix.wav"
    sf.write(wav, wave.T, SR, subtype="FLOAT")
    ckpt = tmp_path / "mystery.pth"
    save_checkpoint(uvr_test_net(31191, load_band_params("4band_v2"), wave), str(ckpt))
    config = write_config(tmp_path / "c.yaml", model=dict({"cropsize": 512}, **model))
    code = main(["run", "--config", str(config), "--input", str(wav), "--output", str(tmp_path / "out"),
                 "--checkpoint", str(ckpt)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    return err


def test_an_unknown_multi_band_checkpoint_needs_model_band_params(tmp_path, capsys):
    err = _refused(tmp_path, capsys)
    assert err.startswith("stemforge: model.band_params: ") and "mystery.pth" in err and "CascadedASPPNet" in err


def test_the_device_path_refuses_a_band_table_naming_the_key(tmp_path, capsys):
    err = _refused(tmp_path, capsys, band_params="4band_v2", spectra="device")
    assert err.startswith("stemforge: model.spectra: ") and "band table" in err


def test_kept_clean_rows_are_the_clean_tracks_combined_spectrogram_and_a_rerun_skips(tmp_path):
    bands = load_band_params("4band_v2")
    wave = music(int(1.5 * SR), seed=6, peak=0.4)
    wav = tmp_path / "mix.wav"
    sf.write(wav, wave.T, SR, subtype="FLOAT")
    ckpt = tmp_path / "unknown-uvr.pth"
    save_checkpoint(uvr_test_net(31191, bands, wave), str(ckpt))
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", model={"cropsize": 512, "band_params": "4band_v2"},
                          augment={"keep_clean": True,
                                   "chain": [{"transform": "Gain", "min_gain_db": 6.0, "max_gain_db": 6.0, "p": 1.0}]})
    assert main(["run", "--config", str(config), "--input", str(wav), "--output", str(out),
                 "--checkpoint", str(ckpt)]) == 0
    manifest = read_manifest(next((out / "runs").glob("*.json")))
    rows = pq.read_table([str(out / s) for s in manifest["shards"]]).sort_by("segment")

    def column(name: str) -> np.ndarray:
        tensors = tensor_to_numpy(rows.column(name)).astype(np.float32)
        return np.concatenate([t[..., :k] for t, k in zip(tensors, rows.column("num_frames").to_pylist())], -1)

    reference = np.abs(uvr_mixture_spectrogram("4band_v2", wav, is_v51=False))
    np.testing.assert_allclose(column("clean"), reference, rtol=0, atol=1e-3 * reference.max())
    np.testing.assert_allclose(column("mixture"), 10 ** (6 / 20) * reference, rtol=0, atol=2e-3 * reference.max())

    # a rerun with the same resolved config (same fingerprint) skips what the first committed
    assert main(["run", "--config", str(config), "--input", str(wav), "--output", str(out),
                 "--checkpoint", str(ckpt)]) == 0
    runs = [read_manifest(p) for p in sorted((out / "runs").glob("*.json"))]
    assert len(runs) == 2 and {r["fingerprint"] for r in runs} == {manifest["fingerprint"]}
    assert sorted(r["counts"]["skipped"] for r in runs) == [0, 1]
