"""`stemforge train`: vocal-remover's recipe (docs/training.md) on the committed shards of stemforge runs.

CascadedNet learns a mask for the target stem: loss = (1 − w)·L1(mask·|X|, |Y|) + w·L1(aux·|X|, |Y|) on random
crops, each normalised by max(|X|, |Y|) as vocal-remover normalises a song; Adam, ReduceLROnPlateau on the
validation L1 (the centre of each window, as upstream's validation). The output folder gets vocal-remover
state dicts (``best.pth`` by validation L1, also as ``best.safetensors``, and ``last.pth``), a resumable ``state.pt`` (model, optimiser,
scheduler, RNG, reader position: a rerun with the same output continues exactly where it stopped),
``metrics.csv`` and TensorBoard logs. All randomness comes from (seed, epoch, step), so a resumed run equals
an uninterrupted one.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from stemforge.model import CascadedNet, ModelSetup, load_checkpoint, resolve_device, save_checkpoint
from stemforge import text
from stemforge.training.config import TrainConfig
from stemforge.training.data import TrainingData, inspect_data
from stemforge.training.evaluate import score
from stemforge.training.progress import StepProgress
from stemforge.training.reader import ShardDataset

LOG = logging.getLogger("stemforge.train")
OUTPUTS = ("best.pth", "best.safetensors", "last.pth", "state.pt", "metrics.csv", "tensorboard/")  # summary order
FIELDS = ("epoch", "steps", "train_loss", "val_loss", "lr", "windows_per_s", "sdr", "si_sdr", "si_sdr_improvement")


def _rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The randomness of one training step (augmentation, mixup), from (seed, epoch, step) alone."""
    return np.random.default_rng([seed, epoch, step])


def _normalise(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = torch.maximum(x.amax(dim=(1, 2, 3)), y.amax(dim=(1, 2, 3))).clamp_min(1e-8)[:, None, None, None]
    return x / scale, y / scale


def _augment(x: torch.Tensor, y: torch.Tensor, swap: float, target_as_input: float,
             rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """vocal-remover's per-sample augmentation: left/right swapped with probability ``swap``; with probability
    ``target_as_input`` the target itself is the input (the mask must then pass everything)."""
    swapped = torch.as_tensor(rng.random(len(x)) < swap, device=x.device)[:, None, None, None]
    x, y = torch.where(swapped, x.flip(1), x), torch.where(swapped, y.flip(1), y)
    alone = torch.as_tensor(rng.random(len(x)) < target_as_input, device=x.device)[:, None, None, None]
    return torch.where(alone, y, x), y


def _mixup(x: torch.Tensor, y: torch.Tensor, rate: float, alpha: float,
           rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """vocal-remover's mixup, on magnitudes (the shards hold no phase): with probability ``rate`` a sample is
    blended with the next one in the batch by λ ~ Beta(alpha, alpha)."""
    if rate <= 0 or len(x) < 2:
        return x, y
    lam = np.where(rng.random(len(x)) < rate, rng.beta(alpha, alpha, len(x)), 1.0)
    lam = torch.as_tensor(lam, dtype=x.dtype, device=x.device)[:, None, None, None]
    return lam * x + (1 - lam) * x.roll(1, 0), lam * y + (1 - lam) * y.roll(1, 0)


class StateMismatch(ValueError):
    """The output folder's ``state.pt`` is of another network than the config builds."""


def state_mismatch(saved: dict[str, torch.Tensor], net: nn.Module) -> str | None:
    """What differs between a saved state dict and ``net``'s (the first differing tensor), or None."""
    own = net.state_dict()
    missing, extra = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
    if missing or extra:
        return f"tensor {(missing or extra)[0]} is {'missing from' if missing else 'not in'} the config's network"
    for key, tensor in own.items():
        if tuple(saved[key].shape) != tuple(tensor.shape):
            return (f"tensor {key} is {list(saved[key].shape)} there and {list(tensor.shape)} in this config's "
                    "network")
    return None


class Trainer:
    """One training run into ``output`` (a local folder); ``init`` fine-tunes from a checkpoint."""

    def __init__(self, config: TrainConfig, output: str | Path, init: str | None = None) -> None:
        self.config = config
        self.output = Path(output)
        self.device = resolve_device(config.device)
        initial = load_checkpoint(init, n_fft=None, device="cpu") if init else None
        if initial is not None and not isinstance(initial, CascadedNet):
            raise ValueError(f"{init}: only vocal-remover's CascadedNet can be trained here")
        self.data: TrainingData = inspect_data(config.data, initial.n_fft if initial is not None else None)
        torch.manual_seed(config.optim.seed)  # the initial weights and dropout, as upstream seeds them
        self.net = initial or CascadedNet(self.data.n_fft, config.net.nout, config.net.nout_lstm)
        self.net.to(self.device)
        optim = config.optim
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=optim.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=optim.lr_decay_factor, patience=optim.lr_decay_patience, threshold=1e-6,
            min_lr=optim.lr_min)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and config.precision == "fp16")
        self.epoch, self.step, self.best = 0, 0, math.inf
        self.budget: int | None = None  # optimiser steps this invocation may take (run's max_steps)
        self.written: set[str] = set()  # what this invocation wrote in the output folder (names of OUTPUTS)
        self.epochs_trained = 0  # epochs this invocation completed

    # ------------------------------------------------------------------ state

    def _state_path(self) -> Path:
        return self.output / "state.pt"

    def save_state(self) -> None:
        """The resumable state, written whole (a temporary file renamed into place)."""
        self._wrote("state.pt")
        state = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "epoch": self.epoch, "step": self.step, "best": self.best, "rng": torch.get_rng_state()}
        self.output.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path().with_suffix(".tmp")
        torch.save(state, temporary)
        os.replace(temporary, self._state_path())

    def load_state(self) -> bool:
        """Continue from ``state.pt`` when the output folder has one (weights_only: tensors and numbers)."""
        if not self._state_path().exists():
            return False
        state = torch.load(self._state_path(), map_location=self.device, weights_only=True)
        mismatch = state_mismatch(state["net"], self.net)
        if mismatch:
            raise StateMismatch(f"{self._state_path()} holds an earlier run of another network ({mismatch}; "
                                "net.nout, net.nout_lstm or the shards' n_fft differ): train with that run's "
                                "config, or into another --output")
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.best = int(state["epoch"]), int(state["step"]), float(state["best"])
        torch.set_rng_state(state["rng"].cpu())
        LOG.info("resuming %s at epoch %d, step %d", self.output, self.epoch, self.step)
        return True

    # ------------------------------------------------------------------ data

    def _dataset(self, keys: tuple[str, ...], cropsize: int, shuffle: bool) -> ShardDataset:
        filters = {**self.config.data.filters, "track_key": list(keys)}
        return ShardDataset(list(self.config.data.roots), columns=["mixture", self.data.target], cropsize=cropsize,
                            filters=filters, scalars=(), shuffle=shuffle, seed=self.config.optim.seed,
                            buffer_size=self.config.data.buffer_size, rank=0, world_size=1,
                            storage_options=self.config.data.storage_options, dtype=torch.float16)

    def _loader(self, dataset: ShardDataset, batch_size: int) -> DataLoader:
        # its own generator: a DataLoader otherwise draws its workers' seed from the global RNG, which the
        # network's dropout also uses, and a resumed epoch would then draw differently
        return DataLoader(dataset, batch_size=batch_size, num_workers=self.config.data.num_workers,
                          generator=torch.Generator().manual_seed(self.config.optim.seed))

    def _inputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture and target, normalised: float16 from the reader (half the bytes through the DataLoader's
        shared memory, the shards' own values), float32 on the device."""
        return _normalise(batch["mixture"].to(self.device).float(), batch[self.data.target].to(self.device).float())

    def _autocast(self) -> Any:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.precision)
        return torch.autocast("cuda", dtype=dtype, enabled=self.device.type == "cuda" and dtype is not None)

    # ------------------------------------------------------------------ loop

    def train_epoch(self, progress: StepProgress) -> tuple[float, int, float]:
        """The rest of this epoch from ``self.step``; returns mean loss, steps and windows per second."""
        optim = self.config.optim
        dataset = self._dataset(self.data.train_keys, optim.cropsize, shuffle=True)
        dataset.resume(self.epoch, self.step * optim.batch_size, optim.batch_size)
        self.net.train()
        criterion = nn.L1Loss()
        total, count, started, windows = 0.0, 0, time.perf_counter(), 0
        for batch in self._loader(dataset, optim.batch_size):
            if optim.steps_per_epoch is not None and self.step >= optim.steps_per_epoch or self.budget == 0:
                break
            x, y = self._inputs(batch)
            rng = _rng(optim.seed, self.epoch, self.step)
            x, y = _augment(x, y, optim.swap_rate, optim.target_as_input_rate, rng)
            x, y = _mixup(x, y, optim.mixup_rate, optim.mixup_alpha, rng)
            with self._autocast():
                mask, aux = self.net(x)
                loss = (1 - optim.aux_weight) * criterion(mask * x, y) + optim.aux_weight * criterion(aux * x, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            self.budget = None if self.budget is None else self.budget - 1
            total, count, windows = total + loss.item(), count + 1, windows + len(x)
            progress.update(self.epoch, self.step, loss.item())
            if self.step % self.config.checkpoint_every_steps == 0:
                self.save_state()
        return total / max(count, 1), count, windows / max(time.perf_counter() - started, 1e-9)

    @torch.no_grad()
    def validate(self) -> float | None:
        """vocal-remover's validation L1: masked magnitude against the target over each window's centre."""
        if not self.data.val_keys:
            return None
        val = self.config.validation
        self.net.eval()
        dataset = self._dataset(self.data.val_keys, val.cropsize, shuffle=False)
        dataset.set_epoch(0)
        total, samples = 0.0, 0
        for batch in self._loader(dataset, val.batch_size):
            x, y = self._inputs(batch)
            with self._autocast():
                pred = self.net.predict(x)
            target = y[..., self.net.offset: y.shape[-1] - self.net.offset]
            total += nn.functional.l1_loss(pred.float(), target, reduction="sum").item() / target[0].numel()
            samples += len(x)
        return total / max(samples, 1)

    def score_stemset(self) -> dict[str, float]:
        """Mean SDR, SI-SDR and SI-SDR improvement of the target stem on the held-out stem set."""
        self.net.eval()
        setup = ModelSetup(self.net, None, self.data.stems, self.config.validation.cropsize, None, 0.05, None)
        rows = [r for r in score(setup, self.config.validation.stemset, self.data.hop_length,
                                 storage_options=self.config.data.storage_options)
                if r["stem"] == self.data.target and not r["error"]]
        return {k: sum(r[k] for r in rows) / len(rows) for k in ("sdr", "si_sdr", "si_sdr_improvement")} if rows else {}

    def run(self, max_steps: int | None = None, quiet: bool = False) -> list[dict[str, Any]]:
        """Train to ``optim.epochs``, continuing a resumable state in the output folder; returns the metrics
        rows. ``max_steps`` stops after that many optimiser steps with the state saved (a job's time limit:
        the next run with the same output continues exactly there)."""
        self.load_state()
        self.budget = max_steps
        writer = self._tensorboard()
        progress = StepProgress(self.config.optim.epochs, quiet=quiet)
        rows = self._read_metrics()
        while self.epoch < self.config.optim.epochs:
            train_loss, _, speed = self.train_epoch(progress)
            if self.budget == 0:
                self.save_state()
                LOG.info("stopped after %d steps at epoch %d, step %d; rerun to continue", max_steps, self.epoch,
                         self.step)
                break
            val_loss = self.validate()
            scores = (self.score_stemset() if self.config.validation.stemset
                      and (self.epoch + 1) % self.config.validation.stemset_every == 0 else {})
            monitored = val_loss if val_loss is not None else train_loss
            self.scheduler.step(monitored)
            row = {"epoch": self.epoch, "steps": self.step, "train_loss": train_loss, "val_loss": val_loss,
                   "lr": self.optimizer.param_groups[0]["lr"], "windows_per_s": speed, **scores}
            rows.append(row)
            if monitored < self.best:
                self.best = monitored
                for name in ("best.pth", "best.safetensors"):
                    save_checkpoint(self.net, str(self.output / name))
                    self._wrote(name)
            save_checkpoint(self.net, str(self.output / "last.pth"))
            self._wrote("last.pth")
            self._write_metrics(rows, writer, row)
            progress.epoch_done(row)
            self.epoch, self.step = self.epoch + 1, 0
            self.epochs_trained += 1
            self.save_state()
        if writer is not None:
            writer.close()
        return rows

    # ------------------------------------------------------------------ logs

    def _wrote(self, name: str) -> None:
        self.written.add(name)

    def summary(self, rows: list[dict[str, Any]]) -> str:
        """One line on what this invocation did and wrote (only the files it wrote), for ``stemforge train``."""
        best = min((r for r in rows if r.get("val_loss") not in (None, "")), key=lambda r: float(r["val_loss"]),
                   default=None)
        names = [f"best.pth (validation L1 {float(best['val_loss']):.5f} at epoch {best['epoch']})"
                 if name == "best.pth" and best else name for name in OUTPUTS if name in self.written]
        stopped = (f", stopped by --max-steps at epoch {self.epoch}, step {self.step} (rerun to continue)"
                   if self.budget == 0 else "")
        return (f"trained {text.count(self.epochs_trained, 'epoch')} into {self.output}{stopped}: "
                f"wrote {', '.join(names) or 'nothing'}")

    def _tensorboard(self) -> Any:
        if not self.config.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.output / "tensorboard"), purge_step=self.epoch)

    def _read_metrics(self) -> list[dict[str, Any]]:
        path = self.output / "metrics.csv"
        if not path.exists():
            return []
        with path.open() as handle:
            rows = [{k: (int(v) if k in ("epoch", "steps") else float(v)) if v else None for k, v in row.items()}
                    for row in csv.DictReader(handle)]
        return [row for row in rows if row["epoch"] < self.epoch]

    def _write_metrics(self, rows: list[dict[str, Any]], writer: Any, row: dict[str, Any]) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        self._wrote("metrics.csv")
        with (self.output / "metrics.csv").open("w", newline="") as handle:
            table = csv.DictWriter(handle, FIELDS, extrasaction="ignore")
            table.writeheader()
            table.writerows(rows)
        if writer is not None:
            for key in FIELDS[2:]:
                if row.get(key) is not None:
                    writer.add_scalar(key, float(row[key]), row["epoch"])
            writer.flush()
            self._wrote("tensorboard/")
