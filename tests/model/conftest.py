"""Fixtures for model/ tests: a small randomised network and a single torch thread."""

from __future__ import annotations

import pytest
import torch
from stemforge_testing import randomise_batchnorm

from stemforge.model import CascadedNet


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each test on one intra-op thread: the CI box and dev boxes are small and shared, and
    OpenMP barriers across contended cores make tiny convolutions seconds slower, not faster."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def small_net() -> CascadedNet:
    """CascadedNet(n_fft=256, nout=8, nout_lstm=32) with random weights and BatchNorm stats, eval mode.

    Shared by many tests: never train or modify it in place.
    """
    torch.manual_seed(1234)
    return randomise_batchnorm(CascadedNet(256, nout=8, nout_lstm=32)).eval()
