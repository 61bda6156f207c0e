"""InferenceModel: a CascadedNet prepared once for fast, thread-safe mask prediction."""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any

import numpy as np
import torch
from torch import nn

from stemforge.model.devices import resolve_device
from stemforge.model.fusion import fold_batchnorm
from stemforge.transforms.stft import check_window

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


def _net_n_fft(net: nn.Module) -> int:
    n_fft = getattr(net, "n_fft", None)
    if n_fft is None:
        n_fft = (int(net.output_bin) - 1) * 2
    return int(n_fft)


class InferenceModel:
    """Wraps a mask network for inference: ``model(mag_windows) -> centre masks``.

    The network is copied (the caller's module is left untouched), put in eval
    mode and moved to ``device``. With ``optimize=True`` BatchNorm is folded
    into the preceding convolutions, activations run in place, weights and
    inputs use channels_last, and on CUDA cudnn.benchmark is switched on; these
    change results only by float rounding (< 1e-5 on masks). ``precision``
    "fp16"/"bf16" runs under ``torch.autocast`` (meant for CUDA; bf16 also
    works on CPU); masks are always returned as float32.

    One instance can be shared by threads: calls are serialised by a lock,
    which is also what a single accelerator would do.
    """

    def __init__(
        self,
        net: nn.Module,
        device: str | torch.device | None = "auto",
        precision: str = "fp32",
        optimize: bool = True,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.device = resolve_device(device)
        self.precision = precision
        self.optimize = optimize
        self.offset = int(net.offset)
        self.n_fft = _net_n_fft(net)
        self.n_bins = self.n_fft // 2 + 1
        if precision != "fp32" and not torch.amp.is_autocast_available(self.device.type):
            raise ValueError(f"precision {precision!r} needs autocast, unavailable on {self.device}")

        net = copy.deepcopy(net).eval()
        if optimize:
            fold_batchnorm(net)
            for module in net.modules():
                if isinstance(module, (nn.ReLU, nn.LeakyReLU)):
                    module.inplace = True
        self._channels_last = optimize and self.device.type in ("cpu", "cuda")
        net = net.to(self.device)
        if self._channels_last:
            net = net.to(memory_format=torch.channels_last)
        if optimize and self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.net = net
        self._lock = threading.Lock()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision])

    def _as_input(self, mag_windows: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(mag_windows)
        if x.is_complex():
            raise TypeError("InferenceModel takes magnitudes, not a complex spectrogram")
        if x.dim() != 4 or x.shape[1] != 2 or x.shape[2] != self.n_bins:
            raise ValueError(
                f"expected magnitude windows [B, 2, {self.n_bins}, cropsize], got {tuple(x.shape)}"
            )
        width = x.shape[3]
        check_window(width, self.offset, "window width")
        x = x.to(device=self.device, dtype=torch.float32, non_blocking=True)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def __call__(self, mag_windows: np.ndarray | torch.Tensor) -> np.ndarray:
        """Centre masks ``[B, 2, bins, cropsize - 2*offset]`` (float32) for a magnitude batch.

        ``mag_windows`` is ``[B, 2, n_fft//2+1, cropsize]``, already divided by
        the track's peak magnitude, as ``Separator`` prepares it.
        """
        x = self._as_input(mag_windows)
        if x.shape[0] == 0:
            return np.zeros((0, 2, self.n_bins, x.shape[3] - 2 * self.offset), dtype=np.float32)
        return np.ascontiguousarray(self.predict(x).cpu().numpy())

    def predict(self, mag_windows: torch.Tensor) -> torch.Tensor:
        """As calling the model, but the masks stay on the device as a float32 tensor (the device path's
        arrays never leave it: ``model.device_separator``)."""
        x = self._as_input(mag_windows)
        with self._lock, torch.inference_mode(), self._autocast():
            return self.net.predict_mask(x).float()
