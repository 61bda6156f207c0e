"""Claim: an operator can see and clean what a schedule left under an output root. `stemforge runs` lists
committed runs (counts, audio hours, wall time), the run holding the lease (running, with the lease's age, or
dead), and failed runs with what they left; `stemforge gc` removes exactly what no committed run references,
never a live run's files (it takes the lease, or refuses naming the live run), on local folders and S3."""

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import soundfile as sf
from reliability_support import (
    cli,
    committed_manifests,
    committed_rows,
    frozen,
    kill_when,
    moto_bucket,
    row_keys,
    running_cli,
    run_args,
    sine_corpus,
    start_cli,
    tree_bytes,
    wait_while_running,
)
from stemforge_testing import write_config

from stemforge.pipeline.lease import LEASE
from stemforge.text import size

LOCAL = fsspec.filesystem("file")
ORPHANS = {"errors/orphan.jsonl": b'{"source": "x"}\n', "runs/orphan.keys.parquet": b"PAR1 not read",
           "runs/notes.txt": b"an operator's file: never stemforge's to remove"}


@pytest.fixture(scope="module")
def schedule_root(tiny_checkpoint, tmp_path_factory):
    """An output root as a schedule leaves it: a committed run (one input rejected), a run killed (kill -9)
    while it held the lease, a failed run's shard, error log and key index, and an unlisted shard of the
    committed run (a retried bundle's leftover)."""
    work = tmp_path_factory.mktemp("schedule")
    corpus, out = sine_corpus(work / "corpus"), work / "out"
    (corpus / "bad.wav").write_bytes(b"RIFF not audio")
    args = run_args(write_config(work / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint))
    good = cli(args + ["--set", "run.run_id=good"])
    assert good.returncode == 0, good.stderr[-2000:]
    killed = start_cli(args + ["--set", "run.run_id=killed", "--set", "run.skip_existing=false"])
    assert kill_when(killed, lambda: (out / LEASE).exists() and (out / "_tmp" / "killed").exists())
    (out / "_tmp" / "killed" / "mask.npy").write_bytes(b"m" * 100)
    [shard] = json.loads((out / "runs" / "good.json").read_text())["shards"]
    (out / "spectrograms" / "orphan").mkdir()
    shutil.copy(out / shard, out / "spectrograms" / "orphan" / "part-0.parquet")
    shutil.copy(out / shard, out / "spectrograms" / "good" / "part-retried.parquet")
    for name, data in ORPHANS.items():
        (out / name).write_bytes(data)
    return out, args


def _runs_json(out, env=None) -> dict:
    result = cli(["runs", str(out), "--json"], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_runs_lists_committed_dead_and_failed_runs_with_counts_and_leftovers(schedule_root, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(schedule_root[0], out)
    manifest = json.loads((out / "runs" / "good.json").read_text())
    runs = {r["run_id"]: r for r in _runs_json(out)["runs"]}
    assert {k: r["status"] for k, r in runs.items()} == {"good": "committed", "killed": "dead", "orphan": "failed"}
    good = runs["good"]
    rows = manifest["counts"]["rows"]
    assert good["counts"] == {"inputs": 4, "succeeded": 3, "failed": 1, "skipped": 0, "rows": rows}
    seconds = sum(sf.info(p).duration for p in sorted((schedule_root[0].parent / "corpus").glob("t*.wav")))
    assert good["audio_hours"] == pytest.approx(seconds / 3600, abs=1e-6)
    assert good["wall_seconds"] >= 0 and good["shards"] == 1
    retried = (out / "spectrograms" / "good" / "part-retried.parquet").stat().st_size
    assert good["leftover"]["files"] == 1 and good["leftover"]["bytes"] == retried
    killed = runs["killed"]
    assert killed["lease"]["host"] == socket.gethostname() and killed["lease"]["age_seconds"] >= 0
    assert killed["leftover"]["files"] >= 1 and killed["counts"]["succeeded"] is None
    orphan_bytes = retried + len(ORPHANS["errors/orphan.jsonl"]) + len(ORPHANS["runs/orphan.keys.parquet"])
    assert runs["orphan"]["leftover"] == {"files": 3, "bytes": orphan_bytes,
                                          "last_write_at": runs["orphan"]["leftover"]["last_write_at"]}
    table = cli(["runs", str(out)])
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    good_line = next(line for line in lines if line.startswith("good "))
    assert "committed" in good_line and f"{seconds / 3600:.3f}" in good_line
    assert any(line.startswith("killed ") and " dead " in line and "host " in line for line in lines)
    assert lines[-1].startswith(f"{out}: 3 runs (1 committed, 0 running, 2 failed or dead), ")
    assert "`stemforge gc " in lines[-1]


def test_gc_removes_only_what_no_committed_run_references(schedule_root, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(schedule_root[0], out)
    before = tree_bytes(LOCAL, str(out))
    dry = cli(["gc", str(out), "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert tree_bytes(LOCAL, str(out)) == before  # a dry run removes nothing, takes no lease
    assert "would remove spectrograms/good/part-retried.parquet (1 file, " in dry.stdout
    gc = cli(["gc", str(out)])
    assert gc.returncode == 0, gc.stderr
    removed = [line.split(" (")[0] for line in gc.stdout.splitlines()[:-1]]
    assert sorted(removed) == sorted(line.replace("would remove", "removed").split(" (")[0]
                                     for line in dry.stdout.splitlines()[:-1])
    assert {"removed spectrograms/good/part-retried.parquet", "removed spectrograms/orphan/",
            "removed errors/orphan.jsonl", "removed runs/orphan.keys.parquet", "removed _tmp/killed/"} <= set(removed)
    after = tree_bytes(LOCAL, str(out))
    kept = {k: v for k, v in before.items()
            if not k.startswith(("_tmp/", "spectrograms/orphan/", LEASE)) and k not in (
                "spectrograms/good/part-retried.parquet", "errors/orphan.jsonl", "runs/orphan.keys.parquet")}
    assert after == kept  # the committed run's manifest, shards, stems and error log, byte for byte
    assert after["runs/notes.txt"] == ORPHANS["runs/notes.txt"] and "errors/good.jsonl" in after
    assert not (out / "_tmp").exists() and not (out / LEASE).exists()
    keys = row_keys(committed_rows(LOCAL, str(out)))
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == {"t0", "t1", "t2"}
    again = cli(["gc", str(out)])
    assert again.stdout.strip() == f"gc: nothing to remove under {out}: every run's files are committed or live"
    assert [r["status"] for r in _runs_json(out)["runs"]] == ["committed"]


def test_gc_never_touches_a_live_runs_files(schedule_root, tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(schedule_root[0], out)
    (out / LEASE).unlink()
    args = [a if a != str(schedule_root[0]) else str(out) for a in schedule_root[1]]
    with running_cli(args + ["--set", "run.run_id=live", "--set", "run.skip_existing=false"],
                     tmp_path / "live.log") as live:
        wait_while_running(lambda: (out / "_tmp" / "live").exists() and any((out / "_tmp" / "live").rglob("*")),
                           live)
        with frozen(live):
            scratch = {p: p.read_bytes() for p in (out / "_tmp" / "live").rglob("*") if p.is_file()}
            runs = {r["run_id"]: r for r in _runs_json(out)["runs"]}
            refused = cli(["gc", str(out)])
            dry = cli(["gc", str(out), "--dry-run"])
            assert {p: p.read_bytes() for p in scratch} == scratch
        assert live.wait(timeout=300) == 0, (tmp_path / "live.log").read_text()[-2000:]
    assert runs["live"]["status"] == "running" and runs["live"]["lease"]["pid"] == live.pid
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().startswith(
        f"stemforge: gc: {out} is leased by run live (host {socket.gethostname()}, pid {live.pid}, started ")
    assert refused.stderr.strip().endswith("gc never touches a live run's files: run it once that run has ended")
    assert "would remove spectrograms/orphan/ (1 file, " in dry.stdout
    assert re.search(r"^kept \d+ files? of run live \(host .*\): it is running$", dry.stdout, re.M)
    assert not [line for line in dry.stdout.splitlines() if line.startswith("would remove _tmp/live")]
    assert [m["run_id"] for m in committed_manifests(LOCAL, str(out))] == ["good", "live"]


def test_gc_on_s3_removes_a_killed_runs_leftovers_and_keeps_the_committed_run(tiny_checkpoint, tmp_path):
    corpus = sine_corpus(tmp_path / "corpus")
    with moto_bucket(tmp_path, "bucket") as (fs, env):
        args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), "s3://bucket/out", str(tiny_checkpoint))
        assert cli(args + ["--set", "run.run_id=good"], env=env).returncode == 0
        [shard] = json.loads(fs.cat_file("bucket/out/runs/good.json"))["shards"]
        fs.copy(f"bucket/out/{shard}", "bucket/out/spectrograms/dead/part-0.parquet")
        fs.pipe_file("bucket/out/_tmp/dead/mask.npy", b"m" * 10)
        fs.pipe_file("bucket/out/errors/dead.jsonl", b"{}\n")
        before = tree_bytes(fs, "bucket/out")
        assert {r["run_id"]: r["status"] for r in _runs_json("s3://bucket/out", env)["runs"]} == {
            "good": "committed", "dead": "failed"}
        gc = cli(["gc", "s3://bucket/out"], env=env)
        assert gc.returncode == 0, gc.stderr[-2000:]
        assert sorted(gc.stdout.splitlines()[:-1]) == [
            "removed _tmp/dead/ (1 file, 10 B): run dead, failed", "removed errors/dead.jsonl (1 file, 3 B): run dead, "
            "failed", f"removed spectrograms/dead/ (1 file, {size(fs.size('bucket/out/' + shard))}): run dead, failed"]
        fs.invalidate_cache()
        doomed = ("_tmp/dead/mask.npy", "errors/dead.jsonl", "spectrograms/dead/part-0.parquet")
        assert tree_bytes(fs, "bucket/out") == {k: v for k, v in before.items() if k not in doomed}
        assert not fs.exists(f"bucket/out/{LEASE}")


def test_runs_and_gc_start_without_beam(tmp_path):
    script = ("import sys; from stemforge.pipeline.cli import main; "
              f"codes = [main(['runs', {str(tmp_path)!r}]), main(['gc', {str(tmp_path)!r}, '--dry-run'])]; "
              "assert codes == [0, 0], codes; assert 'apache_beam' not in sys.modules, 'beam'")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [f"{tmp_path}: 0 runs (0 committed, 0 running, 0 failed or dead), 0.000 h "
                                          "of audio committed",
                                          f"gc: nothing to remove under {tmp_path}: every run's files are committed "
                                          "or live"]
