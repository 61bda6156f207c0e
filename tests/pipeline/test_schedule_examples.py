"""Claim: the scheduler examples that ship in docs/examples/ run stemforge as written. The CronJob parses as
YAML, forbids overlapping slots and fails the Job on a refusal (exit 2); the Airflow DAG parses as Python (Airflow
is not installed here). The command line each one builds is accepted by stemforge's own parser, its `--set`
overrides by the config schema (with the repository's configs/separate.yaml) and its other flags by Beam."""

import ast
import shlex
from pathlib import Path

import yaml

from stemforge.pipeline.cli import _overrides
from stemforge.pipeline.cli_args import build_parser
from stemforge.config.run import load_config
from stemforge.pipeline.launch import beam_options

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
DAY = {"{{ ds }}": "2026-12-05", "{{ ds_nodash }}": "20261205", "$(date -u +%Y-%m-%d)": "2026-12-05",
       "$(date -u +%Y%m%d)": "20261205"}


def _render(text: str) -> str:
    """The scheduler's substitutions for one day (Jinja in Airflow, the shell's date in the CronJob)."""
    for template, value in DAY.items():
        text = text.replace(template, value)
    return text


def _accepted(argv: list[str]) -> str:
    """Parse ``argv`` (after `stemforge`) as the CLI does and check it; returns the run id it sets."""
    args, rest = build_parser().parse_known_args(argv)
    assert args.command == "run"
    config = load_config(REPO / "configs" / Path(args.config).name, _overrides(args))
    beam_options(rest)  # every flag that is not stemforge's must be a Beam option
    return config.run.run_id


def test_the_cronjob_forbids_overlap_fails_on_refusals_and_runs_a_valid_command():
    job = yaml.safe_load((EXAMPLES / "stemforge_cronjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    [rule] = spec["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    [container] = pod["containers"]
    assert rule["onExitCodes"]["containerName"] == container["name"]
    shell, flag, script = container["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    words = shlex.split(_render(script))
    assert words[:2] == ["exec", "stemforge"]
    assert _accepted(words[2:]) == "daily-20261205"


def _beam_args(options: dict) -> list[str]:
    """Flags from an operator's ``pipeline_options``, as the Beam provider writes them: ``--key`` for True,
    one ``--key=value`` per item of a list, ``--key=value`` otherwise."""
    args = []
    for key, value in options.items():
        if value is True:
            args.append(f"--{key}")
        else:
            args += [f"--{key}={item}" for item in (value if isinstance(value, list) else [value])]
    return args


def test_the_airflow_dag_parses_and_its_operator_runs_a_valid_command():
    tree = ast.parse((EXAMPLES / "stemforge_dag.py").read_text())
    [call] = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
              and getattr(node.func, "id", None) == "BeamRunPythonPipelineOperator"]
    kwargs = {k.arg: k.value for k in call.keywords}
    py_options, py_file, runner = (ast.literal_eval(kwargs[k]) for k in ("py_options", "py_file", "runner"))
    assert py_options == ["-m", "stemforge"]  # python -m stemforge is the stemforge CLI
    options = ast.literal_eval(kwargs["pipeline_options"])
    argv = [py_file, f"--runner={runner}", *_beam_args(options)]
    assert _accepted([_render(a) for a in argv]) == "daily-20261205"
    dag = next(node for node in ast.walk(tree)
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG")
    assert {k.arg: ast.literal_eval(k.value) for k in dag.keywords if k.arg == "max_active_runs"} == {
        "max_active_runs": 1}
