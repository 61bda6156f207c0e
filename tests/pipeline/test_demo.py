"""`stemforge demo` (what `make demo` runs): synthesised voice-over-music mixtures from a mix run and a few odd
files, separated by the shipped model, the vocals scored against the true ones, a report, from nothing."""

import re
import shutil

import pytest

from stemforge.model.shipped import VOICE_MUSIC
from stemforge.pipeline.cli import main
from stemforge_testing import read_manifest


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_the_demo_runs_from_nothing_separates_and_writes_its_report(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    [manifest_path] = (tmp_path / "demo_output" / "runs").glob("*.json")
    manifest = read_manifest(manifest_path)
    assert not manifest["random_init"] and manifest["checkpoint"]["sha256"] == VOICE_MUSIC.sha256
    assert manifest["counts"]["failed"] == 1  # the deliberately broken file
    mixtures = [k for k in manifest["tracks"] if k.endswith("/mixture")]
    assert len(mixtures) == 6 and manifest["counts"]["succeeded"] == len(manifest["tracks"]) >= 10
    scores = re.findall(r"separated +(-?[\d.]+) +mixture +(-?[\d.]+) +improvement +(-?[\d.]+)", out)
    assert len(scores) == 6
    for separated, mixture, improvement in scores:
        assert float(improvement) == pytest.approx(float(separated) - float(mixture), abs=0.011)
    mean = float(re.search(r"mean SI-SDR improvement: (-?[\d.]+) dB", out).group(1))
    assert mean > 5.0  # a real separation: random weights give about 0 dB
    report = tmp_path / "demo_output" / "report.html"
    assert f"report:       {report}" in out
    assert manifest["run_id"] in report.read_text()
