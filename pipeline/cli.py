"""`stemforge` command line: run a job, separate a few files, validate a config, inspect or report on what a
run wrote, list the runs under an output and remove what none of them committed, or run the demo.

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
from stemforge.pipeline.progress_display import ProgressDisplay, add_progress_arguments, checked_interval
from stemforge.pipeline.separate import add_parser as add_separate_parser
from stemforge.pipeline.separate import print_separated, separate_config, shipped_model_note, uses_shipped_model
from stemforge.pipeline.storage import ScrubFilter, describe, join, publish_bytes, scrub
from stemforge.text import count
from stemforge.pipeline.validation import check_output_file, check_output_folder

LOG = logging.getLogger("stemforge")
EXIT_FAILED = 1
EXIT_FATAL = 2
EXIT_PIPE = 141  # 128 + SIGPIPE: what a Unix tool whose reader left exits with


EXAMPLES = """examples:
  stemforge run --config configs/separate.yaml --input music/ --output out/ --checkpoint baseline.pth
  stemforge run --config configs/separate.yaml --input music/ --output out/ --checkpoint 5_HP-Karaoke-UVR.pth
  stemforge separate song.mp3 album/ -o stems/ --checkpoint baseline.pth
  stemforge validate-config configs/simulate.yaml --set augment.variants=8
  stemforge synth stems/ --tracks 240 --seed 1
  stemforge run --config configs/mix.yaml --input stems/stemset.csv --output mixes/
  stemforge inspect out/ --json
  stemforge report out/ --output report.html
  stemforge runs out/
  stemforge gc out/ --dry-run
  stemforge train --config configs/train.yaml --data out/ --output models/run1/
  stemforge evaluate --checkpoint baseline.pth --data stems/ --output scores.csv
  stemforge demo

exit codes: 0 done (rejected inputs are listed in OUT/errors/), 1 the run failed (nothing committed),
  2 a fatal problem found before any work (config, checkpoint, no input, bad path), said in one line
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stemforge", description=" ".join(__doc__.split("\n\n")[0].split()),
                                     epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_p = commands.add_parser("run", help="run a separation job (unknown options go to Beam)",
                                description="Run a job. Options not listed here are Beam pipeline options, "
                                            "e.g. --runner, --direct_num_workers, --direct_running_mode, "
                                            "--job_endpoint, --environment_type, --setup_file; a flag Beam "
                                            "does not know either is refused.",
                                epilog="example: stemforge run --config configs/separate.yaml --input music/ "
                                       "--output out/ --checkpoint baseline.pth --runner=FnApiRunner "
                                       "--direct_num_workers=4")
    run_p.add_argument("--config", required=True, help="YAML config file (see configs/)")
    run_p.add_argument("--input", help="overrides input.uri: a directory, glob or manifest")
    run_p.add_argument("--output", help="overrides output.uri")
    run_p.add_argument("--checkpoint", help="overrides model.checkpoint (vocal-remover .pth or .safetensors)")
    run_p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. --set model.batch_size=8 (repeatable)")
    add_progress_arguments(run_p)
    check_p = commands.add_parser("validate-config", help="check a config and print the resolved one",
                                  description="Check a config (with its --set overrides) against the schema and "
                                              "print it resolved, secrets hidden; a problem is one line, exit 2.",
                                  epilog="example: stemforge validate-config configs/simulate.yaml "
                                         "--set augment.variants=8")
    check_p.add_argument("config", help="YAML config file")
    check_p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key, e.g. --set model.batch_size=8 (repeatable)")
    inspect_p = commands.add_parser(
        "inspect", help="describe a shard, a run manifest or an output folder",
        description="Describe a Parquet shard, a run manifest (runs/*.json) or an output folder: schema and "
                    "tensor shapes, rows, tracks, variants and segments, value ranges, the run's config and "
                    "checkpoint, and whether each shard is committed. Example: stemforge inspect out/")
    inspect_p.add_argument("path", help="a .parquet shard, a runs/*.json manifest or an output folder (any fsspec URL)")
    inspect_p.add_argument("--json", action="store_true", help="machine-readable output")
    report_p = commands.add_parser(
        "report", help="a self-contained HTML report of a run, with pictures",
        description="Write one self-contained HTML file (no network) about the runs under an output folder: "
                    "summary, errors, spectrograms and waveforms of sample tracks, augmentation histograms, "
                    "shards and timing. Example: stemforge report out/ --output report.html")
    report_p.add_argument("path", help="an output folder (any fsspec URL)")
    report_p.add_argument("--run", dest="run_id", help="only this run id (default: every committed run)")
    report_p.add_argument("--output", help="where to write it (default OUT/report.html)")
    report_p.add_argument("--samples", type=int, default=3, help="tracks whose spectrograms are shown (default 3)")
    add_separate_parser(commands)
    housekeeping.add_parsers(commands)
    train_p = commands.add_parser(
        "train", help="train CascadedNet on the shards of stemforge runs (vocal-remover's recipe)",
        description="Train vocal-remover's CascadedNet on the committed shards of one or more output folders. A "
                    "rerun with the same --output continues exactly where the last one stopped. Example: "
                    "stemforge train --config configs/train.yaml --data out/ --output models/run1/")
    train_p.add_argument("--config", help="YAML config (configs/train.yaml); default: the built-in defaults")
    train_p.add_argument("--data", nargs="+", required=True, metavar="OUT", help="output roots (data.roots)")
    train_p.add_argument("--output", required=True, help="a local folder for checkpoints, state and logs")
    train_p.add_argument("--init", help="fine-tune from this vocal-remover checkpoint")
    train_p.add_argument("--max-steps", type=int, help="stop after this many steps (state saved; rerun continues)")
    train_p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    train_p.add_argument("--quiet", action="store_true", help="no progress line")
    evaluate_p = commands.add_parser(
        "evaluate", help="score a checkpoint on a stem set: SDR, SI-SDR and SI-SDR improvement per track",
        description="Separate every track of a stem set (a .csv/.jsonl/.parquet manifest with a column per stem, "
                    "or a folder of {track}/{stem}.{ext} files) and score each stem the model names. Example: "
                    "stemforge evaluate --checkpoint baseline.pth --data musdb_like/ --output scores.csv")
    evaluate_p.add_argument("--checkpoint", required=True, help="a vocal-remover, UVR or RVC checkpoint")
    evaluate_p.add_argument("--data", required=True, help="a stem-set manifest or folder (any fsspec URL)")
    evaluate_p.add_argument("--output", help="also write the scores as CSV here")
    evaluate_p.add_argument("--n-fft", type=int, default=2048, help="single-band models' n_fft (default 2048)")
    evaluate_p.add_argument("--hop-length", type=int, default=1024, help="single-band models' hop (default 1024)")
    evaluate_p.add_argument("--band-params", help="UVR band table, for a multi-band file UVR's table does not know")
    evaluate_p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                            help="where the model runs (default auto: cuda, then mps, then cpu)")
    evaluate_p.add_argument("--batch-size", type=int, default=4, help="model windows per batch (default 4)")
    synth_p = commands.add_parser(
        "synth", help="make a synthetic voice-over-music stem set (espeak-ng voices, synthesised music)",
        description="Write {track}/instruments.wav and {track}/vocals.wav for N tracks plus stemset.csv; the same "
                    "seed gives the same files. Example: stemforge synth stems/ --tracks 240 --seed 1")
    synth_p.add_argument("folder", help="a local folder")
    synth_p.add_argument("--tracks", type=int, required=True, help="how many tracks to make")
    synth_p.add_argument("--seed", type=int, required=True, help="the seed every voice, note and ratio is drawn from")
    synth_p.add_argument("--seconds", type=float, default=10.0, help="track length (default 10)")
    synth_p.add_argument("--ratios-db", default="-5,0,5", help="voice-to-music ratios drawn from (default -5,0,5)")
    real_p = commands.add_parser(
        "synth-real", help="make a stem set from recorded voices and music (Debian packages), voices augmented",
        description="Like synth, from klettres-data and fillets-ng-data voices (plus espeak-ng, Flite and Festival "
                    "on the train side) over game soundtracks; the train and heldout sides share no speaker and "
                    "no music package. stemset.csv names every source file, sources.json every package's "
                    "licence.",
        epilog="example: stemforge synth-real stems/ --tracks 240 --seed 1 --split train")
    real_p.add_argument("folder", help="a local folder")
    real_p.add_argument("--tracks", type=int, required=True, help="how many tracks to make")
    real_p.add_argument("--seed", type=int, required=True, help="the seed every voice, piece and ratio is drawn from")
    real_p.add_argument("--split", choices=("train", "heldout"), required=True,
                        help="which side: train and heldout share no speaker and no music package")
    real_p.add_argument("--seconds", type=float, default=12.0, help="track length (default 12)")
    real_p.add_argument("--ratios-db", default="-5,0,5", help="voice-to-music ratios, cycled (default -5,0,5)")
    demo_p = commands.add_parser("demo", help="make a small corpus and run configs/demo.yaml on it",
                                 description="Make a small corpus (and, with espeak-ng, voice-over-music mixes) in "
                                             "WORKDIR/demo_corpus/, separate it with configs/demo.yaml and the "
                                             "shipped model into WORKDIR/demo_output/, and write its report.",
                                 epilog="example: stemforge demo --workdir /tmp/stemforge-demo")
    demo_p.add_argument("--workdir", default=".", help="where demo_corpus/ and demo_output/ are made")
    add_progress_arguments(demo_p)
    return parser


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
        from stemforge.pipeline.report import ReportError, write_report  # matplotlib: imported only when a report is drawn

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
    args, rest = _parser().parse_known_args(argv)
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
