"""stemforge.model: CascadedNet, checkpoint I/O and vocal-remover-exact spectrogram separation.

Imports nothing from Beam, so it can be used (and tested) on its own.
"""

from model.checkpoint import (
    CheckpointError,
    file_sha256,
    infer_config,
    load_checkpoint,
    save_checkpoint,
)
from model.devices import resolve_device
from model.fusion import fold_batchnorm
from model.inference import InferenceModel
from model.nets import BaseNet, CascadedNet
from model.postprocess import artifact_weights, merge_artifacts
from model.separator import Separator
from model.windows import WindowGrid, crop_frames, make_padding

__all__ = [
    "BaseNet",
    "CascadedNet",
    "CheckpointError",
    "InferenceModel",
    "Separator",
    "WindowGrid",
    "artifact_weights",
    "crop_frames",
    "file_sha256",
    "fold_batchnorm",
    "infer_config",
    "load_checkpoint",
    "make_padding",
    "merge_artifacts",
    "resolve_device",
    "save_checkpoint",
]
