"""`stemforge` command line: run a job, validate a config, or run the demo.

Job arguments are ours; everything else on the command line goes to Beam's PipelineOptions
(--runner, --direct_num_workers, --job_endpoint, --setup_file, Dataflow's options, ...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from typing import Any

import yaml
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from model import CheckpointError
from pipeline.config import Config, ConfigError, load_config
from pipeline.graph import Job, run
from pipeline.inference import RANDOM_INIT_SEED, load_net

LOG = logging.getLogger("stemforge")
EXIT_FATAL = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stemforge", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_p = commands.add_parser("run", help="run a separation job (unknown options go to Beam)",
                                description="Run a job. Options not listed here are Beam pipeline options, "
                                            "e.g. --runner, --direct_num_workers, --direct_running_mode, "
                                            "--job_endpoint, --environment_type, --setup_file.")
    run_p.add_argument("--config", required=True, help="YAML config file (see configs/)")
    run_p.add_argument("--input", help="overrides input.uri: a directory, glob or manifest")
    run_p.add_argument("--output", help="overrides output.uri")
    run_p.add_argument("--checkpoint", help="overrides model.checkpoint (vocal-remover .pth or .safetensors)")
    run_p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. --set model.batch_size=8 (repeatable)")
    check_p = commands.add_parser("validate-config", help="check a config and print the resolved one")
    check_p.add_argument("config", help="YAML config file")
    check_p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key")
    demo_p = commands.add_parser("demo", help="make a small corpus and run configs/demo.yaml on it")
    demo_p.add_argument("--workdir", default=".", help="where demo_corpus/ and demo_output/ are made")
    return parser


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = [f"{key}={json.dumps(value)}" for key, value in
             (("input.uri", args.input), ("output.uri", args.output), ("model.checkpoint", args.checkpoint))
             if value is not None]
    return list(args.set) + extra


def make_job(config: Config) -> Job:
    """Validates the config and the checkpoint in the launcher, so fatal problems fail fast."""
    config.require_runnable()
    net = load_net(config.model, config.storage_options, device="cpu")
    random_init = not config.model.checkpoint
    sha256 = f"random-init-seed-{RANDOM_INIT_SEED}" if random_init else net.checkpoint_sha256
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Job(config, config.run.run_id or config.default_run_id(), started, sha256, random_init, int(net.offset))


def run_job(config: Config, beam_args: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Runs a job; returns the exit code and the committed manifest."""
    job = make_job(config)
    if job.random_init:
        LOG.warning("=" * 72)
        LOG.warning("RANDOM WEIGHTS (model.allow_random_init): stems are NOT a real separation")
        LOG.warning("=" * 72)
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False
    manifest, metrics = run(job, options)
    LOG.info("metrics: %s", json.dumps(metrics, sort_keys=True))
    counts = manifest["counts"]
    if counts["inputs"] == 0 and counts["skipped"] == 0:
        print(f"stemforge: no input matched {config.input.uri}", file=sys.stderr)
        return EXIT_FATAL, manifest
    return 0, manifest


def print_summary(manifest: dict[str, Any], output_uri: str) -> None:
    """A short human summary of a committed run."""
    counts = manifest["counts"]
    print(f"run {manifest['run_id']}: {counts['succeeded']} tracks committed, {counts['failed']} rejected, "
          f"{counts['skipped']} skipped as already committed; {counts['rows']} rows in "
          f"{len(manifest['shards'])} shards, {counts['audio_seconds']:.1f} s of audio")
    print(f"  stems:        {output_uri}/stems/")
    print(f"  spectrograms: {output_uri}/spectrograms/{manifest['run_id']}/")
    if counts["failed"]:
        print(f"  errors:       {output_uri}/errors/{manifest['run_id']}.jsonl")
    print(f"  manifest:     {output_uri}/runs/{manifest['run_id']}.json")
    if manifest.get("random_init"):
        print("  NOTE: random weights were used (model.allow_random_init); the stems are not a real separation")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `stemforge` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, rest = _parser().parse_known_args(argv)
    try:
        if args.command == "validate-config":
            if rest:
                raise ConfigError(f"unrecognised arguments: {' '.join(rest)}")
            config = load_config(args.config, args.set)
            print(yaml.safe_dump(config.redacted(), sort_keys=False), end="")
            return 0
        if args.command == "demo":
            from pipeline.demo import run_demo

            return run_demo(args.workdir, rest)
        config = load_config(args.config, _overrides(args))
        code, manifest = run_job(config, rest)
        if manifest is not None and code == 0:
            print_summary(manifest, config.output.uri)
        return code
    except (ConfigError, CheckpointError) as exc:
        print(f"stemforge: {exc}", file=sys.stderr)
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
