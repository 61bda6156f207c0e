"""stemforge.model: the VR networks (CascadedNet, UVR's CascadedASPPNet), checkpoint I/O and detection,
UVR's known-checkpoint table, and vocal-remover-exact spectrogram separation.

Imports nothing from Beam, so it can be used (and tested) on its own.

Names load on first use, so `stemforge --help`, `inspect` and `report` never import torch.
"""

from __future__ import annotations

from stemforge.transforms.lazy_names import lazy_names

_HOMES = {  # each public name and the module that defines it
    "ASPP_CAPACITIES": "stemforge.model.aspp",
    "AsppCapacity": "stemforge.model.aspp",
    "CascadedASPPNet": "stemforge.model.aspp",
    "CheckpointError": "stemforge.model.errors",
    "CheckpointState": "stemforge.model.checkpoint",
    "file_sha256": "stemforge.model.checkpoint",
    "load_checkpoint": "stemforge.model.checkpoint",
    "read_checkpoint": "stemforge.model.checkpoint",
    "save_checkpoint": "stemforge.model.checkpoint",
    "NetSpec": "stemforge.model.detect",
    "detect_net": "stemforge.model.detect",
    "infer_config": "stemforge.model.detect",
    "DeviceSeparator": "stemforge.model.device_separator",
    "resolve_device": "stemforge.model.devices",
    "fold_batchnorm": "stemforge.model.fusion",
    "InferenceModel": "stemforge.model.inference",
    "Aggression": "stemforge.model.masks",
    "MaskAssembler": "stemforge.model.masks",
    "mask_grids": "stemforge.model.masks",
    "BaseNet": "stemforge.model.nets",
    "CascadedNet": "stemforge.model.nets",
    "adjust_aggression": "stemforge.model.postprocess",
    "artifact_weights": "stemforge.model.postprocess",
    "merge_artifacts": "stemforge.model.postprocess",
    "BandParamsRequired": "stemforge.model.resolve",
    "ModelSetup": "stemforge.model.resolve",
    "ShippedGeometry": "stemforge.model.resolve",
    "resolve_model": "stemforge.model.resolve",
    "Separator": "stemforge.model.separator",
    "FLIPPED_STEMS": "stemforge.model.uvr_models",
    "KnownModel": "stemforge.model.uvr_models",
    "known_model": "stemforge.model.uvr_models",
    "secondary_stem": "stemforge.model.uvr_models",
    "stem_slug": "stemforge.model.uvr_models",
    "uvr_hash": "stemforge.model.uvr_models",
    "WindowGrid": "stemforge.model.windows",
    "crop_frames": "stemforge.model.windows",
    "make_padding": "stemforge.model.windows",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
