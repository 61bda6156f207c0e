"""Claim 7 (slow): a soak run. 2,000 generated short files through the DirectRunner with 2 worker
processes; the resident memory of the whole process group stays flat and every file is committed
exactly once. Run with `pytest -m slow tests/reliability/test_reliability_soak.py`."""

import json
import os
import threading
import time

import fsspec
import numpy as np
import pytest
import soundfile as sf
from reliability_support import committed_rows, row_keys, run_args, start_cli, stop_group
from stemforge_testing import write_config

FILES = int(os.environ.get("STEMFORGE_SOAK_FILES", "2000"))
PAGE = os.sysconf("SC_PAGE_SIZE")


def _group_rss(pgid: int) -> int:
    """Resident bytes of every process in a process group, from /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., rss is the 22nd
            total += int(fields[21]) * PAGE
    return total


@pytest.mark.slow
def test_soak_2000_short_files_memory_stays_flat_and_each_is_committed_once(tiny_checkpoint, tmp_path):
    corpus = tmp_path / "corpus"
    rng = np.random.default_rng(0)
    for i in range(FILES):
        folder = corpus / f"{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        seconds = 0.05 + 0.25 * rng.random()
        wave = 0.1 * rng.standard_normal((int(seconds * 22050), 1 + i % 2)).astype(np.float32)
        sf.write(folder / f"clip{i:05d}.wav", wave, 22050 if i % 3 else 44100, subtype="PCM_16")
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml", model={"batch_size": 8})
    proc = start_cli(run_args(config, str(corpus), str(out), str(tiny_checkpoint), "--direct_num_workers", "2",
                              "--direct_running_mode", "multi_processing", "--set", "run.run_id=soak"),
                     log=tmp_path / "soak.log")
    samples: list[tuple[float, int]] = []
    start = time.monotonic()

    def sample() -> None:
        while proc.poll() is None:
            samples.append((time.monotonic() - start, _group_rss(proc.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = proc.wait(timeout=3000)
    finally:
        stop_group(proc)
        sampler.join()
    elapsed = time.monotonic() - start
    assert code == 0, (tmp_path / "soak.log").read_text()[-4000:]

    manifest = json.loads((out / "runs" / "soak.json").read_text())
    assert manifest["counts"]["succeeded"] == FILES and manifest["counts"]["failed"] == 0
    rows = committed_rows(fsspec.filesystem("file"), str(out))
    assert row_keys(rows) == sorted(set(row_keys(rows)))
    assert len({r["track_key"] for r in rows}) == FILES
    assert len(list((out / "stems").rglob("vocals.wav"))) == FILES
    assert not (out / "_tmp").exists()

    # flat: between start-up (the first fifth of the run) and shut-down (the last tenth), the peak of
    # the last third is within 15 % (+64 MB) of the peak of the first third
    steady = [(t, rss) for t, rss in samples if elapsed / 5 < t < elapsed * 0.9]
    third = max(len(steady) // 3, 1)
    early, late = max(r for _, r in steady[:third]), max(r for _, r in steady[-third:])
    report = {"files": FILES, "seconds": round(elapsed, 1), "early_peak_mb": early >> 20, "late_peak_mb": late >> 20,
              "max_mb": max(r for _, r in samples) >> 20}
    (tmp_path / "soak.json").write_text(json.dumps(report))
    print("soak:", report)
    assert late <= early * 1.15 + (64 << 20), report
