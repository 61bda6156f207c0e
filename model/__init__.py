"""stemforge.model: the VR networks (CascadedNet, UVR's CascadedASPPNet), checkpoint I/O and detection,
UVR's known-checkpoint table, and vocal-remover-exact spectrogram separation.

Imports nothing from Beam, so it can be used (and tested) on its own.
"""

from model.aspp import ASPP_CAPACITIES, AsppCapacity, CascadedASPPNet
from model.checkpoint import (
    CheckpointError,
    CheckpointState,
    file_sha256,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from model.detect import NetSpec, detect_net, infer_config
from model.device_separator import DeviceSeparator
from model.devices import resolve_device
from model.fusion import fold_batchnorm
from model.inference import InferenceModel
from model.nets import BaseNet, CascadedNet
from model.postprocess import adjust_aggression, artifact_weights, merge_artifacts
from model.resolve import BandParamsRequired, ModelSetup, ShippedGeometry, resolve_model
from model.separator import Aggression, Separator
from model.uvr_models import FLIPPED_STEMS, KnownModel, known_model, secondary_stem, stem_slug, uvr_hash
from model.windows import WindowGrid, crop_frames, make_padding

__all__ = [
    "ASPP_CAPACITIES",
    "FLIPPED_STEMS",
    "Aggression",
    "AsppCapacity",
    "BandParamsRequired",
    "BaseNet",
    "CascadedASPPNet",
    "CascadedNet",
    "CheckpointError",
    "CheckpointState",
    "DeviceSeparator",
    "InferenceModel",
    "KnownModel",
    "ModelSetup",
    "NetSpec",
    "Separator",
    "ShippedGeometry",
    "WindowGrid",
    "adjust_aggression",
    "artifact_weights",
    "crop_frames",
    "detect_net",
    "file_sha256",
    "fold_batchnorm",
    "infer_config",
    "known_model",
    "load_checkpoint",
    "make_padding",
    "merge_artifacts",
    "read_checkpoint",
    "resolve_device",
    "resolve_model",
    "save_checkpoint",
    "secondary_stem",
    "stem_slug",
    "uvr_hash",
]
