"""Fixtures of the reliability tests: a tiny random-weight checkpoint and a small valid corpus.

Servers (moto, http.server, Beam's job service and worker pool) are started inside each test
through the context managers of reliability_support, never shared between tests.
"""

import shutil
from pathlib import Path

import pytest
import torch
from reliability_support import write_good_corpus
from stemforge_testing import tiny_net

from stemforge.model import save_checkpoint


@pytest.fixture(scope="session")
def other_ckpt(tmp_path_factory) -> Path:
    """A second checkpoint of the same shape with other weights (another fingerprint)."""
    path = tmp_path_factory.mktemp("rel-ckpt2") / "other.pth"
    save_checkpoint(tiny_net(4), str(path))
    return path


@pytest.fixture(scope="session")
def good_corpus(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("rel-corpus")
    return folder, write_good_corpus(folder)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread while a test runs in this process: on a small shared machine torch's
    spinning thread pool makes the tiny model many times slower (subprocesses get OMP_NUM_THREADS=1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def local_reference(good_corpus, tiny_checkpoint, tmp_path_factory):
    """A plain local run over the good corpus plus one broken file: what every other storage and
    runner must reproduce. Returns (input folder, output folder, committed rows, manifest)."""
    import fsspec
    from reliability_support import committed_manifests, committed_rows, run_args
    from stemforge_testing import write_config

    from stemforge.pipeline.cli import main

    work = tmp_path_factory.mktemp("rel-local")
    folder = work / "corpus"
    shutil.copytree(good_corpus[0], folder)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(run_args(write_config(work / "c.yaml"), str(folder), str(work / "out"), str(tiny_checkpoint))) == 0
    finally:
        torch.set_num_threads(before)
    fs = fsspec.filesystem("file")
    root = str(work / "out")
    return folder, work / "out", committed_rows(fs, root), committed_manifests(fs, root)[0]
