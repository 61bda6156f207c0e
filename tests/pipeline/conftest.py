"""Fixtures for pipeline tests: a generated corpus (the tiny checkpoint comes from tests/conftest.py)."""

from pathlib import Path

import pytest
from pipeline_support import write_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)
