"""`stemforge demo` (what `make demo` runs): a corpus, a committed run, its report, from nothing."""

import json

from pipeline.cli import main


def test_the_demo_runs_from_nothing_and_writes_its_report(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    [manifest_path] = (tmp_path / "demo_output" / "runs").glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["random_init"] and manifest["counts"]["failed"] == 1  # the deliberately broken file
    assert manifest["counts"]["succeeded"] == len(manifest["tracks"]) >= 4
    report = tmp_path / "demo_output" / "report.html"
    assert f"report:       {report}" in out and "random weights" in out
    assert manifest["run_id"] in report.read_text()
