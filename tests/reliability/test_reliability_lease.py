"""Claim: runs that overlap are safe. A run leases its output root before any work: a second run on it,
under another id or the same one, exits 2 naming the live run (or waits for it), so no key is committed
twice, no manifest is replaced and no live scratch is removed. A lease whose holder died (kill -9, or a
heartbeat gone stale on another host) is taken over, and only then is the dead run's scratch removed."""

import json
import os
import re
import signal
import time
from pathlib import Path

import fsspec
import pytest
from reliability_support import (
    assert_lease_refused,
    clean_env,
    cli,
    committed_manifests,
    committed_rows,
    kill_when,
    overlap_runs,
    row_keys,
    run_args,
    sine_corpus,
    start_cli,
    wait_while_running,
)
from stemforge_testing import write_config

from stemforge.pipeline.cli import main
from stemforge.config.run import load_config
from stemforge.pipeline.lease import LEASE, acquire

LOCAL = fsspec.filesystem("file")


def test_two_runs_on_one_output_never_commit_a_key_twice(tiny_checkpoint, tmp_path):
    corpus, out = sine_corpus(tmp_path / "corpus"), tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint))
    code, second = overlap_runs(args + ["--set", "run.run_id=first"], args + ["--set", "run.run_id=second"],
                            lambda: (out / LEASE).exists(), clean_env(), tmp_path / "first.log")
    assert code == 0, (tmp_path / "first.log").read_text()[-2000:]
    assert_lease_refused(second, "first")
    assert [m["run_id"] for m in committed_manifests(LOCAL, str(out))] == ["first"]
    keys = row_keys(committed_rows(LOCAL, str(out)))
    assert keys and len(keys) == len(set(keys)) and {k[0] for k in keys} == {"t0", "t1", "t2"}
    assert not (out / LEASE).exists()


def test_the_same_run_id_twice_at_once_keeps_the_live_run_and_its_manifest(tiny_checkpoint, tmp_path):
    corpus, out = sine_corpus(tmp_path / "corpus"), tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint),
                    "--set", "run.run_id=daily-x")
    code, second = overlap_runs(args, args, lambda: (out / "_tmp" / "daily-x").exists(), clean_env(),
                            tmp_path / "first.log")
    log = (tmp_path / "first.log").read_text()
    assert code == 0, log[-2000:]
    assert_lease_refused(second, "daily-x")
    assert "leftovers" not in second.stderr
    [manifest] = committed_manifests(LOCAL, str(out))
    assert manifest["run_id"] == "daily-x" and manifest["counts"]["succeeded"] == 3
    keys = row_keys(committed_rows(LOCAL, str(out)))
    assert len(keys) == len(set(keys))
    committed = (out / "runs" / "daily-x.json").read_bytes()
    again = cli(args)  # after the commit: the committed id is refused, its manifest kept byte for byte
    assert again.returncode == 2 and "daily-x is already committed" in again.stderr
    assert (out / "runs" / "daily-x.json").read_bytes() == committed


def test_a_second_run_can_wait_for_the_lease_then_skips_what_the_first_committed(tiny_checkpoint, tmp_path):
    corpus, out = sine_corpus(tmp_path / "corpus"), tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint))
    first = start_cli(args + ["--set", "run.run_id=first"], log=tmp_path / "first.log")
    second_log = tmp_path / "second.log"
    try:
        wait_while_running(lambda: (out / LEASE).exists(), first)
        os.killpg(first.pid, signal.SIGSTOP)  # frozen while the second one starts: it must find the lease held
        second = start_cli(args + ["--set", "run.run_id=second", "--set", "run.on_lease=wait"], log=second_log)
        wait_while_running(lambda: "waiting for the lease" in second_log.read_text(), second)
        os.killpg(first.pid, signal.SIGCONT)
        assert first.wait(timeout=300) == 0
        assert second.wait(timeout=300) == 0, second_log.read_text()[-2000:]
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert "held by run first (host " in second_log.read_text()
    counts = {m["run_id"]: m["counts"] for m in committed_manifests(LOCAL, str(out))}
    assert counts["first"]["succeeded"] == 3 and counts["second"]["skipped"] == 3
    keys = row_keys(committed_rows(LOCAL, str(out)))
    assert len(keys) == len(set(keys))


def test_the_lease_of_a_killed_run_is_taken_over_and_only_then_its_scratch_removed(tiny_checkpoint, tmp_path):
    corpus, out = sine_corpus(tmp_path / "corpus"), tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint))
    proc = start_cli(args + ["--set", "run.run_id=killed"], log=tmp_path / "killed.log")
    assert kill_when(proc, lambda: (out / LEASE).exists() and (out / "_tmp" / "killed").exists())
    assert json.loads((out / LEASE).read_text())["run_id"] == "killed"
    result = cli(args + ["--set", "run.run_id=next"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "took over the lease of run killed (host " in result.stderr
    assert not (out / "_tmp").exists() and not (out / LEASE).exists()
    keys = row_keys(committed_rows(LOCAL, str(out)))
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == {"t0", "t1", "t2"}


def _remote_lease(out: Path, heartbeat_age: float) -> None:
    now = time.time()
    out.mkdir(parents=True, exist_ok=True)
    (out / "_tmp" / "remote").mkdir(parents=True)
    (out / "_tmp" / "remote" / "part.npy").write_bytes(b"x")
    (out / LEASE).write_text(json.dumps({"run_id": "remote", "host": "another-host", "pid": 1, "started": now - 600,
                                         "heartbeat": now - heartbeat_age, "token": "t0k"}))


def test_a_lease_from_another_host_holds_until_its_heartbeat_times_out(good_corpus, tiny_checkpoint, tmp_path, capsys):
    folder, files = good_corpus
    out = tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml", run={"lease_heartbeat_seconds": 60}), str(files["c"]), str(out),
                    str(tiny_checkpoint))
    _remote_lease(out, heartbeat_age=0)  # a fresh heartbeat: live
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"stemforge: output.uri: {out} is leased by run remote (host another-host, pid 1, started ")
    assert (out / "_tmp" / "remote" / "part.npy").exists() and not (out / "runs").exists()
    record = json.loads((out / LEASE).read_text())
    record["heartbeat"] = time.time() - 301  # older than 5 beats of 60 s: its holder died
    (out / LEASE).write_text(json.dumps(record))
    assert main(args) == 0
    assert not (out / "_tmp").exists() and not (out / LEASE).exists()
    assert not list(out.glob("_lease.json*"))


def test_a_takeover_marker_left_by_a_contender_that_died_does_not_block_the_lease(good_corpus, tiny_checkpoint,
                                                                                     tmp_path, capsys, caplog):
    folder, files = good_corpus
    out = tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml", run={"lease_heartbeat_seconds": 60}), str(files["c"]), str(out),
                    str(tiny_checkpoint))
    _remote_lease(out, heartbeat_age=3600)
    marker = out / f"{LEASE}.takeover-t0k"
    marker.write_bytes(b"")  # a contender is taking the dead lease over right now: wait for it
    assert main(args) == 2
    assert "is leased by run remote (host another-host, pid 1, " in capsys.readouterr().err
    assert (out / "_tmp" / "remote" / "part.npy").exists()
    os.utime(marker, (time.time() - 301, time.time() - 301))  # that contender died 5 beats ago, mid-takeover
    assert main(args) == 0
    assert f"removing the takeover marker {marker} of a run that died while taking the lease over" in caplog.text
    assert not list(out.glob(f"{LEASE}*")) and not (out / "_tmp").exists()


@pytest.mark.parametrize("run_id", ["../runs", "x/../../runs", "/etc"])
def test_a_dead_lease_whose_run_id_climbs_out_of_tmp_removes_nothing(run_id, good_corpus, tiny_checkpoint, tmp_path):
    folder, files = good_corpus
    out = tmp_path / "out"
    _remote_lease(out, heartbeat_age=3600)
    record = json.loads((out / LEASE).read_text())
    (out / LEASE).write_text(json.dumps({**record, "run_id": run_id}))
    (out / "runs").mkdir()
    (out / "runs" / "keep.txt").write_text("an earlier run's record")
    args = run_args(write_config(tmp_path / "c.yaml", run={"lease_heartbeat_seconds": 60}), str(files["c"]), str(out),
                    str(tiny_checkpoint))
    assert main(args) == 0
    assert (out / "runs" / "keep.txt").read_text() == "an earlier run's record"
    assert (out / "_tmp" / "remote" / "part.npy").exists()  # named by no valid run id: left to `clean_leftovers`


def test_the_heartbeat_refreshes_the_lease_and_release_removes_only_its_own(tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", run={"lease_heartbeat_seconds": 0.05}),
                         [f"output.uri={tmp_path / 'out'}"])
    lease = acquire(config, "beating")
    path = tmp_path / "out" / LEASE
    first = json.loads(path.read_text())
    deadline = time.monotonic() + 60
    while json.loads(path.read_text())["heartbeat"] == first["heartbeat"]:
        assert time.monotonic() < deadline, "the heartbeat never refreshed the lease"
        time.sleep(0.01)
    assert {k: v for k, v in json.loads(path.read_text()).items() if k != "heartbeat"} == {
        k: v for k, v in first.items() if k != "heartbeat"}
    lease.release()
    assert not path.exists()


def test_the_default_run_id_is_unique_per_launch_in_its_readable_shape(tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml"), [f"output.uri={tmp_path / 'out'}"])
    ids = [config.default_run_id() for _ in range(50)]  # all within far less than a second
    assert len(set(ids)) == 50
    digest = ids[0].split("-")[1]
    assert all(re.fullmatch(rf"\d{{8}}T\d{{6}}\.\d{{3}}Z-{digest}-[0-9a-f]{{8}}", i) for i in ids)


def test_a_run_stopped_by_sigterm_releases_the_lease(tiny_checkpoint, tmp_path):
    corpus, out = sine_corpus(tmp_path / "corpus"), tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint))
    proc = start_cli(args + ["--set", "run.run_id=stopped"], log=tmp_path / "stopped.log")
    try:
        wait_while_running(lambda: (out / LEASE).exists(), proc)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (out / LEASE).exists() and not (out / "runs").exists()
    assert main(args + ["--set", "run.run_id=next"]) == 0  # no stale lease left to refuse it


def test_an_output_without_an_atomic_create_is_refused_before_any_work(good_corpus, tiny_checkpoint, tmp_path, capsys):
    args = run_args(write_config(tmp_path / "c.yaml"), str(good_corpus[1]["c"]), "memory://lease-tests/out",
                    str(tiny_checkpoint))
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "stemforge: output.uri: the memory:// filesystem has no atomic create, so stemforge cannot lease the output "
        "root against overlapping runs; write to a local folder, s3:// or gs://")
    assert not fsspec.filesystem("memory").exists("lease-tests/out/runs")
