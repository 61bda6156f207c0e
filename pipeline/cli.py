"""`stemforge` command line: parse the arguments (``pipeline.cli_args``), run the command, and turn what went
wrong into one line and an exit code (0 done, 1 failed, 2 fatal before any work).

`run`'s own arguments are ours; everything else on its command line goes to Beam's PipelineOptions
(--runner, --direct_num_workers, --job_endpoint, --setup_file, Dataflow's options, ...). Every other
command refuses options it does not know.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import sys
import traceback
from typing import Any

import yaml

from stemforge.model.errors import CheckpointError
from stemforge.pipeline import housekeeping
from stemforge.config.run import Config, ConfigError, load_config
from stemforge.pipeline.inspect import InspectError, inspect_path, render
from stemforge.pipeline.interrupts import EXIT_CODES, received, say_stopped, stop_on_signals
from stemforge.pipeline.logs import configure_cli_logging, printable
from stemforge.pipeline.cli_args import build_parser
from stemforge.pipeline.progress_display import ProgressDisplay, checked_interval
from stemforge.pipeline.separate import print_separated, separate_config, shipped_model_note, uses_shipped_model
from stemforge.pipeline.storage import ScrubFilter, describe, join, publish_bytes, scrub
from stemforge.text import count
from stemforge.pipeline.validation import check_output_file, check_output_folder

LOG = logging.getLogger("stemforge")
EXIT_FAILED = 1
EXIT_FATAL = 2
EXIT_PIPE = 141  # 128 + SIGPIPE: what a Unix tool whose reader left exits with


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = [f"{key}={json.dumps(value)}" for key, value in
             (("input.uri", args.input), ("output.uri", args.output), ("model.checkpoint", args.checkpoint))
             if value is not None]
    return list(args.set) + extra


def _refuse_unwritable(check: Any, uri: str, what: str) -> None:
    """``check`` (a ``pipeline.validation`` output check) of ``uri``, its refusal as a one-line ConfigError."""
    try:
        check(uri, {}, what)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _scrub_logs(storage_options: dict[str, Any] | None) -> None:
    """Every log record through the root handlers is scrubbed of storage option and credential values."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, ScrubFilter)]:
            handler.removeFilter(old)
        handler.addFilter(ScrubFilter(storage_options))


def _synth_real(args: argparse.Namespace) -> int:
    """`stemforge synth-real`: the stem set, with a progress line every 10 tracks on stderr."""
    from stemforge.training.realsynth import make_real_stemset
    from stemforge.training.synth import SynthError

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"synth-real: {done}/{total} tracks", file=sys.stderr, flush=True)

    try:
        ratios = tuple(float(r) for r in args.ratios_db.split(","))
        made = make_real_stemset(args.folder, args.tracks, args.seed, args.split, args.seconds, ratios, progress)
    except (SynthError, ValueError) as exc:
        raise ConfigError(f"synth-real: {exc}") from None
    print(f"synth-real: {count(len(made), 'track')} in {args.folder} (manifest {args.folder.rstrip('/')}/stemset.csv)")
    return 0


def _command(args: argparse.Namespace, rest: list[str]) -> tuple[int, Config | None]:
    """Runs one parsed command; returns its exit code and the config it ran (for scrubbing)."""
    if args.command != "run" and rest:
        raise ConfigError(f"{args.command}: unrecognised arguments: {' '.join(rest)}")
    if args.command == "validate-config":
        config = load_config(args.config, args.set)
        print(yaml.safe_dump(config.redacted(), sort_keys=False), end="")
        return 0, config
    if args.command == "inspect":
        report = inspect_path(args.path)
        print(json.dumps(report, indent=2, sort_keys=True) if args.json else render(report))
        return 0, None
    if args.command in ("runs", "gc"):
        return housekeeping.run_command(args), None
    if args.command == "evaluate":
        return _evaluate(args), None
    if args.command == "train":
        return _train(args), None
    if args.command == "synth":
        from stemforge.training.synth import SynthError, make_stemset

        try:
            ratios = tuple(float(r) for r in args.ratios_db.split(","))
            made = make_stemset(args.folder, args.tracks, args.seed, args.seconds, ratios)
        except (SynthError, ValueError) as exc:
            raise ConfigError(f"synth: {exc}") from None
        print(f"synth: {count(len(made), 'track')} in {args.folder} (manifest {args.folder.rstrip('/')}/stemset.csv)")
        return 0, None
    if args.command == "synth-real":
        return _synth_real(args), None
    if args.command == "report":
        # matplotlib: imported only when a report is drawn
        from stemforge.pipeline.report import ReportError, write_report

        _refuse_unwritable(check_output_file, args.output or join(args.path, "report.html"), "report --output")
        try:
            print(f"report: {write_report(args.path, args.output, args.run_id, args.samples)}")
        except ReportError as exc:
            raise ConfigError(str(exc)) from None
        return 0, None
    from stemforge.pipeline.launch import print_summary, run_job  # Beam: imported only by the commands that run a job

    interval = checked_interval(args.progress_interval)
    mode = ProgressDisplay.choose_mode(args.quiet)
    if args.command == "demo":
        from stemforge.pipeline.demo import run_demo

        return run_demo(args.workdir, mode, interval), None
    config = separate_config(args) if args.command == "separate" else load_config(args.config, _overrides(args))
    _scrub_logs(config.storage_options)
    note = shipped_model_note if args.command == "separate" and uses_shipped_model(args) else None
    code, manifest = run_job(config, rest, mode, interval, before_work=note)
    if manifest is not None and code == 0:
        if args.command == "separate":
            print_separated(manifest, config)
        else:
            print_summary(manifest, config)
    return code, config


def _train(args: argparse.Namespace) -> int:
    from stemforge.training.config import load_train_config
    from stemforge.training.data import DataError
    from stemforge.training.trainer import StateMismatch, Trainer

    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"train: --max-steps must be at least 1, got {args.max_steps}")
    config = load_train_config(args.config, [*args.set, f"data.roots={json.dumps(args.data)}"])
    _refuse_unwritable(check_output_folder, args.output, "train --output")
    try:
        trainer = Trainer(config, args.output, init=args.init)
        rows = trainer.run(max_steps=args.max_steps, quiet=args.quiet)
    except (DataError, StateMismatch) as exc:
        raise ConfigError(f"train: {exc}") from None
    print(trainer.summary(rows))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from stemforge.training.evaluate import evaluate, render, to_csv

    if args.output:
        _refuse_unwritable(check_output_file, args.output, "evaluate --output")
    try:
        rows = evaluate(args.checkpoint, args.data, n_fft=args.n_fft, hop_length=args.hop_length,
                        band_params=args.band_params, device=args.device, batch_size=args.batch_size)
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"evaluate: {exc}") from None
    print(render(rows))
    if args.output:
        publish_bytes(to_csv(rows).encode(), args.output, {})
        print(f"scores: {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `stemforge` console script.

    Exit codes: 0 done (a run committed; rejected inputs are in errors/), 1 failed (nothing committed),
    2 a fatal problem found before any work (config, checkpoint, no input, a bad path), said in one line.
    """
    configure_cli_logging()
    _scrub_logs(None)
    args, rest = build_parser().parse_known_args(argv)
    config = None
    try:
        with stop_on_signals():
            code, config = _command(args, rest)
        return code
    except (ConfigError, CheckpointError, InspectError) as exc:
        print(f"stemforge: {printable(scrub(str(exc), config.storage_options if config else None))}", file=sys.stderr)
        return EXIT_FATAL
    except Exception as exc:  # noqa: BLE001 - a failed run: scrubbed traceback in the log, one line on stderr
        if received() is not None:  # Beam wraps the interrupt in its own exceptions
            return _stopped()
        if isinstance(exc, BrokenPipeError) and _stdout_gone():  # `stemforge inspect out/ | head`
            return EXIT_PIPE
        options = config.storage_options if config else None
        LOG.error("%s failed:\n%s", args.command, scrub("".join(traceback.format_exception(exc)), options))
        what = "run failed, nothing committed" if args.command in ("run", "separate", "demo") else "failed"
        print(f"stemforge: {what}: {printable(describe(exc, options)[:300])}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # SIGINT or SIGTERM (pipeline.interrupts)
        return _stopped()


def _stdout_gone() -> bool:
    """Whether stdout's reader has gone (its pipe is broken); if so, stdout is pointed at /dev/null so that
    Python's flush at exit is quiet too, as a Unix tool ends when the reader of its output leaves."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poller.poll(0))  # a pipe without readers
    except (AttributeError, OSError, ValueError):  # no poll(), or stdout is no file
        return False
    if gone:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return gone


def _stopped() -> int:
    """One line and the shell's exit code for the signal that stopped the command."""
    signum = received() or signal.SIGINT
    say_stopped(signum)
    return EXIT_CODES[signum]


if __name__ == "__main__":
    sys.exit(main())
