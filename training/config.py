"""The schema of `stemforge train` (configs/train.yaml): pydantic, unknown keys refused, every default here.

It is read by the same loader as a run's config (``stemforge.config.loader``: no Beam, no log filter, nothing
of the pipeline beyond its YAML reader), so `--set key=value` works the same way. Defaults are vocal-remover's
training recipe (docs/training.md gives each choice and its source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from stemforge.config.loader import Section, build_config, load_config


class DataConfig(Section):
    roots: tuple[str, ...] = ()  # output roots whose committed shards are the data (--data)
    target: str | None = None  # the stem the mask is trained for; None: the shards' first stem (mask·X)
    val_rate: float = Field(0.2, ge=0.0, lt=1.0)  # share of track keys held out for validation
    filters: dict[str, Any] = {}  # ShardDataset filters on scalar columns, e.g. {variant: 0}
    storage_options: dict[str, Any] = {}  # fsspec arguments for the roots
    num_workers: int = Field(2, ge=0)  # DataLoader workers
    buffer_size: int = Field(64, ge=1)  # shuffle buffer (samples per worker)


class NetConfig(Section):
    nout: int = Field(32, ge=4)  # CascadedNet width (vocal-remover's baseline: 32 / 128)
    nout_lstm: int = Field(128, ge=2)


class OptimConfig(Section):
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(4, ge=1)
    cropsize: int = Field(256, ge=32)
    learning_rate: float = Field(1e-3, gt=0)
    lr_min: float = Field(1e-4, ge=0)
    lr_decay_factor: float = Field(0.9, gt=0, lt=1)
    lr_decay_patience: int = Field(6, ge=0)
    aux_weight: float = Field(0.2, ge=0, le=1)  # loss = (1 − w)·L1(mask·X, Y) + w·L1(aux·X, Y)
    swap_rate: float = Field(0.5, ge=0, le=1)  # left/right swapped, as vocal-remover's dataset does
    target_as_input_rate: float = Field(0.01, ge=0, le=1)  # the target alone as the input (upstream's 0.01)
    mixup_rate: float = Field(0.0, ge=0, le=1)  # vocal-remover's default 0; its README suggests 0.5
    mixup_alpha: float = Field(1.0, gt=0)
    steps_per_epoch: int | None = Field(None, ge=1)  # None: one pass over the training crops
    seed: int = 2019


class ValidationConfig(Section):
    cropsize: int = Field(256, ge=32)
    batch_size: int = Field(6, ge=1)
    stemset: str | None = None  # held-out stems scored through Separator (SDR, SI-SDR) after each epoch
    stemset_every: int = Field(1, ge=1)


class TrainConfig(Section):
    data: DataConfig = DataConfig()
    net: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()
    validation: ValidationConfig = ValidationConfig()
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast on CUDA only
    checkpoint_every_steps: int = Field(200, ge=1)  # resumable state written this often (and each epoch)
    tensorboard: bool = True


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """configs/train.yaml (or the defaults when ``path`` is None) with ``--set`` overrides applied."""
    if path is None:
        return build_config({}, overrides, TrainConfig)
    return load_config(path, overrides, TrainConfig)
