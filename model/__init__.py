"""stemforge.model: the VR networks (CascadedNet, UVR's CascadedASPPNet), checkpoint I/O and detection,
UVR's known-checkpoint table, and vocal-remover-exact spectrogram separation.

Imports nothing from Beam, so it can be used (and tested) on its own.

Names load on first use, so `stemforge --help`, `inspect` and `report` never import torch.
"""

from __future__ import annotations

from transforms.lazy_names import lazy_names

_HOMES = {  # each public name and the module that defines it
    "ASPP_CAPACITIES": "model.aspp",
    "AsppCapacity": "model.aspp",
    "CascadedASPPNet": "model.aspp",
    "CheckpointError": "model.errors",
    "CheckpointState": "model.checkpoint",
    "file_sha256": "model.checkpoint",
    "load_checkpoint": "model.checkpoint",
    "read_checkpoint": "model.checkpoint",
    "save_checkpoint": "model.checkpoint",
    "NetSpec": "model.detect",
    "detect_net": "model.detect",
    "infer_config": "model.detect",
    "DeviceSeparator": "model.device_separator",
    "resolve_device": "model.devices",
    "fold_batchnorm": "model.fusion",
    "InferenceModel": "model.inference",
    "BaseNet": "model.nets",
    "CascadedNet": "model.nets",
    "adjust_aggression": "model.postprocess",
    "artifact_weights": "model.postprocess",
    "merge_artifacts": "model.postprocess",
    "BandParamsRequired": "model.resolve",
    "ModelSetup": "model.resolve",
    "ShippedGeometry": "model.resolve",
    "resolve_model": "model.resolve",
    "Aggression": "model.separator",
    "Separator": "model.separator",
    "FLIPPED_STEMS": "model.uvr_models",
    "KnownModel": "model.uvr_models",
    "known_model": "model.uvr_models",
    "secondary_stem": "model.uvr_models",
    "stem_slug": "model.uvr_models",
    "uvr_hash": "model.uvr_models",
    "WindowGrid": "model.windows",
    "crop_frames": "model.windows",
    "make_padding": "model.windows",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
