"""Fixtures for pipeline tests: a generated corpus and a tiny random-weight checkpoint."""

from pathlib import Path

import pytest
import torch
from pipeline_support import TINY, write_corpus

from model import CascadedNet, save_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(3)
    net = CascadedNet(TINY["n_fft"], nout=8, nout_lstm=16)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(net, str(path))
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)
