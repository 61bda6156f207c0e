"""Claim: the lease holds on S3 as it does locally (a conditional PUT, ``If-None-Match: *``, against moto's
server): two runs on one output never commit a key twice, the same run id launched twice at once keeps the live
run and its manifest, and a kill -9'd holder's lease is taken over, and only then its scratch removed."""

import json
import re

from reliability_support import (
    assert_lease_refused,
    cli,
    committed_manifests,
    committed_rows,
    kill_when,
    moto_bucket,
    overlap_runs,
    row_keys,
    run_args,
    sine_corpus,
    start_cli,
)
from stemforge_testing import write_config

from stemforge.pipeline.lease import LEASE

OUT = "corpus/out"


def _s3_args(fs, tmp_path, tiny_checkpoint, *extra: str) -> list[str]:
    corpus = sine_corpus(tmp_path / "corpus")
    fs.put(f"{corpus}/", "corpus/in/", recursive=True)
    return run_args(write_config(tmp_path / "c.yaml"), "s3://corpus/in", f"s3://{OUT}", str(tiny_checkpoint), *extra)


def _exists(fs, path: str) -> bool:
    fs.invalidate_cache()
    return fs.exists(path)


def _working(fs, run_id: str):
    """Whether run ``run_id`` has begun writing its scratch (it holds the lease by then): what the tests
    wait for, so that without a lease the second run overlaps the first all the same."""

    def check() -> bool:
        fs.invalidate_cache()
        return bool(fs.find(f"{OUT}/_tmp/{run_id}"))

    return check


def _unique_keys(fs) -> list[tuple[str, int, int]]:
    keys = row_keys(committed_rows(fs, OUT))
    assert keys and len(keys) == len(set(keys)) and {k[0] for k in keys} == {"t0", "t1", "t2"}
    return keys


def test_two_runs_on_one_s3_output_never_commit_a_key_twice(tiny_checkpoint, tmp_path):
    with moto_bucket(tmp_path, "corpus") as (fs, env):
        args = _s3_args(fs, tmp_path, tiny_checkpoint)
        code, second = overlap_runs(args + ["--set", "run.run_id=first"], args + ["--set", "run.run_id=second"],
                                    _working(fs, "first"), env, tmp_path / "first.log")
        assert code == 0, (tmp_path / "first.log").read_text()[-2000:]
        assert_lease_refused(second, "first")
        assert [m["run_id"] for m in committed_manifests(fs, OUT)] == ["first"]
        _unique_keys(fs)
        assert not _exists(fs, f"{OUT}/{LEASE}")


def test_the_same_run_id_twice_at_once_on_s3_keeps_the_live_run_and_its_manifest(tiny_checkpoint, tmp_path):
    with moto_bucket(tmp_path, "corpus") as (fs, env):
        args = _s3_args(fs, tmp_path, tiny_checkpoint, "--set", "run.run_id=daily-x")
        code, second = overlap_runs(args, args, _working(fs, "daily-x"), env, tmp_path / "first.log")
        assert code == 0, (tmp_path / "first.log").read_text()[-2000:]
        assert_lease_refused(second, "daily-x")
        assert "leftovers" not in second.stderr
        [manifest] = committed_manifests(fs, OUT)
        assert manifest["run_id"] == "daily-x" and manifest["counts"]["succeeded"] == 3
        _unique_keys(fs)
        committed = fs.cat_file(f"{OUT}/runs/daily-x.json")
        again = cli(args, env=env)  # after the commit: the committed id is refused, its manifest kept
        assert again.returncode == 2 and "daily-x is already committed" in again.stderr
        assert fs.cat_file(f"{OUT}/runs/daily-x.json") == committed


def test_a_kill_9d_lease_holder_on_s3_is_taken_over_and_only_then_its_scratch_removed(tiny_checkpoint, tmp_path):
    with moto_bucket(tmp_path, "corpus") as (fs, env):
        args = _s3_args(fs, tmp_path, tiny_checkpoint)
        proc = start_cli(args + ["--set", "run.run_id=killed"], env=env, log=tmp_path / "killed.log")
        assert kill_when(proc, _working(fs, "killed"))
        assert json.loads(fs.cat_file(f"{OUT}/{LEASE}"))["run_id"] == "killed"
        result = cli(args + ["--set", "run.run_id=next"], env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "took over the lease of run killed (host " in result.stderr
        assert re.search(rf"took over the lease of run killed .*; removing its scratch \S*{OUT}/_tmp/killed\n",
                         result.stderr)
        fs.invalidate_cache()
        assert fs.find(f"{OUT}/_tmp") == [] and not fs.exists(f"{OUT}/{LEASE}")
        assert [m["run_id"] for m in committed_manifests(fs, OUT)] == ["next"]
        _unique_keys(fs)
