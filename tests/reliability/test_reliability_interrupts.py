"""SIGINT and SIGTERM stop a run in one line with exit 130 / 143 and leave no local scratch, also the scratch of
Beam's worker subprocesses; a run removes the local scratch of dead runs at start and never a live run's."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
from reliability_support import PYTHON, REPO, clean_env, group_gone, run_args, sine
from stemforge_testing import write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.scratch import OWNER, process_start

MP = ("--direct_num_workers", "2", "--direct_running_mode", "multi_processing")


def _corpus(folder: Path, count: int, seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sf.write(folder / f"t{i}.wav", sine(seconds, seed=50 + i), 44100, subtype="FLOAT")
    return folder


def _scratch(tmp: Path) -> list[Path]:
    return sorted(p for p in tmp.iterdir() if p.name.startswith("stemforge-"))


def _working(tmp: Path) -> bool:
    """A track is being prepared: its scratch folder exists (``track-*`` in a run's root; before roots
    existed, a ``stemforge-*`` folder other than a shard writer's)."""
    names = [name for _, folders, _ in os.walk(tmp) for name in folders]
    return any(n.startswith("track-")
               or n.startswith("stemforge-") and n.split("-")[1] not in ("run", "shards", "stems") for n in names)


@pytest.mark.parametrize(("signum", "code", "beam_args"), [
    (signal.SIGINT, 130, ()),
    (signal.SIGTERM, 143, MP),
], ids=["sigint-in-process", "sigterm-multi-processing"])
def test_a_signalled_run_stops_in_one_line_with_the_shell_code_and_leaves_no_scratch(
        tiny_checkpoint, tmp_path, signum, code, beam_args):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    corpus = _corpus(tmp_path / "corpus", 4, 30.0)
    args = run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(tmp_path / "out"), str(tiny_checkpoint),
                    "--quiet", *beam_args)
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([PYTHON, "-m", "stemforge", *args], stdout=subprocess.DEVNULL, stderr=stderr,
                                env=clean_env(TMPDIR=str(tmp)), cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not _working(tmp):
            assert proc.poll() is None and time.monotonic() < deadline, "the run never started a track"
            time.sleep(0.1)
        time.sleep(1.0)
        before = log.stat().st_size  # Beam's worker subprocesses log their start-up there
        os.kill(proc.pid, signum)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    group_gone(proc.pid)  # no worker subprocess outlives the run
    said = log.read_bytes()[before:].decode()
    assert said.splitlines() == [f"stemforge: stopped by {signum.name} (exit {code}); local scratch removed"]
    assert "Traceback" not in log.read_text()
    assert proc.returncode == code
    assert _scratch(tmp) == []
    assert not (tmp_path / "out" / "runs").exists()


def _owned(tmp: Path, name: str, pid: int, host: str | None = None) -> Path:
    folder = tmp / name
    (folder / "track-x").mkdir(parents=True)
    (folder / "track-x" / "mix.f32").write_bytes(b"\0" * 64)
    owner = {"pid": pid, "host": host or socket.gethostname(), "process_start": process_start(pid),
             "created": time.time()}
    (folder / OWNER).write_text(json.dumps(owner))
    return folder


def test_a_run_removes_the_scratch_of_dead_runs_and_keeps_live_ones(tiny_checkpoint, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)  # recomputed from TMPDIR
    live = subprocess.Popen(["sleep", "300"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        kept = [_owned(tmp, "stemforge-run-live", live.pid),
                _owned(tmp, "stemforge-run-other-host", dead.pid, host="some-other-host"),
                tmp / "stemforge-fresh-unowned"]
        kept[-1].mkdir()
        old = tmp / "stemforge-old-unowned"  # an older version's folder, untouched for two days
        old.mkdir()
        (old / "x.parquet").write_bytes(b"x")
        os.utime(old, (time.time() - 2 * 86400,) * 2)
        gone = [_owned(tmp, "stemforge-run-dead", dead.pid), old]
        corpus = _corpus(tmp_path / "corpus", 1, 0.5)
        out = tmp_path / "out"
        assert main(run_args(write_config(tmp_path / "c.yaml"), str(corpus), str(out), str(tiny_checkpoint))) == 0
        assert all(folder.exists() for folder in kept)
        assert not any(folder.exists() for folder in gone)
        assert sorted(_scratch(tmp)) == sorted(kept)  # and the run's own root is gone
    finally:
        live.kill()
        live.wait()
