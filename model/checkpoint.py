"""Loading and saving VR-network checkpoints (CascadedNet, CascadedASPPNet) from local paths or any fsspec URL.

Loading never executes code from the file: torch checkpoints go through
``torch.load(weights_only=True)`` (pickles that reference anything but
tensors and plain containers are refused) and ``.safetensors`` files hold no
code at all. Every failure is a one-line ``CheckpointError`` naming the path,
with credentials stripped from URLs and storage_options never echoed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import struct
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
import safetensors.torch
import torch
from fsspec.implementations.local import LocalFileSystem
from torch import nn

from stemforge.model.aspp import CascadedASPPNet
from stemforge.model.detect import NetSpec, detect_net
from stemforge.model.devices import resolve_device
from stemforge.model.errors import CheckpointError
from stemforge.model.nets import CascadedNet
from stemforge.transforms.errors import is_transient
from stemforge.transforms.redaction import redact_uri, scrub

_CHUNK = 1 << 20
_WRAPPER_KEYS = ("state_dict", "model")

Uri = str | os.PathLike[str]


def checkpoint_error(message: str, exc: BaseException, uri: Uri, storage_options: Mapping | None = None,
                  io: bool = False) -> CheckpointError:
    """A one-line CheckpointError; the cause's text is squashed to one line and scrubbed
    (``transforms.redaction``). ``io``: the bytes could not be moved, so the error is as transient as ``exc``."""
    detail = scrub(" ".join(str(exc).split()), storage_options, uris=(uri,))[:300]
    return CheckpointError(f"{message} ({type(exc).__name__}{': ' + detail if detail else ''})",
                           transient=io and is_transient(exc))


def _open(uri: Uri, mode: str, storage_options: Mapping | None) -> Any:
    return fsspec.open(os.fspath(uri), mode, **dict(storage_options or {}))


def file_sha256(uri: Uri, storage_options: Mapping | None = None) -> str:
    """Hex SHA-256 of the file at ``uri``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with _open(uri, "rb", storage_options) as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except Exception as exc:  # noqa: BLE001 - any storage failure becomes one scrubbed CheckpointError naming the file
        raise checkpoint_error(f"cannot read {redact_uri(uri)}", exc, uri, storage_options, io=True) from None
    return digest.hexdigest()


def _read_bytes(uri: Uri, storage_options: Mapping | None) -> bytes:
    try:
        with _open(uri, "rb", storage_options) as f:
            return f.read()
    except Exception as exc:  # noqa: BLE001 - any storage failure becomes one scrubbed CheckpointError naming the file
        raise checkpoint_error(f"cannot read checkpoint {redact_uri(uri)}", exc, uri, storage_options,
                               io=True) from None


def _has_safetensors_suffix(path: str) -> bool:
    return urllib.parse.urlsplit(path).path.endswith(".safetensors") or path.endswith(".safetensors")


def _is_safetensors(data: bytes, path: str) -> bool:
    """By suffix, or by content: an 8-byte little-endian header length followed by a JSON object."""
    if _has_safetensors_suffix(path):
        return True
    if len(data) < 10 or data[8:9] != b"{":
        return False
    (header_len,) = struct.unpack("<Q", data[:8])
    return header_len <= len(data) - 8


def _deserialise(data: bytes, path: str) -> Any:
    if _is_safetensors(data, path):
        try:
            return safetensors.torch.load(data)
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a damaged file
            raise checkpoint_error(f"{path} is not a readable safetensors file", exc, path) from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise CheckpointError(
                f"refused to load {path}: it holds pickled Python objects, not only tensors "
                f"(it references {found.group(1)})"
            ) from None
        reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({reason.group(1) if reason else 'UnpicklingError'})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle raises many types; all mean 'not a checkpoint'
        raise checkpoint_error(f"{path} is truncated or not a checkpoint", exc, path) from None


def _state_dict(obj: Any, path: str) -> dict[str, torch.Tensor]:
    """The tensor mapping in ``obj``: a plain state dict or one under "state_dict"/"model"."""
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} does not hold a state dict")
    bad = next((k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)), None)
    if bad is not None:
        raise CheckpointError(f"{path} does not hold a state dict: entry {bad!r} is not a tensor")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _check_fits(net: nn.Module, state: Mapping[str, torch.Tensor], what: str, path: str) -> None:
    """Raise naming the first tensor (in module order) whose presence or shape does not fit ``net``."""
    expected = net.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{path} does not fit {what}: tensor {key!r} is missing")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path} does not fit {what}: tensor {key!r} has shape "
                f"{tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
            )
    extra = next((k for k in state if k not in expected), None)
    if extra is not None:
        raise CheckpointError(f"{path} does not fit {what}: unexpected tensor {extra!r}")


def _check_finite(state: Mapping[str, torch.Tensor], path: str) -> None:
    """Refuse a checkpoint with a NaN or infinite weight, naming the first such tensor (in file order): such a
    network makes NaN masks for every track."""
    for key, tensor in state.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not torch.isfinite(tensor).all():
            count = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{path} holds non-finite weights: tensor {key!r} has {count} NaN or infinite "
                                  f"value(s) of {tensor.numel()}")


def _with_batch_counters(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` plus a zero ``num_batches_tracked`` for every BatchNorm that lacks one.

    The counter only matters for training; checkpoints saved without it
    (not verified for UVR's files, so tolerated) load as if it were 0.
    """
    missing = {
        key: torch.zeros((), dtype=torch.long)
        for key in net.state_dict()
        if key.endswith(".num_batches_tracked") and key not in state
    }
    return {**state, **missing} if missing else state


def _verified_bytes(uri: Uri, sha256: str | None, storage_options: Mapping | None) -> tuple[bytes, str]:
    """The checkpoint's bytes and their sha256, checked against ``sha256`` when one is pinned."""
    data = _read_bytes(uri, storage_options)
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256.strip().lower():
        raise CheckpointError(f"sha256 mismatch for {redact_uri(uri)}: expected {sha256.strip().lower()}, got {digest}")
    return data, digest


@dataclass(frozen=True)
class CheckpointState:
    """A checkpoint read, verified and deserialised once: its tensors, the network they hold, and the
    sha256 of its bytes. ``read_checkpoint`` makes one; ``build`` turns it into a network."""

    path: str
    state: Mapping[str, torch.Tensor]
    spec: NetSpec
    digest: str

    def build(self, n_fft: int | None = 2048, device: str | torch.device | None = "auto"
              ) -> CascadedNet | CascadedASPPNet:
        """The network in eval mode on ``device``, every tensor checked against it (see ``load_checkpoint``)."""
        target = resolve_device(device)
        what = self.spec.describe(n_fft)
        try:
            with torch.device("meta"):  # no random initialisation of weights that are about to be replaced
                net = self.spec.build(n_fft)
        except (ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{self.path} does not fit {what}: {' '.join(str(exc).split())}") from None
        state = _with_batch_counters(dict(self.state), net)
        _check_fits(net, state, what, self.path)
        dtypes = {key: tensor.dtype for key, tensor in net.state_dict().items()}
        net.load_state_dict({key: tensor.to(dtypes[key]) for key, tensor in state.items()}, strict=True,
                            assign=True)
        net.checkpoint_sha256 = self.digest
        return net.to(target).eval()


def read_checkpoint(uri: Uri, sha256: str | None = None, storage_options: Mapping | None = None) -> CheckpointState:
    """Read a checkpoint once: bytes (verified against ``sha256`` before anything is deserialised), tensors
    (``weights_only``), and the network family detected from them. One-line CheckpointError on failure."""
    path = redact_uri(uri)
    data, digest = _verified_bytes(uri, sha256, storage_options)
    state = _state_dict(_deserialise(data, path), path)
    _check_finite(state, path)
    try:
        spec = detect_net(state)
    except ValueError as exc:
        raise CheckpointError(f"{path} {exc}") from None
    return CheckpointState(path, state, spec, digest)


def load_checkpoint(
    uri: Uri,
    n_fft: int | None = 2048,
    device: str | torch.device | None = "auto",
    sha256: str | None = None,
    storage_options: Mapping | None = None,
) -> CascadedNet | CascadedASPPNet:
    """Load a VR checkpoint (torch state dict, possibly wrapped, or safetensors) in eval mode.

    The network is detected from the tensors (``model.detect``): a
    CascadedNet (vocal-remover, UVR's VR 5.1) with its nout and nout_lstm, or
    UVR's CascadedASPPNet with its capacity class. A CascadedNet's LSTMs fix
    its n_fft: ``n_fft=None`` takes it, any other value must match. An ASPP
    net fits any valid ``n_fft``, which must then be given. When ``sha256``
    is given the bytes are verified before anything is deserialised, and
    those same bytes are what gets loaded. The returned net carries
    ``checkpoint_sha256`` (the digest of the loaded bytes) for provenance.
    An unavailable ``device`` is a plain ValueError (see ``resolve_device``).
    """
    resolve_device(device)  # an unavailable device fails before the checkpoint is read
    return read_checkpoint(uri, sha256, storage_options).build(n_fft, device)


def save_checkpoint(net: nn.Module, uri: Uri, storage_options: Mapping | None = None) -> None:
    """Write ``net``'s state dict in vocal-remover's format (``torch.save`` of the plain dict).

    A ``.safetensors`` suffix writes safetensors instead. Local parent
    directories are created; remote URLs go through fsspec.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    text = os.fspath(uri)
    if _has_safetensors_suffix(text):
        payload = safetensors.torch.save(state)
    else:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
    try:
        fs, fs_path = fsspec.core.url_to_fs(text, **dict(storage_options or {}))
        if isinstance(fs, LocalFileSystem):
            os.makedirs(os.path.dirname(fs_path) or ".", exist_ok=True)
        with fs.open(fs_path, "wb") as f:
            f.write(payload)
    except Exception as exc:  # noqa: BLE001 - any storage failure becomes one scrubbed CheckpointError naming the file
        raise checkpoint_error(f"cannot write checkpoint {redact_uri(uri)}", exc, uri, storage_options,
                               io=True) from None
