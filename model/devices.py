"""Device selection: one place that turns "auto" / "cuda:1" / "mps" into a usable torch.device."""

from __future__ import annotations

import torch


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch.device for ``name``; "auto" (or None) picks cuda, then mps, then cpu.

    An explicitly requested device that this machine lacks is a ValueError
    rather than a silent fall-back to cpu, so a misconfigured GPU job fails
    loudly instead of running 50× slower.
    """
    if name is None or (isinstance(name, str) and name.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name.strip().lower() if isinstance(name, str) else name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {name!r} requested but only {count} CUDA device(s) exist")
        return device
    if device.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {name!r} requested but MPS is not available")
        return device
    raise ValueError(f"unsupported device {name!r}; use cpu, cuda[:N], mps or auto")
