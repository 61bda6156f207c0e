"""The arguments of every `stemforge` command, their help and the examples ``--help`` ends with
(``pipeline.cli`` parses with :func:`build_parser` and runs the command)."""

from __future__ import annotations

import argparse

from stemforge.pipeline import housekeeping
from stemforge.pipeline.progress_display import add_progress_arguments
from stemforge.pipeline.separate import add_parser as add_separate_parser

DESCRIPTION = ("`stemforge` command line: run a job, separate a few files, validate a config, inspect or report on "
               "what a run wrote, list the runs under an output and remove what none of them committed, or run the "
               "demo.")

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


def build_parser() -> argparse.ArgumentParser:
    """Every command, its arguments and its help (``--help`` ends with examples and the exit codes)."""
    parser = argparse.ArgumentParser(prog="stemforge", description=DESCRIPTION,
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
