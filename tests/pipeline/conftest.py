"""Fixtures for pipeline tests: a generated corpus and a tiny random-weight checkpoint."""

from pathlib import Path

import pytest
from pipeline_support import write_corpus
from stemforge_testing import tiny_net

from model import save_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(tiny_net(3), str(path))
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)
