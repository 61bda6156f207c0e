"""Claim: a run that lost its lease never commits. A run frozen past the heartbeat timeout (a stalled VM, a
paused container) has its lease taken over by the next run; when it wakes up, its commit step finds another
token on the lease and fails (exit 1) before it writes an error log or a manifest. And a stems folder that
two runs with different outputs share is leased too, so they never write the same stem files at once."""

import json
import re
import time

import fsspec
from reliability_support import (
    cli,
    committed_manifests,
    committed_rows,
    row_keys,
    run_args,
    sine_corpus,
    frozen,
    running_cli,
    wait_while_running,
)
from stemforge_testing import write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.lease import LEASE, TIMEOUT_HEARTBEATS

LOCAL = fsspec.filesystem("file")
BEAT = 0.2  # seconds: the stalled run's lease is dead after TIMEOUT_HEARTBEATS of them


def _heartbeat_age(path) -> float:
    try:
        return time.time() - json.loads(path.read_text())["heartbeat"]
    except (FileNotFoundError, ValueError):
        return 0.0


def test_a_run_whose_lease_was_taken_over_while_it_stalled_does_not_commit(tiny_checkpoint, tmp_path):
    corpus, out = sine_corpus(tmp_path / "corpus"), tmp_path / "out"
    args = run_args(write_config(tmp_path / "c.yaml", run={"lease_heartbeat_seconds": BEAT}), str(corpus), str(out),
                    str(tiny_checkpoint))
    log = tmp_path / "stalled.log"
    with running_cli(args + ["--set", "run.run_id=stalled"], log) as stalled:
        wait_while_running(lambda: (out / "_tmp" / "stalled").exists(), stalled)
        with frozen(stalled):
            while _heartbeat_age(out / LEASE) <= 2 * TIMEOUT_HEARTBEATS * BEAT:
                time.sleep(0.05)
            taker = cli(args + ["--set", "run.run_id=taker"])
        code = stalled.wait(timeout=300)
    assert taker.returncode == 0, taker.stderr[-2000:]
    assert "took over the lease of run stalled (host " in taker.stderr
    text = log.read_text()
    assert code == 1, text[-3000:]
    assert ("stemforge: run failed, nothing committed: LeaseLost: run stalled not committed: it lost its lease on "
            f"{out} to another run (it stalled longer than 5 heartbeats and was taken over; nobody holds it now); the "
            "next run redoes its work") in text
    assert not (out / "runs" / "stalled.json").exists() and not (out / "errors" / "stalled.jsonl").exists()
    assert [m["run_id"] for m in committed_manifests(LOCAL, str(out))] == ["taker"]
    keys = row_keys(committed_rows(LOCAL, str(out)))
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == {"t0", "t1", "t2"}


def test_two_runs_with_different_outputs_never_share_a_stems_folder_at_once(tiny_checkpoint, tmp_path, capsys):
    corpus, stems = sine_corpus(tmp_path / "corpus"), tmp_path / "stems"
    config = write_config(tmp_path / "c.yaml", output={"stems_uri": str(stems)})
    with running_cli(run_args(config, str(corpus), str(tmp_path / "one"), str(tiny_checkpoint)),
                     tmp_path / "one.log") as first:
        wait_while_running(lambda: (stems / LEASE).exists(), first)
        with frozen(first):
            code = main(run_args(config, str(corpus), str(tmp_path / "two"), str(tiny_checkpoint),
                                 "--set", "run.run_id=two"))
        assert first.wait(timeout=300) == 0, (tmp_path / "one.log").read_text()[-2000:]
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"stemforge: output.stems_uri: {stems} is leased by run ") and "\n" not in err
    assert not (tmp_path / "two" / "runs").exists() and not (tmp_path / "two" / LEASE).exists()
    assert not (stems / LEASE).exists()


def test_a_lease_is_judged_by_its_holders_heartbeat_not_the_newcomers(good_corpus, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    now = time.time()
    (out / LEASE).write_text(json.dumps({"run_id": "slow-beat", "host": "another-host", "pid": 1, "started": now - 600,
                                         "heartbeat": now - 20, "heartbeat_seconds": 60, "token": "t0k"}))
    args = run_args(write_config(tmp_path / "c.yaml", run={"lease_heartbeat_seconds": 1}), str(good_corpus[1]["c"]),
                    str(out), str(tiny_checkpoint))
    assert main(args) == 2  # 20 s is 20 of the newcomer's beats, but not even one of the holder's
    assert re.match(rf"stemforge: output.uri: {out} is leased by run slow-beat \(host another-host, pid 1, started "
                    r"6\d\d s ago, heartbeat \d\d s ago\); ", capsys.readouterr().err)
    assert json.loads((out / LEASE).read_text())["token"] == "t0k"


def test_a_stems_folder_without_an_atomic_create_is_refused_before_any_work(good_corpus, tiny_checkpoint, tmp_path,
                                                                              capsys):
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", output={"stems_uri": "memory://fencing-tests/stems"})
    assert main(run_args(config, str(good_corpus[1]["c"]), str(out), str(tiny_checkpoint))) == 2
    assert capsys.readouterr().err.strip() == (
        "stemforge: output.stems_uri: the memory:// filesystem has no atomic create, so stemforge cannot lease the "
        "output root against overlapping runs; write to a local folder, s3:// or gs://")
    assert not (out / LEASE).exists() and not (out / "runs").exists()
    assert not fsspec.filesystem("memory").exists("fencing-tests/stems")
