"""``output.clip`` in mix runs: the one stem writer (pipeline.engine.assemble.StemFiles) treats a mix run's mixture and
targets as it treats separated stems. The reference is the same run with ``clip: none`` (float WAV keeps every
value): ``clamp`` must equal it clipped to ±1, ``rescale`` must equal it times 1/(the largest peak of all files)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from stemforge_testing import SR, music, write_config

from stemforge.pipeline.cli import main

FILES = ("mixture", "instruments", "vocals")


def _loud_stemset(folder: Path) -> Path:
    """One track whose stems (and so their sum) peak well above full scale."""
    (folder / "loud").mkdir(parents=True)
    n = int(1.5 * SR)
    sf.write(folder / "loud" / "instruments.wav", (4.0 * music(n, seed=1)).T, SR, subtype="FLOAT")
    sf.write(folder / "loud" / "vocals.wav", (3.0 * music(n, seed=2)).T, SR, subtype="FLOAT")
    return folder


def _written(tmp_path: Path, stems: Path, clip: str) -> dict[str, np.ndarray]:
    config = write_config(tmp_path / f"{clip}.yaml", mix={"stems": ["instruments", "vocals"]},
                          output={"clip": clip})
    out = tmp_path / clip
    assert main(["run", "--config", str(config), "--input", str(stems), "--output", str(out),
                 "--direct_num_workers", "1", "--quiet"]) == 0
    [folder] = {p.parent for p in (out / "stems").rglob("mixture.wav")}
    return {name: sf.read(folder / f"{name}.wav", dtype="float32")[0] for name in FILES}


@pytest.fixture(scope="module")
def unclipped(tmp_path_factory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    tmp_path = tmp_path_factory.mktemp("mixclip")
    stems = _loud_stemset(tmp_path / "set")
    written = _written(tmp_path, stems, "none")
    assert all(np.abs(wave).max() > 1.0 for wave in written.values())  # clip none kept values past full scale
    return tmp_path, stems, written


def test_clamp_clips_every_file_of_a_mix_run(unclipped):
    tmp_path, stems, reference = unclipped
    written = _written(tmp_path, stems, "clamp")
    for name in FILES:
        np.testing.assert_array_equal(written[name], np.clip(reference[name], -1.0, 1.0))


def test_rescale_gives_every_file_of_a_mix_run_one_gain(unclipped):
    tmp_path, stems, reference = unclipped
    written = _written(tmp_path, stems, "rescale")
    gain = np.float32(1.0 / max(float(np.abs(wave).max()) for wave in reference.values()))
    for name in FILES:
        np.testing.assert_array_equal(written[name], np.clip(reference[name] * gain, -1.0, 1.0))
    assert max(float(np.abs(wave).max()) for wave in written.values()) == pytest.approx(1.0)
