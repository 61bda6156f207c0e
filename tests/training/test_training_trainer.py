"""`stemforge train` on a real run's shards: the loss goes down, a run stopped mid-epoch and resumed ends with
exactly the weights of an uninterrupted one, checkpoints load as vocal-remover's, bad data is one line."""

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
import torch
from stemforge_testing import SR, fresh_python, music, write_config

from stemforge.model import CascadedNet, load_checkpoint
from stemforge.pipeline.cli import main
from stemforge.training.config import TrainConfig, load_train_config
from stemforge.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
TINY_TRAIN = ["net.nout=8", "net.nout_lstm=16", "optim.cropsize=64", "optim.batch_size=2", "optim.steps_per_epoch=3",
              "data.num_workers=0", "validation.cropsize=256", "tensorboard=false", "device=cpu", "data.val_rate=0.25"]


@pytest.fixture(scope="module")
def shards(tiny_checkpoint, tmp_path_factory):
    """A run over four 3-second tracks: float16 rows of 64 frames, instruments and vocals from the tiny net."""
    root = tmp_path_factory.mktemp("train-data")
    (root / "in").mkdir()
    for index in range(4):
        sf.write(root / "in" / f"t{index}.wav", music(3 * SR, seed=10 + index).T, SR, subtype="FLOAT")
    config = write_config(root / "c.yaml", output={"spectrogram_dtype": "float16", "segment_frames": 64,
                                                   "write_stems": False})
    assert main(["run", "--config", str(config), "--input", str(root / "in"), "--output", str(root / "out"),
                 "--checkpoint", str(tiny_checkpoint), "--quiet"]) == 0
    return root / "out"


def _config(data: Path, *extra: str) -> TrainConfig:
    return load_train_config(ROOT / "configs" / "train.yaml", [*TINY_TRAIN, f"data.roots=[{json.dumps(str(data))}]",
                                                              *extra])


def test_the_shipped_config_is_vocal_removers_recipe():
    config = load_train_config(ROOT / "configs" / "train.yaml")
    assert config == TrainConfig()  # the file and the schema's defaults agree
    optim = config.optim
    assert (optim.learning_rate, optim.lr_decay_factor, optim.lr_decay_patience, optim.lr_min) == (1e-3, 0.9, 6, 1e-4)
    assert (optim.batch_size, optim.cropsize, optim.aux_weight, optim.seed) == (4, 256, 0.2, 2019)


def test_training_lowers_the_loss_and_writes_its_files(shards, tmp_path):
    trainer = Trainer(_config(shards, "optim.epochs=4", "optim.learning_rate=0.003", "tensorboard=true"),
                      tmp_path / "run")
    assert trainer.data.target == "instruments" and trainer.data.val_keys and trainer.data.train_keys
    assert not set(trainer.data.val_keys) & set(trainer.data.train_keys)
    rows = trainer.run(quiet=True)
    assert len(rows) == 4 and rows[-1]["train_loss"] < 0.85 * rows[0]["train_loss"]
    assert all(r["val_loss"] > 0 and r["windows_per_s"] > 0 for r in rows)
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3]
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    # vocal-remover's state dict: plain tensors under CascadedNet's keys, loadable strictly by stemforge
    state = torch.load(tmp_path / "run" / "last.pth", weights_only=True)
    assert list(state) == list(CascadedNet(512, 8, 16).state_dict())
    loaded = load_checkpoint(str(tmp_path / "run" / "last.pth"), n_fft=512, device="cpu")
    assert all(torch.equal(loaded.state_dict()[k], v.cpu()) for k, v in trainer.net.state_dict().items())
    assert (tmp_path / "run" / "best.pth").exists()


def test_a_run_stopped_mid_epoch_and_resumed_equals_an_uninterrupted_one(shards, tmp_path):
    config = _config(shards, "optim.epochs=2", "optim.mixup_rate=0.5", "checkpoint_every_steps=2")
    whole = Trainer(config, tmp_path / "whole")
    whole_rows = whole.run(quiet=True)
    steps = whole_rows[0]["steps"]
    assert steps >= 3
    first = Trainer(config, tmp_path / "parts")
    first.run(max_steps=steps + 1, quiet=True)  # stops inside the second epoch, state saved
    assert (first.epoch, first.step) == (1, 1)
    second = Trainer(config, tmp_path / "parts")
    rows = second.run(quiet=True)
    assert [r["epoch"] for r in rows] == [0, 1]
    for key, value in whole.net.state_dict().items():
        assert torch.equal(second.net.state_dict()[key], value), key
    assert rows[0]["train_loss"] == pytest.approx(whole_rows[0]["train_loss"], rel=1e-6)  # read back from the CSV
    assert rows[1]["val_loss"] == whole_rows[1]["val_loss"]  # the same weights validate the same


def test_the_command_trains_and_bad_data_is_one_line(shards, tmp_path, capsys):
    args = ["train", "--config", str(ROOT / "configs" / "train.yaml"), "--data", str(shards),
            "--output", str(tmp_path / "cli"), "--quiet", *[a for s in TINY_TRAIN for a in ("--set", s)],
            "--set", "optim.epochs=1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"trained 1 epoch into {tmp_path / 'cli'}: wrote best.pth (validation L1 ")
    assert printed.endswith(" at epoch 0), best.safetensors, last.pth, state.pt, metrics.csv\n")
    assert main([*args, "--set", "data.target=drums"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no tensor column 'drums'" in err
    other = tmp_path / "other.pth"
    torch.save(CascadedNet(1024, 8, 16).state_dict(), other)
    assert main([*args, "--init", str(other)]) == 2
    assert "the shards have n_fft 512, the initial checkpoint's network 1024" in capsys.readouterr().err
    assert main([*args[:3], "--data", str(tmp_path / "nothing"), *args[5:]]) == 2
    assert "no committed stemforge run" in capsys.readouterr().err


def test_a_state_of_another_network_is_refused_in_one_line_naming_the_mismatch(shards, tmp_path, capsys):
    args = ["train", "--data", str(shards), "--output", str(tmp_path / "run"), "--quiet",
            *[a for s in TINY_TRAIN for a in ("--set", s)], "--set", "optim.epochs=1"]
    assert main(args) == 0
    capsys.readouterr()
    state = (tmp_path / "run" / "state.pt").read_bytes()
    assert main([*args, "--set", "net.nout=4"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"stemforge: train: {tmp_path / 'run' / 'state.pt'} holds an earlier run of another "
                            "network (tensor stg1_low_band_net.0.enc1.conv.0.weight is [4, 2, 3, 3] there and "
                            "[2, 2, 3, 3] in this config's network; net.nout, net.nout_lstm or the shards' n_fft "
                            "differ): train with that run's config, or into another --output\n")
    assert (tmp_path / "run" / "state.pt").read_bytes() == state


def test_max_steps_says_only_what_it_wrote_and_refuses_less_than_one_step(shards, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(shards), "--output", str(out), "--quiet",
            *[a for s in TINY_TRAIN for a in ("--set", s)], "--set", "optim.epochs=2"]
    for steps in ("-1", "0"):
        assert main([*args, "--max-steps", steps]) == 2
        assert capsys.readouterr().err == f"stemforge: train: --max-steps must be at least 1, got {steps}\n"
        assert not out.exists()
    assert main([*args, "--max-steps", "2"]) == 0
    assert capsys.readouterr().out == (f"trained 0 epochs into {out}, stopped by --max-steps at epoch 0, step 2 "
                                       "(rerun to continue): wrote state.pt\n")
    assert sorted(p.name for p in out.iterdir()) == ["state.pt"]


def test_the_training_side_imports_no_beam():
    # `stemforge train` and `evaluate` need no Beam
    code = ("import sys, stemforge.training.trainer, stemforge.training.evaluate, stemforge.pipeline.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))")
    assert fresh_python(code) == "[]\n"
