"""Options that cannot work are refused before any work: exit 2, one `stemforge: ` line on stderr, nothing
written (issue 20, items 4 and 5)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from stemforge_testing import TINY, music, write_config

from stemforge.pipeline.cli import main

NOT_A_RUNNER = "NoSuchRunner"


@pytest.fixture()
def song(tmp_path) -> Path:
    """One short stereo file in its own folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "song.wav", music(44100, seed=2).T, 44100, subtype="FLOAT")
    return folder


def refused(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit 2 with exactly one line on stderr, and return that line."""
    capsys.readouterr()
    code = main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("stemforge: ")
    return lines[0].removeprefix("stemforge: ")


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (what a refused command must not have changed)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def separate(song: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    """`separate` with the tiny checkpoint at its geometry (so no note about the shipped model is printed)."""
    return ["separate", str(song), "-o", str(out), "--checkpoint", str(checkpoint), "--set",
            f"model.n_fft={TINY['n_fft']}", "--set", f"model.hop_length={TINY['hop_length']}", *extra]


@pytest.mark.parametrize(("options", "message"), [
    (["--subtype", "FLOAT"], "output.stem_subtype: flac cannot hold the subtype 'FLOAT'; it takes PCM_S8, PCM_16, PCM_24"),
    (["--subtype", "PCM_99"], "output.stem_subtype: flac cannot hold the subtype 'PCM_99'; it takes PCM_S8, PCM_16, "
                              "PCM_24"),
    (["--format", "ogg", "--subtype", "PCM_24"], "output.stem_subtype: ogg cannot hold the subtype 'PCM_24'; it takes "
                                                 "VORBIS, OPUS"),
])
def test_a_subtype_the_format_cannot_hold_is_refused(song, tmp_path, tiny_checkpoint, capsys, options, message):
    assert refused(capsys, separate(song, tmp_path / "out", tiny_checkpoint, *options)) == message
    assert not (tmp_path / "out").exists()


def test_a_run_config_with_such_a_subtype_is_refused(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", output={"stem_format": "flac", "stem_subtype": "FLOAT"})
    assert refused(capsys, ["validate-config", str(config)]) == (
        "output.stem_subtype: flac cannot hold the subtype 'FLOAT'; it takes PCM_S8, PCM_16, PCM_24")


@pytest.mark.parametrize(("device", "available", "name"), [
    ("cuda", torch.cuda.is_available(), "CUDA"),
    ("mps", torch.backends.mps.is_available(), "MPS"),
])
def test_a_device_this_machine_lacks_is_refused(song, tmp_path, tiny_checkpoint, capsys, device, available, name):
    if available:
        pytest.skip(f"this machine has {name}")
    assert refused(capsys, separate(song, tmp_path / "out", tiny_checkpoint, "-d", device)) == (
        f"model.device: device '{device}' requested but {name} is not available")
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_is_refused(song, tmp_path, tiny_checkpoint, capsys):
    target = tmp_path / "out.wav"
    target.write_bytes(b"keep me")
    assert refused(capsys, separate(song, target, tiny_checkpoint)) == (
        f"output.uri {target}: {target} is a file, not a folder")
    assert target.read_bytes() == b"keep me" and tree(tmp_path) == ["in", "in/song.wav", "out.wav"]


def test_an_output_that_cannot_be_written_is_refused(song, tmp_path, tiny_checkpoint, capsys):
    message = refused(capsys, separate(song, Path("/proc/stemforge-out"), tiny_checkpoint))
    assert message.startswith("output.uri /proc/stemforge-out: cannot write in /proc (")
    assert not Path("/proc/stemforge-out").exists()


def test_an_unknown_runner_is_refused(song, tmp_path, tiny_checkpoint, capsys):
    config = write_config(tmp_path / "c.yaml")
    message = refused(capsys, ["run", "--config", str(config), "--input", str(song), "--output",
                               str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint),
                               f"--runner={NOT_A_RUNNER}"])
    assert message.startswith(f"--runner={NOT_A_RUNNER}: not a runner Beam knows (Unexpected pipeline runner")
    assert not (tmp_path / "out").exists()


def test_a_misspelt_beam_flag_is_refused(song, tmp_path, tiny_checkpoint, capsys):
    config = write_config(tmp_path / "c.yaml")
    message = refused(capsys, ["run", "--config", str(config), "--input", str(song), "--output",
                               str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint),
                               "--runner=FnApiRunner", "--direct_num_wokers=2"])
    assert message == "run: unrecognised arguments (neither stemforge's nor a Beam option): --direct_num_wokers=2"
    assert not (tmp_path / "out").exists()


def test_report_to_an_unwritable_place_is_refused(tmp_path, capsys):
    message = refused(capsys, ["report", str(tmp_path), "--output", "/proc/stemforge/report.html"])
    assert message.startswith("report --output /proc/stemforge/report.html: cannot write in /proc (")


def test_evaluate_to_an_unwritable_place_is_refused_before_scoring(tmp_path, tiny_checkpoint, capsys):
    message = refused(capsys, ["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "none"),
                               "--output", "/proc/stemforge/scores.csv"])
    assert message.startswith("evaluate --output /proc/stemforge/scores.csv: cannot write in /proc (")


def test_train_into_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "model.pth"
    target.write_bytes(b"keep me")
    assert refused(capsys, ["train", "--data", str(tmp_path), "--output", str(target)]) == (
        f"train --output {target}: {target} is a file, not a folder")
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize(("geometry", "message"), [
    (["--set", "model.n_fft=2048", "--set", "model.hop_length=4096"], "model.hop_length: hop_length 4096 must be less than n_fft 2048: frames "
                                         "that do not overlap cannot be inverted (use n_fft/2 or n_fft/4)"),
    (["--set", "model.n_fft=1024", "--set", "model.hop_length=1024"],
     "model.hop_length: hop_length 1024 must be less than n_fft 1024: frames that do not overlap cannot be "
     "inverted (use n_fft/2 or n_fft/4)"),
    (["--set", "model.n_fft=1024", "--set", "model.hop_length=1020"],
     "model.hop_length: hop_length 1020 with n_fft 1024: the Hann windows' overlap-add vanishes between frames, "
     "so the inverse STFT cannot reconstruct (use n_fft/2 or n_fft/4)"),
])
def test_a_geometry_that_cannot_invert_is_refused(song, tmp_path, tiny_checkpoint, capsys, geometry, message):
    config = tmp_path / "c.yaml"
    config.write_text("{}\n")
    assert refused(capsys, ["validate-config", str(config), *geometry]) == message
    assert refused(capsys, separate(song, tmp_path / "out", tiny_checkpoint, *geometry)) == message
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_a_hop_as_long_as_the_window(tmp_path, tiny_checkpoint, capsys):
    assert refused(capsys, ["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path),
                            "--n-fft", "512", "--hop-length", "512"]) == (
        "evaluate: hop_length 512 must be less than n_fft 512: frames that do not overlap cannot be inverted "
        "(use n_fft/2 or n_fft/4)")


def test_nan_weights_are_refused_before_any_track(song, tmp_path, tiny_checkpoint, capsys):
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["out.weight"] = torch.full_like(state["out.weight"], np.nan)
    bad = tmp_path / "nan.pth"
    torch.save(state, bad)
    assert refused(capsys, separate(song, tmp_path / "out", bad)) == (
        f"{bad} holds non-finite weights: tensor 'out.weight' has {state['out.weight'].numel()} NaN or infinite "
        f"value(s) of {state['out.weight'].numel()}")
    assert not (tmp_path / "out").exists()


def test_a_refusal_with_the_shipped_model_is_still_one_line(song, tmp_path, capsys):
    assert refused(capsys, ["separate", str(song), "-o", str(tmp_path / "out"), "--subtype", "FLOAT"]) == (
        "output.stem_subtype: flac cannot hold the subtype 'FLOAT'; it takes PCM_S8, PCM_16, PCM_24")
    assert refused(capsys, ["separate", str(song), "-o", "/proc/stemforge-out"]).startswith(
        "output.uri /proc/stemforge-out: cannot write in /proc (")
    assert not (tmp_path / "out").exists()
