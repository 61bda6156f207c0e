"""Beam's RunInference around CascadedNet: windows from many tracks share each batch."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from model import CascadedNet, CheckpointError, InferenceModel, load_checkpoint
from pipeline.config import ModelConfig
from pipeline.storage import PERMANENT_ERRORS, StorageOptions, options_for, redact_uri, retry
from pipeline.track import TrackMeta

LOG = logging.getLogger(__name__)
RANDOM_INIT_SEED = 0


class Window(NamedTuple):
    """One model input: a peak-normalised magnitude window of a track variant."""

    meta: TrackMeta
    pass_index: int
    index: int
    magnitude: np.ndarray


class WindowMask(NamedTuple):
    """The model's centre mask for one window."""

    meta: TrackMeta
    pass_index: int
    index: int
    mask: np.ndarray


def random_init_net(config: ModelConfig) -> CascadedNet:
    """The fixed-seed random network the demo runs when no checkpoint is given."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(RANDOM_INIT_SEED)
        return CascadedNet(config.n_fft, config.random_init_nout, config.random_init_nout_lstm).eval()
    finally:
        torch.random.set_rng_state(generator_state)


def _transient_checkpoint_read(exc: BaseException) -> bool:
    """A CheckpointError from reading the bytes (not from their content) whose cause may go away."""
    found = re.match(r"cannot read checkpoint .* \((\w+)", str(exc))
    return isinstance(exc, CheckpointError) and found is not None and found.group(1) not in PERMANENT_ERRORS


def load_net(config: ModelConfig, storage_options: StorageOptions, device: str = "cpu") -> CascadedNet:
    """The configured checkpoint (weights_only, sha256-pinned if asked) or, if allowed, random weights."""
    if config.checkpoint:
        checkpoint = config.checkpoint
        return retry(lambda: load_checkpoint(checkpoint, n_fft=config.n_fft, device=device, sha256=config.sha256,
                                             storage_options=options_for(checkpoint, storage_options)),
                     f"read checkpoint {redact_uri(checkpoint)}", _transient_checkpoint_read, storage_options)
    LOG.warning("RANDOM WEIGHTS: no checkpoint configured; outputs are NOT a real separation")
    return random_init_net(config)


class CascadedNetHandler(ModelHandler[Window, WindowMask, InferenceModel]):
    """Loads the network once per worker process (RunInference shares it across threads) and
    runs batches of windows, whatever tracks they come from."""

    def __init__(self, config: ModelConfig, storage_options: StorageOptions) -> None:
        super().__init__(min_batch_size=config.batch_size, max_batch_size=config.batch_size)
        self._config = config
        self._storage_options = storage_options

    def load_model(self) -> InferenceModel:
        if self._config.cpu_threads is not None:
            # one intra-op pool per worker process: with several SDK processes per machine, N processes
            # x N cores threads would oversubscribe the CPUs
            torch.set_num_threads(self._config.cpu_threads)
        net = load_net(self._config, self._storage_options, device=self._config.device)
        return InferenceModel(net, device=self._config.device, precision=self._config.precision)

    def run_inference(self, batch: Sequence[Window], model: InferenceModel,
                      inference_args: dict[str, Any] | None = None) -> Iterable[WindowMask]:
        Metrics.distribution("stemforge", "batch_size").update(len(batch))
        magnitudes = np.stack([w.magnitude for w in batch])
        missing = self._config.batch_size - len(batch)
        if missing > 0:
            # Every forward pass has the configured shape, so a window's mask never depends on which
            # windows share its batch (CPU kernels pick algorithms by shape): a rerun or a retried bundle
            # reproduces masks, stems and rows bit for bit (same device and thread count).
            magnitudes = np.concatenate([magnitudes, np.zeros((missing, *magnitudes.shape[1:]), magnitudes.dtype)])
        masks = model(magnitudes)
        return [WindowMask(w.meta, w.pass_index, w.index, m) for w, m in zip(batch, masks)]

    def get_num_bytes(self, batch: Sequence[Window]) -> int:
        return sum(w.magnitude.nbytes for w in batch)

    def get_metrics_namespace(self) -> str:
        return "stemforge"
