"""What several test suites share: the tiny model settings, a tiny random net, a config writer."""

from pathlib import Path
from typing import Any

import torch
import yaml

from model import CascadedNet

TINY = {"n_fft": 512, "hop_length": 256, "cropsize": 256}


def tiny_net(seed: int) -> CascadedNet:
    """An n_fft 512 / nout 8 network with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    net = CascadedNet(TINY["n_fft"], nout=8, nout_lstm=16)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """A tiny-model config (float WAV stems, float32 rows) with the given sections merged over it."""
    data: dict[str, Any] = {
        "model": dict(TINY, batch_size=3, device="cpu"),
        "output": {"stem_format": "wav", "stem_subtype": "FLOAT", "spectrogram_dtype": "float32",
                   "segment_frames": 100},
        "run": {"chunk_seconds": 1.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(data))
    return path
