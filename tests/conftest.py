"""Root of the test tree: its folder is on sys.path, so every suite can import `stemforge_testing`;
fixtures shared by the pipeline and reliability suites live here."""

from pathlib import Path

import pytest
from stemforge_testing import tiny_net

from stemforge.model import save_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random-weight network saved in vocal-remover's state-dict format."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(tiny_net(3), str(path))
    return path
