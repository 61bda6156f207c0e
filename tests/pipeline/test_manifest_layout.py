"""The run manifest's layout: a small JSON commit record naming a per-track detail Parquet written before it,
and every reader (inspect, report, committed_shards, ShardDataset) reading a root that holds a run of the old
layout (tracks, sources, timing and clipping inline, no key index or detail) beside a run of the new one."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf
from stemforge_testing import SR, music, write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.inspect import inspect_path
from stemforge.pipeline.report import build_report
from stemforge.shards import committed_runs, committed_shards
from stemforge.training import ShardDataset

OLD_FIELDS = ("tracks", "sources", "timing", "clipping")


def _old_layout(out: Path, run_id: str, source: Path) -> None:
    """Rewrites a committed run as main's old commit.py wrote it: detail inline, no "keys" nor "detail"."""
    path = out / "runs" / f"{run_id}.json"
    manifest = json.loads(path.read_text())
    timing = pq.read_table(out / "runs" / manifest.pop("detail")).to_pylist()
    version = pq.read_table(out / "runs" / manifest.pop("keys")).column("version").to_pylist()[0]
    for counted in ("rescaled", "clamped"):
        del manifest["counts"][counted]
    manifest.update(
        tracks=[run_id], sources=[{"track_key": run_id, "source": str(source), "size": source.stat().st_size,
                                   "version": version}],
        timing=[{k: t[k] for k in ("track_key", "variant", "audio_seconds", "prepare_seconds", "assemble_seconds",
                                   "decoded")} for t in timing],
        clipping={"mode": "rescale", "rescaled": [{"track_key": run_id, "variant": 0, "gain": 0.5}], "clamped": []})
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    for written in (f"{run_id}.tracks.parquet", f"{run_id}.keys.parquet"):
        (out / "runs" / written).unlink()


@pytest.fixture(scope="module")
def root(tiny_checkpoint, tmp_path_factory) -> Path:
    """An output root with run "old" (rewritten in the old layout) and run "new", one track each."""
    base = tmp_path_factory.mktemp("layouts")
    config, out = write_config(base / "c.yaml", output={"clip": "rescale"}), base / "out"
    for number, run_id in enumerate(("old", "new")):
        folder = base / run_id
        folder.mkdir()
        sf.write(folder / f"{run_id}.wav", music(int(1.5 * SR), seed=number).T, SR, subtype="FLOAT")
        assert main(["run", "--config", str(config), "--input", str(folder), "--output", str(out),
                     "--checkpoint", str(tiny_checkpoint), "--set", f"run.run_id={run_id}"]) == 0
        if run_id == "old":
            _old_layout(out, "old", folder / "old.wav")
    return out


def test_the_new_manifest_is_small_and_its_detail_parquet_is_written_before_it(root):
    path = root / "runs" / "new.json"
    manifest = json.loads(path.read_text())
    assert not set(OLD_FIELDS[:3]) & set(manifest) and manifest["clipping"] == {"mode": "rescale"}
    assert manifest["keys"] == "new.keys.parquet" and manifest["detail"] == "new.tracks.parquet"
    detail = root / "runs" / manifest["detail"]
    assert detail.stat().st_mtime_ns <= path.stat().st_mtime_ns
    rows = pq.read_table(detail).to_pylist()
    shard_rows = pq.read_table(root / manifest["shards"][0], columns=["track_key", "variant"]).to_pylist()
    assert {(r["track_key"], r["variant"]) for r in rows} == {(r["track_key"], r["variant"]) for r in shard_rows}
    assert [r["committed"] for r in rows] == [True] and rows[0]["decoded"].startswith("libsndfile")
    assert manifest["counts"]["rescaled"] == sum(r["gain"] is not None and r["gain"] != 1.0 for r in rows)


def test_committed_runs_read_both_layouts_oldest_first(root):
    old, new = committed_runs(str(root))
    assert (old.run_id, old.detail_file, new.run_id, new.detail_file) == ("old", None, "new", "new.tracks.parquet")
    assert old.detail().tracks == ["old"] and new.detail().tracks == ["new"]
    assert old.detail().clipping["rescaled"] == [{"track_key": "old", "variant": 0, "gain": 0.5}]
    assert new.detail().sources[0]["source"] == str(root.parent / "new" / "new.wav")
    assert [t["track_key"] for t in old.detail().timing + new.detail().timing] == ["old", "new"]
    assert old.clip_counts() == ("rescale", 1, 0)


def test_committed_shards_and_shard_dataset_read_both_layouts(root):
    listed = [str(root / s) for run in ("old", "new") for s in json.loads((root / "runs" / f"{run}.json").read_text())
              ["shards"]]
    assert committed_shards(str(root)) == listed and len(listed) == 2
    keys = {sample["track_key"] for sample in ShardDataset(str(root), columns=["mixture"])}
    assert keys == {"old", "new"}


def test_inspect_reads_both_layouts(root):
    described = inspect_path(str(root))
    assert [(r["run_id"], r["counts"]["succeeded"], len(r["shards"])) for r in described["runs"]] == [
        ("new", 1, 1), ("old", 1, 1)]
    assert all(s["committed"] for r in described["runs"] for s in r["shards"])


def test_the_report_shows_both_layouts_and_renders(root, tmp_path):
    page = build_report(str(root))
    for run_id in ("old", "new"):
        assert f'id="run-{run_id}"' in page and f"<h4>{run_id}</h4>" in page
    assert "1 track variants rescaled, 0 clamped" in page and "no per-track timing" not in page
    assert page.count("Processing time against audio length") == 2
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    (tmp_path / "report.html").write_text(page)
    problems = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            shown = browser.new_page()
            shown.on("pageerror", lambda error: problems.append(str(error)))
            shown.goto((tmp_path / "report.html").as_uri())
            loaded = shown.evaluate("() => Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        finally:
            browser.close()
    assert problems == [] and loaded and all(loaded)
