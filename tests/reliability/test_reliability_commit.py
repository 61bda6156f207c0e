"""Claims 2 and 3 (after a kill): a run's outputs are invisible until committed; a run SIGKILLed at
any moment (the whole process group) leaves nothing under a committed name that the next run would
duplicate or trust wrongly; leftovers of dead runs are ignored, then cleaned; a retried bundle
rewrites the same files with the same bytes; the next run completes the work exactly once."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
import soundfile as sf
from apache_beam.pvalue import TaggedOutput
from reliability_support import (
    PYTHON,
    REPO,
    assert_same_rows,
    clean_env,
    committed_manifests,
    committed_rows,
    kill_when,
    local_files,
    row_keys,
    run_args,
    sine,
    start_cli,
)
from stemforge_testing import write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.commit import commit
from stemforge.config.run import load_config
from stemforge.pipeline.graph import WriteShards
from stemforge.pipeline.launch import make_job
from stemforge.pipeline.listing import TrackRef
from stemforge.pipeline.sinks import clean_leftovers
from stemforge.pipeline.stages import SeparateTrack

LOCAL = fsspec.filesystem("file")
MP = ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing")


def _corpus(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sf.write(folder / f"t{i}.wav", sine(0.8 + 0.25 * i, seed=30 + i), 44100, subtype="FLOAT")
    return folder


def _stems(out: Path) -> list[Path]:
    return sorted((out / "stems").rglob("*.wav")) if (out / "stems").exists() else []


def _shards(out: Path) -> list[Path]:
    return sorted((out / "spectrograms").rglob("*.parquet")) if (out / "spectrograms").exists() else []


def _listed(out: Path) -> set[str]:
    return {s for m in committed_manifests(LOCAL, str(out)) for s in m["shards"]}


def _committed_state(out: Path) -> dict[str, bytes]:
    """The committed names: run manifests and the shards they list."""
    names = [p.relative_to(out).as_posix() for p in (out / "runs").glob("*.json")] if (out / "runs").exists() else []
    return {name: (out / name).read_bytes() for name in sorted(names + sorted(_listed(out)))}


def _after(seconds: float):
    def condition_for(out: Path):
        started = time.monotonic()
        return lambda: time.monotonic() - started >= seconds
    return condition_for


def _stem_published(out: Path):
    return lambda: bool(_stems(out))


def _shard_published(out: Path):
    return lambda: bool({p.relative_to(out).as_posix() for p in _shards(out)} - _listed(out))


def test_killed_runs_leave_nothing_trusted_and_the_next_runs_complete_exactly_once(tiny_checkpoint, tmp_path):
    _kill_then_complete(tiny_checkpoint, tmp_path, [_stem_published, _shard_published])


@pytest.mark.slow
def test_runs_killed_at_random_moments_then_completed_exactly_once(tiny_checkpoint, tmp_path):
    delays = np.random.default_rng(int(time.time())).uniform(3.0, 14.0, size=6)
    _kill_then_complete(tiny_checkpoint, tmp_path, [_after(d) for d in sorted(delays)], tracks=10)


def _kill_then_complete(tiny_checkpoint: Path, tmp_path: Path, kills: list, tracks: int = 6) -> None:
    corpus = _corpus(tmp_path / "corpus", tracks)
    config = write_config(tmp_path / "c.yaml", output={"row_group_bytes": 1024**2})
    reference = tmp_path / "reference"
    assert main(run_args(config, str(corpus), str(reference), str(tiny_checkpoint))) == 0
    expected = committed_rows(LOCAL, str(reference))

    out = tmp_path / "out"
    args = run_args(config, str(corpus), str(out), str(tiny_checkpoint), *MP)
    killed = 0
    for number, condition_for in enumerate(kills):
        before = _committed_state(out)
        condition = condition_for(out)
        proc = start_cli(args + ["--set", f"run.run_id=killed-{number}"], log=tmp_path / f"killed-{number}.log")
        if kill_when(proc, condition):
            killed += 1
            manifest = out / "runs" / f"killed-{number}.json"
            if manifest.exists():  # killed after its commit (while exiting): a whole, valid commit
                assert all((out / shard).is_file() for shard in json.loads(manifest.read_text())["shards"])
            else:  # nothing of the dead run is committed: the committed names are untouched
                assert _committed_state(out) == before
    assert killed, "every run finished before the kill"
    leftovers = [p for p in out.rglob("*") if p.is_file() and "killed-" in p.as_posix()]
    dead_stems = {p: p.read_bytes() for p in _stems(out)}  # published by dead runs (or committed ones)
    assert leftovers, "the killed runs left nothing to clean: the kills came too late to test anything"

    # the next run ignores the dead runs' fresh shards (uncommitted) and completes the work
    assert main(run_args(config, str(corpus), str(out), str(tiny_checkpoint), "--set", "run.run_id=complete")) == 0
    got = committed_rows(LOCAL, str(out))
    assert row_keys(got) == sorted(set(row_keys(got)))  # every (track_key, variant, segment) exactly once
    assert_same_rows(expected, got, ignore=("source",))
    # one thread everywhere here, and every forward pass has the configured batch shape: the values are
    # the clean run's bit for bit, and the stems the dead runs left were rewritten with the same bytes
    for a, b in zip(expected, got):
        assert all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a if k != "source")
    assert {s.relative_to(out) for s in _stems(out)} == {s.relative_to(reference) for s in _stems(reference)}
    for stem in _stems(reference):
        assert (out / stem.relative_to(reference)).read_bytes() == stem.read_bytes()
    assert dead_stems and all(path.read_bytes() == data for path, data in dead_stems.items())
    # each killed run held the output's lease: the next run took it over, and only then removed its scratch
    assert not any(p.exists() for p in leftovers if "/_tmp/" in p.as_posix())

    # a rerun over the same inputs commits nothing new, leaves every committed file byte-identical,
    # and (clean_after_seconds=0: the leftovers are now "old") removes what the dead runs left behind
    listed = _listed(out)
    committed = {k: v for k, v in local_files(out).items()
                 if not k.startswith("_tmp/") and (not k.startswith("spectrograms/") or k in listed)}
    assert main(run_args(config, str(corpus), str(out), str(tiny_checkpoint), "--set", "run.run_id=again",
                         "--set", "run.clean_after_seconds=0")) == 0
    again = json.loads((out / "runs" / "again.json").read_text())
    assert again["counts"]["rows"] == 0 and again["shards"] == [] and again["counts"]["skipped"] == tracks
    after = local_files(out)
    assert {k: after[k] for k in committed} == committed
    assert set(after) - set(committed) == {"runs/again.json", "runs/again.keys.parquet", "runs/again.tracks.parquet"}
    assert not (out / "_tmp").exists()
    assert {p.relative_to(out).as_posix() for p in _shards(out)} == _listed(out)


def test_a_retried_bundle_rewrites_the_same_files_with_the_same_bytes(good_corpus, tiny_checkpoint, tmp_path):
    folder, files = good_corpus
    out = tmp_path / "out"
    config = load_config(write_config(tmp_path / "c.yaml", output={"row_group_bytes": 1024**2}),
                         [f"input.uri={folder}", f"output.uri={out}", f"model.checkpoint={tiny_checkpoint}",
                          "run.run_id=retry"])
    job = make_job(config)

    def attempt() -> tuple[list[str], dict[str, bytes]]:
        """One execution of the bundle SeparateTrack → WriteShards, as a runner's retry would redo it."""
        separate = SeparateTrack(job)
        separate.setup()
        outputs = list(separate.process((TrackRef(str(files["a"]), "a"), 0)))
        outputs += [out.value for out in separate.finish_bundle() if not isinstance(out, TaggedOutput)]
        separate.teardown()
        rows = [r for r in outputs if isinstance(r, dict)]
        writer = WriteShards(job)
        writer.start_bundle()
        shards = [s for row in rows for s in writer.process(row)]
        shards += [value.value for value in writer.finish_bundle()]
        published = {k: v for k, v in local_files(out).items() if not k.startswith("_tmp/")}
        return shards, published

    first_shards, first = attempt()
    assert len(first_shards) >= 1 and sorted(first) == sorted(first_shards + [
        "stems/a/v0/instruments.wav", "stems/a/v0/vocals.wav"])
    second_shards, second = attempt()
    assert second_shards == first_shards and second == first


def test_a_process_killed_while_publishing_leaves_its_temporary_only_in_the_run_scratch(tmp_path):
    out = tmp_path / "out"
    source = tmp_path / "stem.wav"
    source.write_bytes(b"finished stem")
    script = f"""
import os, signal
from stemforge.pipeline import storage
storage._replace = lambda tmp, path: os.kill(os.getpid(), signal.SIGKILL)
storage.publish_file({str(source)!r}, {str(out / "stems/k/v0/vocals.wav")!r}, {{}},
                     staging={str(out / "_tmp/dead/publish")!r})
"""
    proc = subprocess.run([PYTHON, "-c", script], check=False, cwd=REPO, env=clean_env(), capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "stems" / "k" / "v0" / "vocals.wav").exists()
    left = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    assert len(left) == 1 and left[0].startswith("_tmp/dead/publish/"), left
    config = load_config(write_config(tmp_path / "c.yaml"), [f"output.uri={out}"])
    # a recent leftover may belong to a live run: kept; once older than clean_after_seconds: removed
    assert clean_leftovers(config, "next", {}, time.time()) == []
    assert clean_leftovers(config, "next", {}, time.time() + config.run.clean_after_seconds + 1)
    assert not any(p.is_file() for p in out.rglob("*"))


def test_clean_leftovers_spares_live_and_committed_runs(tmp_path):
    out = tmp_path / "out"
    old = time.time() - 2 * 86400

    def touch(relative: str, stamp: float | None = None) -> Path:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        if stamp:
            os.utime(path, (stamp, stamp))
        return path

    touch("_tmp/dead/abc/0-0000000.npy", old)
    touch("spectrograms/dead/part-1.parquet", old)
    touch("_tmp/live/abc/0-0000000.npy")
    touch("spectrograms/live/part-2.parquet", old)  # a live run: its _tmp is fresh, so all of it stays
    touch("spectrograms/done/part-listed.parquet", old)
    touch("spectrograms/done/part-orphan.parquet", old)  # a failed bundle attempt of a committed run
    touch("_tmp/done/publish/x.tmp", old)
    touch("_tmp/mine/abc/0-0000000.npy")  # the id this run is about to use: a dead earlier attempt
    (out / "runs").mkdir()
    (out / "runs" / "done.json").write_text(json.dumps({"status": "committed", "shards": [
        "spectrograms/done/part-listed.parquet"]}))
    config = load_config(write_config(tmp_path / "c.yaml"), [f"output.uri={out}"])
    removed = clean_leftovers(config, "mine", {}, time.time())
    assert sorted(Path(p).relative_to(out).as_posix() for p in removed) == [
        "_tmp/dead", "_tmp/done", "_tmp/mine", "spectrograms/dead", "spectrograms/done/part-orphan.parquet"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "_tmp/live/abc/0-0000000.npy", "runs/done.json", "spectrograms/done/part-listed.parquet",
        "spectrograms/live/part-2.parquet"]


def test_a_committed_run_id_is_never_overwritten_and_a_missing_shard_is_never_committed(
        good_corpus, tiny_checkpoint, tmp_path, capsys):
    folder, files = good_corpus
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml")
    assert main(run_args(config, str(files["c"]), str(out), str(tiny_checkpoint), "--set", "run.run_id=once")) == 0
    manifest = (out / "runs" / "once.json").read_bytes()
    capsys.readouterr()
    assert main(run_args(config, str(folder), str(out), str(tiny_checkpoint), "--set", "run.run_id=once")) == 2
    err = capsys.readouterr().err.strip()
    assert "already committed" in err and err.count("\n") == 0
    assert (out / "runs" / "once.json").read_bytes() == manifest

    job = make_job(load_config(config, [f"input.uri={folder}", f"output.uri={out}",
                                        f"model.checkpoint={tiny_checkpoint}", "run.run_id=lost"]))
    listed = [{"track_key": "a", "source": str(files["a"]), "size": 1, "version": None}]
    missing = "^run lost not committed: 1 shard is missing, e.g. spectrograms/lost/part-gone.parquet$"
    with pytest.raises(RuntimeError, match=missing):
        commit(None, job, listed, [], ["spectrograms/lost/part-gone.parquet"], [], [], [])
    assert not (out / "runs" / "lost.json").exists()


def test_a_commit_removes_its_unlisted_shards(good_corpus, tiny_checkpoint, tmp_path):
    folder, files = good_corpus
    out = tmp_path / "out"
    job = make_job(load_config(write_config(tmp_path / "c.yaml"), [
        f"input.uri={folder}", f"output.uri={out}", f"model.checkpoint={tiny_checkpoint}", "run.run_id=tidy"]))
    shards = out / "spectrograms" / "tidy"
    shards.mkdir(parents=True)
    for name in ("part-listed.parquet", "part-failed-attempt.parquet"):
        (shards / name).write_bytes(b"x")
    listed = [{"track_key": "a", "source": str(files["a"]), "size": 1, "version": None}]
    commit(None, job, listed, [], ["spectrograms/tidy/part-listed.parquet"], [], [], [])
    assert sorted(p.name for p in shards.iterdir()) == ["part-listed.parquet"]


def test_tracks_left_open_by_a_failed_bundle_are_dropped_not_written_by_the_next(good_corpus, tiny_checkpoint,
                                                                                 tmp_path):
    folder, files = good_corpus
    config = load_config(write_config(tmp_path / "c.yaml", model={"batch_size": 64}),
                         [f"input.uri={folder}", f"output.uri={tmp_path / 'out'}",
                          f"model.checkpoint={tiny_checkpoint}", "run.run_id=failed"])
    separate = SeparateTrack(make_job(config))
    separate.setup()
    separate.start_bundle()
    outputs = list(separate.process((TrackRef(str(files["a"]), "a"), 0)))
    # its windows wait for a batch of 64: the track stays open, nothing written yet
    assert [o for o in outputs if not isinstance(o, TaggedOutput)] == []
    [left] = list(separate._open)
    scratch = Path(left.track.scratch_path("x")).parent
    assert scratch.exists()
    separate.start_bundle()  # the runner retries the failed bundle elsewhere; this instance starts a new one
    assert list(separate.finish_bundle()) == [] and not scratch.exists()
    separate.teardown()
    assert not (tmp_path / "out" / "stems").exists()
