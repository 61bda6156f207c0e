"""audio-separator (0.47.1) as an independent reference for UVR's VR procedure, imported without its heavy
top level: its package ``__init__`` pulls in onnxruntime and every other architecture, which the VR path
does not use. The Makefile installs the wheel with ``--no-deps``; its VR modules need only torch, numpy,
scipy, librosa, samplerate, soundfile, audioread, pydub, six and tqdm, which the test extras install.

Tests call :func:`uvr_or_skip`, which skips cleanly when the package is absent, and fails in CI.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import types
import warnings
from pathlib import Path
from typing import Any

PACKAGES = ("audio_separator", "audio_separator.separator")


def _stub_packages() -> None:
    """Register the two package levels as plain namespaces, so importing a submodule does not run them."""
    spec = importlib.util.find_spec("audio_separator")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("audio-separator is not installed (make venv installs it with --no-deps)")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, folder in zip(PACKAGES, (root, root / "separator")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(folder)]
            sys.modules[name] = module


@functools.cache
def uvr() -> dict[str, Any]:
    """audio-separator's VR modules: ``nets``, ``nets_new``, ``spec_utils``, ``ModelParameters``, the
    ``VRSeparator`` class and the folder of its band tables."""
    _stub_packages()
    base = "audio_separator.separator"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pydub's "Couldn't find ffmpeg": it never writes here
        importlib.import_module(f"{base}.architectures.vr_separator")
    nets = importlib.import_module(f"{base}.uvr_lib_v5.vr_network.nets")
    params = importlib.import_module(f"{base}.uvr_lib_v5.vr_network.model_param_init")
    return {
        "nets": nets,
        "nets_new": importlib.import_module(f"{base}.uvr_lib_v5.vr_network.nets_new"),
        "spec_utils": importlib.import_module(f"{base}.uvr_lib_v5.spec_utils"),
        "ModelParameters": params.ModelParameters,
        "VRSeparator": importlib.import_module(f"{base}.architectures.vr_separator").VRSeparator,
        "modelparams": Path(nets.__file__).parent / "modelparams",
    }


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def uvr_or_skip() -> dict[str, Any]:
    """:func:`uvr`, or skip the calling test when audio-separator is not installed; in CI (:func:`in_ci`) a
    missing reference fails the test instead: the UVR-equivalence tests must run there, never skip silently."""
    import pytest

    try:
        return uvr()
    except ImportError as exc:
        if in_ci():
            pytest.fail(f"{exc}; in CI the UVR reference is required: the equivalence tests may not skip")
        pytest.skip(str(exc))


def uvr_test_net(kind: int | str, bands: Any, wave: Any) -> Any:
    """A random-weight network in UVR's layout for ``bands``: ``kind`` an int is a CascadedASPPNet capacity
    class (e.g. 123812), a string a VR 5.1 CascadedNet's nout (e.g. "48", nout_lstm 128). BatchNorm gets
    non-trivial statistics and the output layer is set so the masks on ``wave`` spread over (0, 1)."""
    import numpy as np
    import torch
    from stemforge_testing import randomise_batchnorm, spread_mask

    from stemforge.model import CascadedASPPNet, CascadedNet
    from stemforge.transforms.multiband import analyse

    torch.manual_seed(1)
    aspp = isinstance(kind, int)
    net = CascadedASPPNet(bands.n_fft, kind) if aspp else CascadedNet(bands.n_fft, nout=int(kind), nout_lstm=128)
    net = randomise_batchnorm(net).eval()
    spec = analyse(wave, bands, is_v51=not aspp).spec
    mag = (np.abs(spec) / np.abs(spec).max())[None, :, :, :512].astype(np.float32)
    x = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(mag)), (0, 512 - mag.shape[-1]))
    return spread_mask(net, x, target_std=2.0)


def uvr_stems(folder: Path, net: Any, kind: int | str, bands_name: str, wav: Path, primary: str = "Instrumental",
              aggression: int = 5, tta: bool = False, high_end: bool = False, window: int = 512,
              ) -> tuple[Any, Any]:
    """UVR's primary and secondary stems of the file ``wav`` at 44.1 kHz, before its output normalisation:
    audio-separator's ``VRSeparator`` driven directly (``loading_mix``, ``inference_vr``, ``spec_to_wav``)
    with ``net``'s weights saved in UVR's layout and the model data given explicitly."""
    import logging

    import librosa
    import numpy as np
    import torch

    ref = uvr_or_skip()
    path = folder / "uvr-model.pth"
    torch.save(net.state_dict(), path)
    data: dict[str, Any] = {"vr_model_param": bands_name, "primary_stem": primary}
    if not isinstance(kind, int):
        data.update(nout=int(kind), nout_lstm=128)
    common = {"logger": logging.getLogger("uvr-reference"), "log_level": logging.WARNING,
              "torch_device": torch.device("cpu"), "torch_device_cpu": torch.device("cpu"), "torch_device_mps": None,
              "model_name": "model", "model_path": str(path), "model_data": data, "output_dir": str(folder),
              "output_format": "wav", "normalization_threshold": 0.9, "amplification_threshold": 0.0,
              "enable_denoise": False, "invert_using_spec": False, "sample_rate": 44100, "use_soundfile": True}
    arch = {"batch_size": 1, "window_size": window, "aggression": aggression, "enable_tta": tta,
            "enable_post_process": False, "post_process_threshold": 0.2, "high_end_process": high_end}
    sep = ref["VRSeparator"](common, arch)
    sep.audio_file_path, sep.wav_subtype = str(wav), "FLOAT"
    sep._ensure_model_loaded(kind if isinstance(kind, int) else 56817)
    y, v = sep.inference_vr(sep.loading_mix(), sep.torch_device, sep.aggressiveness)
    stems = [sep.spec_to_wav(np.nan_to_num(s)) for s in (y, v)]
    if sep.model_samplerate != 44100:
        stems = [librosa.resample(s, orig_sr=sep.model_samplerate, target_sr=44100) for s in stems]
    return stems[0], stems[1]


def uvr_mixture_spectrogram(bands_name: str, wav: Path, is_v51: bool) -> Any:
    """UVR's combined multi-band spectrogram of the file ``wav`` (``VRSeparator.loading_mix``)."""
    import logging

    import torch

    ref = uvr_or_skip()
    data: dict[str, Any] = {"vr_model_param": bands_name, "primary_stem": "Instrumental"}
    if is_v51:
        data.update(nout=32, nout_lstm=128)
    common = {"logger": logging.getLogger("uvr-reference"), "torch_device": torch.device("cpu"),
              "torch_device_cpu": torch.device("cpu"), "model_data": data}
    sep = ref["VRSeparator"](common, {})
    sep.audio_file_path, sep.wav_subtype = str(wav), "FLOAT"
    return sep.loading_mix()
