"""`model.spectra: device` end to end: the STFT, peak, windows, masking, ISTFT and row magnitudes in torch on
the model's device (the CPU here, the same code a GPU runs), against vocal-remover's procedure with librosa
computed here, and against the host path's run of the same corpus."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from stemforge_testing import TINY, read_manifest, snr_db, upstream_stems, write_config

from stemforge.model import load_checkpoint
from stemforge.pipeline.cli import main
from stemforge.config.run import build_config
from stemforge.pipeline.engine.single_band import spectral_ops
from stemforge.pipeline.engine.layout import table_layout
from stemforge.shards import tensor_to_numpy
from stemforge.transforms import load_band_params
from stemforge.transforms.spectral_ops import DeviceSpectralOps, HostSpectralOps

STEMS = ("instruments", "vocals")
N_FFT, HOP = TINY["n_fft"], TINY["hop_length"]


def _run(tmp_path: Path, corpus: Path, ckpt: Path, spectra: str) -> tuple[Path, dict]:
    out = tmp_path / spectra
    config = write_config(tmp_path / f"{spectra}.yaml", model={"spectra": spectra, "tta": True},
                          run={"chunk_seconds": 0.55})
    assert main(["run", "--config", str(config), "--input", str(corpus), "--output", str(out),
                 "--checkpoint", str(ckpt)]) == 0
    return out, read_manifest(next((out / "runs").glob("*.json")))


@pytest.fixture(scope="module")
def runs(corpus, tiny_checkpoint, tmp_path_factory):
    folder, _ = corpus
    tmp = tmp_path_factory.mktemp("device-spectra")
    return {spectra: _run(tmp, folder, tiny_checkpoint, spectra) for spectra in ("host", "device")}


def _stem(out: Path, key: str, stem: str) -> np.ndarray:
    return sf.read(out / "stems" / key / "v0" / f"{stem}.wav", dtype="float32", always_2d=True)[0].T


def test_stems_and_rows_equal_vocal_removers_procedure(runs, corpus, tiny_checkpoint):
    out, manifest = runs["device"]
    assert manifest["status"] == "committed" and manifest["tracks"] == ["chirp22k", "sines", "sub/noise"]
    _, files = corpus
    wave = sf.read(files["sines"], dtype="float32", always_2d=True)[0].T
    net = load_checkpoint(str(tiny_checkpoint), n_fft=N_FFT, device="cpu")
    spec, *_ = upstream_stems(net, wave, N_FFT, HOP, TINY["cropsize"], tta=True)
    _, *conditioned = upstream_stems(net, wave, N_FFT, HOP, TINY["cropsize"], tta=True, pad_end=N_FFT)
    for stem, expected in zip(STEMS, conditioned):
        got = _stem(out, "sines", stem)
        assert got.shape == wave.shape
        assert snr_db(got, expected) >= 80

    table = pq.read_table([str(out / s) for s in manifest["shards"]])
    table = table.filter(np.array(table.column("track_key").to_pylist()) == "sines").sort_by("segment")
    widths = table.column("num_frames").to_pylist()
    columns = {name: np.concatenate([t[..., :n] for t, n in zip(tensor_to_numpy(table.column(name)), widths)], -1)
               for name in ("mixture", *STEMS)}
    magnitude = np.abs(spec)
    np.testing.assert_allclose(columns["mixture"], magnitude, rtol=0, atol=1e-5 * magnitude.max())
    np.testing.assert_allclose(columns[STEMS[0]] + columns[STEMS[1]], columns["mixture"], atol=1e-5)


def test_the_device_path_agrees_with_the_host_path(runs):
    (host, host_manifest), (device, device_manifest) = runs["host"], runs["device"]
    assert host_manifest["tracks"] == device_manifest["tracks"]
    for key in device_manifest["tracks"]:
        for stem in STEMS:
            assert snr_db(_stem(device, key, stem), _stem(host, key, stem)) >= 80
    tables = [pq.read_table([str(out / s) for s in m["shards"]]).sort_by([("track_key", "ascending"),
                                                                           ("segment", "ascending")])
              for out, m in ((host, host_manifest), (device, device_manifest))]
    assert tables[0].num_rows == tables[1].num_rows
    for name in ("mixture", *STEMS):
        a, b = (tensor_to_numpy(t.column(name)) for t in tables)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max())


def test_auto_keeps_the_exact_host_path_on_a_cpu_and_band_tables_always_run_on_the_host(tmp_path):
    config = build_config({"model": {"device": "cpu"}})
    assert type(spectral_ops(config.model)) is HostSpectralOps
    device = build_config({"model": {"device": "cpu", "spectra": "device"}}).model
    ops = spectral_ops(device)
    assert isinstance(ops, DeviceSpectralOps) and ops.device.type == "cpu"
    spec = np.ones((2, 3, 4), np.complex64)
    single = table_layout(None, True, device).open({}, 0, str(tmp_path), 1, 1)
    multi = table_layout(load_band_params("4band_v2"), True, device).open({}, 0, str(tmp_path), 1, 1)
    assert isinstance(single.window(spec, 1.0), torch.Tensor)
    assert type(multi.window(spec, 1.0)) is np.ndarray
