"""Launching a run: the job decided in the launcher (config and checkpoint checked, so fatal problems fail
fast), Beam's options, the progress display while the pipeline works, and the summary of what it committed.
The only part of the command line that imports Beam (`stemforge train`, `evaluate`, `inspect`, `report`, `runs`, `gc`
do not).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions, _BeamArgumentParser
from apache_beam.runners.runner import create_runner

from stemforge.pipeline import lease
from stemforge.config.run import Config, ConfigError
from stemforge.pipeline.graph import DASK_RUNNER_NAMES, run
from stemforge.pipeline.inputs import check_inputs
from stemforge.pipeline.engine.job import Job, open_job
from stemforge.pipeline.listing import describe_ignored
from stemforge.pipeline.logs import printable
from stemforge.pipeline.progress import progress_folder
from stemforge.pipeline.progress_display import ProgressDisplay
from stemforge.pipeline.scratch import remove_stale, run_scratch
from stemforge.pipeline.storage import filesystem, join, redact_uri, retrying
from stemforge.text import count
from stemforge.pipeline.validation import check_device, check_output_folder

LOG = logging.getLogger("stemforge")
EXIT_FATAL = 2
# The DirectRunner's in-process engine (honours --direct_num_workers / --direct_running_mode). Named
# explicitly because Beam's DirectRunner first tries PrismRunner, which downloads a binary at run time.
DEFAULT_RUNNER = "FnApiRunner"
# runners that run the model in this process's machine, whose devices the launcher can check
LOCAL_RUNNERS = ("FnApiRunner", "SwitchingDirectRunner", "BundleBasedDirectRunner", "PrismRunner")


def make_job(config: Config, progress: bool = True) -> Job:
    """Validates the config, the inputs and the output folders in the launcher, so fatal problems fail fast, then
    opens the job (``engine.job.open_job``: the checkpoint loaded, every model default resolved from it) and
    refuses a run id that is already committed."""
    config.require_runnable()
    for key in ("uri", "stems_uri"):
        uri = getattr(config.output, key)
        if uri:
            try:
                check_output_folder(uri, config.storage_options, f"output.{key}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    check_inputs(config)
    job = open_job(config, progress)
    refuse_committed(job.config, job.run_id)
    return job


def refuse_committed(config: Config, run_id: str) -> None:
    """A ConfigError if ``run_id`` is already committed under the output root: a committed run is never
    overwritten. Checked again under the lease, so a run of the same id that committed meanwhile counts."""
    manifest = join(config.output.uri, "runs", f"{run_id}.json")
    fs, path = filesystem(manifest, config.storage_options)
    fs.invalidate_cache()
    if retrying(lambda: fs.exists(path), f"check {manifest}", config.storage_options):
        raise ConfigError(f"run.run_id: {run_id} is already committed ({redact_uri(manifest)}); "
                          "a committed run is never overwritten, choose another run_id")


def progress_for_runner(progress: str, options: PipelineOptions) -> str:
    """The display mode a runner gets: Dataflow has its own live job page, so there stemforge shows none
    and its workers publish no counters."""
    if progress != "off" and "dataflow" in str(options.view_as(StandardOptions).runner).lower():
        LOG.info("progress: follow the run on its Dataflow job page (counters, throughput, errors)")
        return "off"
    return progress


def beam_options(beam_args: list[str]) -> tuple[PipelineOptions, bool]:
    """Beam's options from the command line, and whether their runner runs on this machine. A flag no Beam
    option knows (Beam itself only warns) and a runner Beam cannot make are ConfigErrors, before any work."""
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    local = False
    if runner in DASK_RUNNER_NAMES:
        from apache_beam.runners.dask import dask_runner  # noqa: F401 - registers the Dask runner's options
    else:
        try:
            local = type(create_runner(runner)).__name__ in LOCAL_RUNNERS
        except (ValueError, ImportError, AttributeError) as exc:
            raise ConfigError(f"--runner={runner}: not a runner Beam knows ({' '.join(str(exc).split())[:200]})"
                              ) from None
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(beam_args)
    if unknown:
        raise ConfigError(f"run: unrecognised arguments (neither stemforge's nor a Beam option): {' '.join(unknown)}")
    options.view_as(SetupOptions).save_main_session = False
    options.view_as(StandardOptions).runner = runner
    return options, local


def run_job(config: Config, beam_args: list[str], progress: str = "off", progress_interval: float | None = None,
            before_work: Callable[[], None] | None = None) -> tuple[int, dict[str, Any] | None]:
    """Runs a job with a progress display (``live``, ``plain`` or ``off``); returns the exit code and the
    committed manifest. On a local runner the model's device is checked here; the run then takes the lease on
    its output root (``pipeline.lease``) and ``before_work`` is called once every check passed, so a refusal
    stays the only line a refused command prints."""
    options, local = beam_options(beam_args)
    if local and config.runs_model:
        try:
            check_device(config.model.device)
        except ValueError as exc:
            raise ConfigError(f"model.device: {exc}") from None
    progress = progress_for_runner(progress, options)
    job = make_job(config, progress=progress != "off")
    with lease.hold(config, job.run_id) as token:
        refuse_committed(config, job.run_id)
        return _run_leased(dataclasses.replace(job, lease_token=token), options, progress, progress_interval,
                           before_work)


def _run_leased(job: Job, options: PipelineOptions, progress: str, progress_interval: float | None,
                before_work: Callable[[], None] | None) -> tuple[int, dict[str, Any] | None]:
    """The part of :func:`run_job` that runs under the output root's lease."""
    config = job.config
    if before_work is not None:
        before_work()
    if job.random_init:
        LOG.warning("=" * 72)
        LOG.warning("RANDOM WEIGHTS (model.allow_random_init): stems are NOT a real separation")
        LOG.warning("=" * 72)
    display = ProgressDisplay(progress_folder(job.scratch), config.storage_options, len(config.input.uris),
                              config.augment.variants, progress, progress_interval, separates=config.runs_model)
    removed = remove_stale()
    if removed:
        LOG.info("removed %d local scratch folders of runs that died: %s", len(removed), ", ".join(removed[:3]))
    with run_scratch(), display:
        manifest, metrics = run(job, options)
    LOG.debug("metrics: %s", json.dumps(metrics, sort_keys=True))
    if manifest is None:  # listed nothing after all (the inputs changed since the check): nothing written
        uris = ", ".join(redact_uri(u) for u in config.input.uris)
        print(f"stemforge: {printable(f'no input matched {uris}')}", file=sys.stderr)
        return EXIT_FATAL, None
    display.finish(manifest)
    return 0, manifest


def print_summary(manifest: dict[str, Any], config: Config) -> None:
    """A short human summary of a committed run."""
    counts = manifest["counts"]
    output_uri = printable(redact_uri(config.output.uri or ""))
    print(f"run {manifest['run_id']}: {count(counts['succeeded'], 'track')} committed, {counts['failed']} rejected, "
          f"{counts['skipped']} skipped as already committed; {count(counts['rows'], 'row')} in "
          f"{count(len(manifest['shards']), 'shard')}, {counts['audio_seconds']:.1f} s of audio")
    if manifest.get("ignored"):
        print(printable(f"  {describe_ignored(manifest['ignored'])}: not audio by their extension (input.extensions)"))
    if config.output.write_stems:
        print(f"  stems:        {printable(redact_uri(config.output.stems_root or ''))}/")
    if config.output.write_spectrograms:
        print(f"  spectrograms: {output_uri}/spectrograms/{manifest['run_id']}/")
    if counts["failed"]:
        print(f"  errors:       {output_uri}/errors/{manifest['run_id']}.jsonl")
    print(f"  manifest:     {output_uri}/runs/{manifest['run_id']}.json")
    if manifest.get("random_init"):
        print("  NOTE: random weights were used (model.allow_random_init); the stems are not a real separation")
