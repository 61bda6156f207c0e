"""Claim 6: cluster runners. The same pipeline runs unchanged on Beam's portable runner (a local job
service and an external worker pool, started here) and commits the DirectRunner's rows; the sdist
that `--setup_file` builds installs into a fresh virtualenv and the pipeline runs from it."""

import itertools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import fsspec
import pytest
from reliability_support import (
    PYTHON,
    REPO,
    assert_same_rows,
    beam_portable_cluster,
    clean_env,
    cli,
    committed_manifests,
    committed_rows,
    run_args,
)
from stemforge_testing import progress_snapshots, write_config

LOCAL = fsspec.filesystem("file")


def test_portable_runner_with_job_service_and_worker_pool_commits_the_direct_runners_rows(
        local_reference, tiny_checkpoint, tmp_path):
    folder, _, expected, reference = local_reference
    out = tmp_path / "out"
    with beam_portable_cluster(tmp_path) as (job_endpoint, pool):
        result = cli(run_args(write_config(tmp_path / "c.yaml"), str(folder), str(out), str(tiny_checkpoint),
                              "--runner=PortableRunner", f"--job_endpoint={job_endpoint}",
                              "--environment_type=EXTERNAL", f"--environment_config={pool}",
                              "--progress-interval=0.2"), timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Requesting worker at" in (tmp_path / "job-service.log").read_text()  # it really ran there
    assert "Starting worker with command" in (tmp_path / "worker-pool.log").read_text()
    [manifest] = committed_manifests(LOCAL, str(out))
    # the workers' progress reached the launcher while they ran, and ended at the committed totals
    shown, done = progress_snapshots(result.stderr)
    assert any(s[1] > 0 for s in shown), result.stderr[-4000:]
    assert all(all(a >= b for a, b in zip(after, before)) for before, after in itertools.pairwise(shown))
    counts = manifest["counts"]
    assert done == (counts["inputs"], counts["variants"], counts["errors"], counts["failed"], counts["skipped"])
    assert manifest["tracks"] == reference["tracks"] and manifest["counts"] == reference["counts"]
    assert_same_rows(expected, committed_rows(LOCAL, str(out)))
    assert not (out / "_tmp").exists()


def test_dask_runner_on_a_local_cluster_of_two_worker_processes_commits_the_direct_runners_rows(
        local_reference, tiny_checkpoint, tmp_path):
    distributed = pytest.importorskip("distributed")
    folder, _, expected, reference = local_reference
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            workers = set(client.run(os.getpid).values()) - {os.getpid()}
        result = cli(run_args(write_config(tmp_path / "c.yaml"), str(folder), str(out), str(tiny_checkpoint),
                              "--runner=DaskRunner", f"--dask_client_address={cluster.scheduler_address}",
                              "--progress-interval=0.2"), timeout=240)
    assert len(workers) == 2  # two worker processes besides this one
    assert result.returncode == 0, result.stderr[-4000:]
    [manifest] = committed_manifests(LOCAL, str(out))
    assert manifest["tracks"] == reference["tracks"] and manifest["counts"] == reference["counts"]
    assert manifest["shards"]  # what WriteShards emits from finish_bundle reached the commit
    assert_same_rows(expected, committed_rows(LOCAL, str(out)))
    errors = (out / "errors" / f"{manifest['run_id']}.jsonl").read_text()
    assert errors.count("\n") == reference["counts"]["errors"] == 1 and "broken.wav" in errors  # tagged outputs kept
    _, done = progress_snapshots(result.stderr)
    counts = manifest["counts"]
    assert done == (counts["inputs"], counts["variants"], counts["errors"], counts["failed"], counts["skipped"])


def test_the_sdist_installs_into_a_fresh_virtualenv_and_runs_the_pipeline(local_reference, tiny_checkpoint, tmp_path):
    # build the sdist from a copy of the sources, as `--setup_file` does, without touching the checkout
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("stemforge", "pipeline", "model", "transforms", "shards", "training"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    env = clean_env()
    subprocess.run([PYTHON, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")], cwd=source, env=env,
                   check=True, capture_output=True)
    [sdist] = (tmp_path / "dist").glob("stemforge-*.tar.gz")

    # a fresh virtualenv; its dependencies come from this environment's site-packages (a path entry,
    # so that environment's editable install of stemforge stays invisible), stemforge from the sdist
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([PYTHON, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index",
                                "--no-build-isolation", str(sdist)], check=False, cwd=tmp_path, env=env,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    probe = ("import importlib.util, stemforge.pipeline, stemforge.model, stemforge.transforms, stemforge.shards, "
             "stemforge.training; print(stemforge.pipeline.__file__); "
             "print([n for n in ('pipeline', 'model', 'transforms', 'shards', 'training') "
             "if importlib.util.find_spec(n)])")
    where, top_level = subprocess.run([python, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True,
                                      text=True).stdout.splitlines()
    assert where.startswith(str(venv))
    assert top_level == "[]"  # installed under stemforge.* only: nothing at the top of site-packages to collide

    folder, _, expected, _ = local_reference
    out = tmp_path / "out"
    result = cli(run_args(write_config(tmp_path / "c.yaml"), str(folder), str(out), str(tiny_checkpoint)),
                 cwd=tmp_path, python=python, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert_same_rows(expected, committed_rows(LOCAL, str(out)))
