"""What a user sees on stderr: no third-party start-up noise, every warning that matters."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from stemforge_testing import write_config

ROOT = Path(__file__).resolve().parents[2]


def _stemforge(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def test_validate_config_prints_nothing_on_stderr(tmp_path):
    done = _stemforge("validate-config", str(ROOT / "configs" / "separate.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("input:")


def test_a_run_shows_its_warnings_and_no_start_up_noise(tmp_path):
    sf.write(tmp_path / "a.wav", 0.1 * np.random.default_rng(0).standard_normal((22050, 2)), 44100)
    config = write_config(tmp_path / "c.yaml", model={"allow_random_init": True, "random_init_nout": 4,
                                                      "random_init_nout_lstm": 8})
    done = _stemforge("run", "--config", str(config), "--input", "a.wav", "--output", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "apitools" not in done.stderr and "WARNING:root" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith(("WARNING ", "INFO ")) for line in lines), lines  # one format
    assert any("RANDOM WEIGHTS" in line for line in lines)  # a warning that matters still shows
    assert "1 tracks committed" in done.stdout


def test_help_lists_every_command_with_an_example(tmp_path):
    done = _stemforge("--help", cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    for command in ("run", "separate", "validate-config", "inspect", "report", "train", "evaluate", "demo"):
        assert f"\n    {command} " in done.stdout and f"stemforge {command}" in done.stdout


def test_commands_other_than_run_refuse_unknown_options(tmp_path):
    for args in (("validate-config", str(ROOT / "configs" / "separate.yaml")), ("inspect", "."), ("report", "."),
                 ("separate", "a.wav", "-o", "out"), ("demo",)):
        done = _stemforge(*args, "--no-such-option", cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.strip() == f"stemforge: {args[0]}: unrecognised arguments: --no-such-option"
