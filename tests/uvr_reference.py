"""audio-separator (0.47.1) as an independent reference for UVR's VR procedure, imported without its heavy
top level: its package ``__init__`` pulls in onnxruntime and every other architecture, which the VR path
does not use. The Makefile installs the wheel with ``--no-deps``; its VR modules need only torch, numpy,
scipy, librosa, samplerate, soundfile, audioread, pydub, six and tqdm, which the test extras install.

Tests call :func:`uvr_or_skip`, which skips cleanly when the package is absent.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
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


def uvr_or_skip() -> dict[str, Any]:
    """:func:`uvr`, or skip the calling test when audio-separator is not installed."""
    import pytest

    try:
        return uvr()
    except ImportError as exc:
        pytest.skip(str(exc))
