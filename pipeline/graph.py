"""The Beam graph: list → separate (batched across tracks in each worker process) → shards → commit.

    inputs ─ ListInputs (batches of refs with their content fingerprints) ─ DecideKeys (a join with the
      committed runs' key indexes, by key: one per source, keys, skip committed; pipeline.keyjoin) ─ variants
      ─ Reshuffle
      ─ SeparateTrack (decode, resample, augment, peak; model windows through the process's batcher, whose
                       batches mix tracks; masks to a local scratch file; stems + spectrogram rows, streamed)
      ─ WriteShards
      ─ Commit (errors/{run_id}.jsonl, runs/{run_id}.keys.parquet and .tracks.parquet, then runs/{run_id}.json last)

A mix run (``mix:``) lists stem sets and draws each variant's MixPlan; without a model, MixTrack makes each
mixture's audio and rows, and with one the mixtures go through SeparateTrack (teacher columns).

Every stage also publishes live progress counters (pipeline.progress) that the launcher shows.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.transforms.window import GlobalWindows

from stemforge.pipeline.commit import commit
from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.inputs import excluded_roots
from stemforge.pipeline.keyjoin import DecideKeys, pack, unpack
from stemforge.pipeline.keys import refs_table, source_record, table_refs, with_contents
from stemforge.pipeline.entries import Part, manifest_parts
from stemforge.pipeline.listing import MANIFEST_SUFFIXES, TrackRef, expand_input, expand_stemset
from stemforge.pipeline.sinks import ShardWriter, clean_leftovers
from stemforge.pipeline.stages import DONE, ERRORS, NAMESPACE, TIMING, JobFn, MixTrack, SeparateTrack, mix_variants
from stemforge.pipeline.storage import filesystem, join, options_for, retrying
from stemforge.shards.manifest import read_run
from stemforge.transforms.mixing import MixCatalog

LOG = logging.getLogger(__name__)
IGNORED = "ignored"  # (extension, count) of files a directory listing skipped
DASK_RUNNER_NAMES = ("DaskRunner", "apache_beam.runners.dask.dask_runner.DaskRunner")
SKIPPED = "skipped"
LISTED = "listed"
BATCH = 20_000  # refs per listed batch: keeps a batch a few MB while the join sees few elements


class PlanListing(JobFn):
    """An input URI as the parts it is listed in: a large manifest's row groups or byte ranges
    (``pipeline.entries``), else the whole input. Each part counts as a fraction of its input done."""

    def process(self, uri: str) -> Iterator[tuple[str, Part]]:
        config = self._job.config
        parts: list[Part] = [None]
        if config.mix is None and uri.lower().endswith(MANIFEST_SUFFIXES):
            try:
                parts = manifest_parts(uri, config.storage_options)
            except Exception:  # noqa: BLE001 - listed whole, so that its listing names the problem
                parts = [None]
        if len(parts) > 1:  # the parts add 1 each: the input is done when all of them are
            self.progress.add("inputs_done", 1 - len(parts))
        yield from ((uri, part) for part in parts)


class ListInputs(JobFn):
    """Expands an input URI (or one part of a manifest) on a worker, so a huge corpus is never listed in the
    launcher; yields the refs in batches of at most ``BATCH`` (packed ``pipeline.keys.REFS`` tables), each with
    its content fingerprint."""

    def process(self, task: tuple[str, Part]) -> Iterator[Any]:
        uri, part = task
        config = self._job.config
        ignored: Counter[str] = Counter()
        batch: list[TrackRef] = []
        try:
            if config.mix is not None:
                refs = expand_stemset(uri, config.mix.sources, config.storage_options)
            else:
                refs = expand_input(uri, config.input.extensions, config.storage_options, excluded_roots(config),
                                    ignored, part=part)
            for ref in refs:
                if isinstance(ref, tuple):
                    yield self.reject(ref[0], "list", ref[1])
                    continue
                batch.append(ref)
                if len(batch) == BATCH:
                    yield self._batch(batch)
                    batch = []
        except Exception as exc:  # noqa: BLE001 - a listing failure is dead-lettered, the run goes on
            yield self.reject(TrackRef(uri, ""), "list", exc)
        if batch:
            yield self._batch(batch)
        if ignored:  # files whose extension is not audio: counted for the progress line and the manifest
            self.progress.add("ignored", sum(ignored.values()))
            yield from (beam.pvalue.TaggedOutput(IGNORED, item) for item in ignored.items())
        self.progress.add("inputs_done")

    def _batch(self, refs: list[TrackRef]) -> bytes:
        Metrics.counter(NAMESPACE, "inputs").inc(len(refs))
        self.progress.add("listed", len(refs))
        return pack(refs_table(with_contents(refs, self._job.config.storage_options)))


class Decided(JobFn):
    """A batch of decided refs (``pipeline.keyjoin.DecideKeys``) as one element per ref to process; the
    count of those a run with this fingerprint committed goes to ``skipped`` (when the run skips them), and
    a mix run's every ref to ``listed`` (its remix partners)."""

    def process(self, packed: bytes) -> Iterator[Any]:
        decided = unpack(packed)
        if self._job.config.mix is not None:
            yield from (beam.pvalue.TaggedOutput(LISTED, ref) for ref in table_refs(decided))
        if self._job.config.run.skip_existing:
            committed = decided["committed"]
            skipped = pc.sum(committed).as_py() or 0
            if skipped:
                self.progress.add("skipped", skipped)
                yield beam.pvalue.TaggedOutput(SKIPPED, skipped)
            decided = decided.filter(pc.invert(committed))
        yield from table_refs(decided)


class WriteShards(JobFn):
    """Bundles rows into Parquet shards; yields each published shard's path."""

    def start_bundle(self) -> None:
        job = self._job
        self._writer = ShardWriter(job.config, job.checkpoint_sha256, job.layout, job.run_id,
                                   job.config.storage_options, staging=job.staging)

    def process(self, row: dict[str, Any]) -> Iterator[str]:
        yield from self._writer.add(row)

    def finish_bundle(self) -> Iterator[Any]:
        for path in self._writer.close():
            yield GlobalWindows.windowed_value(path)


def build(p: beam.Pipeline, job: Job) -> beam.PCollection:
    """Adds the whole run to a pipeline; the result holds the manifest's URI once committed."""
    config = job.config
    listed = (p | "Input" >> beam.Create(list(config.input.uris))
              | "PlanListing" >> beam.ParDo(PlanListing(job))
              | "SpreadListing" >> beam.Reshuffle()
              | "ListInputs" >> beam.ParDo(ListInputs(job)).with_outputs(ERRORS, IGNORED, main="refs"))
    decided = (listed.refs | "DecideKeys" >> DecideKeys(job)
               | "Decided" >> beam.ParDo(Decided(job)).with_outputs(SKIPPED, LISTED, main="refs"))
    refs, skipped, all_refs = decided.refs, decided[SKIPPED], decided[LISTED]
    if config.mix is None:
        variants = refs | "Variants" >> beam.FlatMap(lambda r: [(r, v) for v in range(config.augment.variants)])
    else:  # every listed track is a remix partner, also in a rerun that skips the committed ones
        catalog = beam.pvalue.AsSingleton(  # indexed once per run, not per variant (transforms.mixing)
            all_refs | "Catalog" >> beam.Map(lambda r: (r.track_key, dict(r.stems)))
            | "CatalogDict" >> beam.combiners.ToDict()
            | "CatalogIndex" >> beam.Map(MixCatalog, [tuple(s) for s in config.mix.targets.values()]))
        variants = refs | "Variants" >> beam.FlatMap(mix_variants, config, catalog)
    variants = variants | "Spread" >> beam.Reshuffle()
    stage = (beam.ParDo(SeparateTrack(job)) if config.runs_model else beam.ParDo(MixTrack(job)))
    assembled = variants | ("SeparateTrack" if config.runs_model else "MixTrack") >> stage.with_outputs(
        ERRORS, DONE, TIMING, main="rows")
    stage_errors, timing = (assembled[ERRORS],), assembled[TIMING]
    shards = assembled.rows | "WriteShards" >> beam.ParDo(WriteShards(job))
    errors = ((listed[ERRORS], *stage_errors) | "AllErrors" >> beam.Flatten())
    sources = refs | "SourceRecords" >> beam.Map(source_record)
    return (p | "Trigger" >> beam.Create([None])
            | "Commit" >> beam.Map(commit, job,
                                   beam.pvalue.AsList(sources),
                                   beam.pvalue.AsList(skipped), beam.pvalue.AsList(shards),
                                   beam.pvalue.AsList(assembled[DONE]), beam.pvalue.AsList(errors),
                                   beam.pvalue.AsList(timing), beam.pvalue.AsList(listed[IGNORED])))


def metrics_summary(result: beam.runners.runner.PipelineResult) -> dict[str, Any]:
    """The run's stemforge counters (committed values) and batch-size distribution."""
    try:
        query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))
    except NotImplementedError:  # the DaskRunner collects none; the manifest has the counts
        return {}
    summary: dict[str, Any] = {c.key.metric.name: c.committed for c in query["counters"]}
    for dist in query["distributions"]:
        value = dist.committed
        summary[dist.key.metric.name] = {"count": value.count, "sum": value.sum, "min": value.min, "max": value.max}
    return summary


def _runner(options: PipelineOptions) -> beam.runners.runner.PipelineRunner | None:
    """stemforge's DaskRunner when the options name Beam's (short or full name), else None (Beam picks);
    Beam's Dask runner and dask itself are imported only then."""
    if options.view_as(StandardOptions).runner not in DASK_RUNNER_NAMES:
        return None
    from stemforge.pipeline.dask import StemforgeDaskRunner

    return StemforgeDaskRunner()


def run(job: Job, options: PipelineOptions,
        test_pipeline: beam.Pipeline | None = None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Runs the job to completion; returns its committed manifest (None: nothing was listed, nothing
    committed) and its metrics."""
    config = job.config
    removed = retrying(lambda: clean_leftovers(config, job.run_id, config.storage_options, time.time()),
                       f"clean leftovers of dead runs in {config.output.uri}", config.storage_options)
    if removed:
        LOG.info("removed %d leftovers of runs that died: %s", len(removed), ", ".join(removed[:5]))
    pipeline = test_pipeline or beam.Pipeline(runner=_runner(options), options=options)
    build(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    uri = join(job.config.output.uri, "runs", f"{job.run_id}.json")
    fs, path = filesystem(uri, config.storage_options)
    if not retrying(lambda: fs.exists(path), f"check {uri}", config.storage_options):
        return None, metrics_summary(result)  # the commit wrote nothing: nothing was listed
    committed = retrying(lambda: read_run(uri, options_for(uri, config.storage_options)), f"read {uri}",
                         config.storage_options)
    return committed.raw, metrics_summary(result)
