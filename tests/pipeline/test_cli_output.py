"""What a user sees on stderr: no third-party start-up noise, every warning that matters."""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from stemforge_testing import write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.cli_args import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _stemforge(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stemforge", *args], cwd=cwd, capture_output=True, text=True,
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
    assert "1 track committed" in done.stdout


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


COMMANDS = ("run", "validate-config", "inspect", "report", "runs", "gc", "separate", "train", "evaluate", "synth",
            "synth-real", "demo")


def _help(capsys, *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_the_top_level_description_is_a_whole_sentence(capsys):
    assert ("command line: run a job, separate a few files, validate a config, inspect or report on what a run "
            "wrote, list the runs under an output and remove what none of them committed, or run the demo. "
            "positional arguments:") in _help(capsys)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_an_example(capsys, command):
    assert re.search(rf"[Ee]xamples?: stemforge {command} ", _help(capsys, command))


def test_every_option_of_every_command_says_what_it_does():
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(commands.choices) == sorted(COMMANDS)
    silent = [f"{name} {action.option_strings or action.dest}" for name, parser in commands.choices.items()
              for action in parser._actions if not action.help]
    assert silent == []


def test_a_rejected_name_with_a_newline_and_ansi_codes_prints_as_one_escaped_line(tmp_path):
    from stemforge.config.run import build_config
    from stemforge.pipeline.separate import rejected_lines

    name = "bad\n\x1b[31mred\u202e.wav"
    (tmp_path / "errors").mkdir()
    record = {"source": name, "track_key": "bad", "stage": "read", "error": "unreadable", "message": f"{name}: empty"}
    (tmp_path / "errors" / "r1.jsonl").write_text(json.dumps(record) + "\n")
    config = build_config({"output": {"uri": str(tmp_path)}})
    [line] = rejected_lines({"run_id": "r1", "counts": {"failed": 1}}, config)
    assert line == "  rejected: bad\\n\\x1b[31mred\\u202e.wav: empty"
