"""Stem values end to end: well-conditioned track ends, and output.clip (rescale, clamp, none)."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from stemforge_testing import (SR, TINY, music, read_manifest, scale_output_layer, snr_db, tiny_net, upstream_stems,
                               write_config)

from stemforge.model import save_checkpoint
from stemforge.pipeline.cli import main

N_FFT, HOP = TINY["n_fft"], TINY["hop_length"]
STEMS = ("instruments", "vocals")


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    """A tiny checkpoint whose masks spread over (0, 1), and the net itself for the references."""
    net = scale_output_layer(tiny_net(5), 40.0).eval()
    path = tmp_path_factory.mktemp("spread") / "spread.pth"
    save_checkpoint(net, str(path))
    return net, path


@pytest.fixture(scope="module")
def panning(tmp_path_factory) -> Path:
    """A tiny checkpoint whose mask is near 1 on the left channel and near 0 on the right (positive
    activations into a large positive or negative output layer): each stem carries one channel at
    close to the input's level, so a 1.3 peak in the input is a peak above full scale in both stems."""
    net = tiny_net(5).eval()
    with torch.no_grad():
        net.out.weight.copy_(net.out.weight.abs() * 50)
        net.out.weight[1].neg_()
    path = tmp_path_factory.mktemp("panning") / "panning.pth"
    save_checkpoint(net, str(path))
    return path


def _run(tmp_path: Path, wave: np.ndarray, ckpt: Path, **output) -> tuple[Path, dict]:
    source = tmp_path / "in" / "track.wav"
    source.parent.mkdir(exist_ok=True)
    sf.write(source, wave.T, SR, subtype="FLOAT")
    out = tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}"
    config = write_config(tmp_path / "c.yaml", output=output)
    assert main(["run", "--config", str(config), "--input", str(source), "--output", str(out),
                 "--checkpoint", str(ckpt)]) == 0
    return out, read_manifest(next((out / "runs").glob("*.json")))


def _stems(out: Path, ext: str) -> list[np.ndarray]:
    return [sf.read(out / "stems" / "track" / "v0" / f"{stem}.{ext}", dtype="float32", always_2d=True)[0].T
            for stem in STEMS]


@pytest.mark.parametrize("extra", [0, HOP - 1])
def test_stem_ends_are_well_conditioned(spread, tmp_path, extra):
    net, ckpt = spread
    wave = music(350 * HOP + extra, seed=3)
    out, _ = _run(tmp_path, wave, ckpt)
    _, *upstream = upstream_stems(net, wave, N_FFT, HOP)
    _, *conditioned = upstream_stems(net, wave, N_FFT, HOP, pad_end=N_FFT)
    input_peak = np.abs(wave[:, -2 * N_FFT:]).max()
    for got, ref, well in zip(_stems(out, "wav"), upstream, conditioned):
        assert got.shape == wave.shape
        assert snr_db(got[:, :-N_FFT], ref[:, :-N_FFT]) >= 100
        assert np.abs(got[:, -N_FFT:]).max() <= 1.5 * input_peak
        assert snr_db(got[:, -N_FFT:], well[:, -N_FFT:]) >= 30


def test_rescale_keeps_the_stems_summing_to_the_gained_mixture(panning, tmp_path):
    wave = music(200 * HOP + 77, seed=4, peak=1.3)
    out, manifest = _run(tmp_path, wave, panning, stem_format="flac", stem_subtype="PCM_24")  # clip: rescale
    assert manifest["clipping"]["mode"] == "rescale" and manifest["clipping"]["clamped"] == []
    [entry] = manifest["clipping"]["rescaled"]
    gain = entry["gain"]
    assert (entry["track_key"], entry["variant"]) == ("track", 0) and 0.5 < gain < 1.0
    first, second = _stems(out, "flac")
    lsb = 2.0**-23
    assert max(np.abs(first).max(), np.abs(second).max()) >= 1.0 - 2 * lsb  # the peak lands on full scale
    np.testing.assert_allclose(first + second, gain * wave, rtol=0, atol=4 * lsb + 2e-6)
    rows = pq.read_table([str(out / s) for s in manifest["shards"]]).column("stem_gain").to_pylist()
    assert rows and all(r == pytest.approx(gain, rel=1e-6) for r in rows)


def test_clamp_counts_what_it_clips_and_none_keeps_it(panning, tmp_path):
    wave = music(200 * HOP + 77, seed=4, peak=1.3)
    out, manifest = _run(tmp_path, wave, panning, clip="none")  # float WAV: values as they are
    free = _stems(out, "wav")
    assert manifest["clipping"] == {"mode": "none", "rescaled": [], "clamped": []}
    expected = {stem: int(np.count_nonzero(np.abs(s) > 1.0)) for stem, s in zip(STEMS, free)}
    assert min(expected.values()) > 0
    out, manifest = _run(tmp_path, wave, panning, clip="clamp", stem_format="flac", stem_subtype="PCM_24")
    assert manifest["clipping"]["clamped"] == [{"track_key": "track", "variant": 0, "samples": expected}]
    for got, reference in zip(_stems(out, "flac"), free):
        np.testing.assert_allclose(got, np.clip(reference, -1.0, 1.0), rtol=0, atol=2.0**-23)
    rows = pq.read_table([str(out / s) for s in manifest["shards"]]).column("stem_gain").to_pylist()
    assert set(rows) == {1.0}
