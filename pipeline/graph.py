"""The Beam graph: list → prepare → batched inference across tracks → assemble → shards → commit.

    inputs ─ ListInputs ─ unique keys ─ skip committed ─ variants ─ Reshuffle
      ─ PrepareTrack (decode, resample, augment, peak; yields model windows)
      ─ RunInference (windows of many tracks per batch; one model per worker process)
      ─ StoreMask (per-window masks to OUTPUT/_tmp/{run_id}) ─ GroupByKey(track variant)
      ─ AssembleTrack (stems + spectrogram rows, streamed) ─ WriteShards
      ─ Commit (errors/{run_id}.jsonl, then runs/{run_id}.json last)

A mix run (``mix:``) lists stem sets, draws each variant's MixPlan, and, without a model, makes each mixture's
audio and rows in one step (MixTrack); with a model the mixtures take the path above (teacher columns).

Every stage also publishes live progress counters (pipeline.progress) that the launcher shows.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows

from pipeline.assemble import StemReport, spectrogram_rows, write_sources, write_stems
from pipeline.commit import commit
from pipeline.dask import runner_for
from pipeline.inference import CascadedNetHandler, Window, WindowMask
from pipeline.job import Job
from pipeline.listing import MixRef, TrackRef, expand_input, expand_stemset, unique_keys
from pipeline.progress import ProgressWriter, progress_folder, timed
from pipeline.sinks import (
    ErrorRecord,
    ShardWriter,
    TrackDone,
    clean_leftovers,
)
from pipeline.storage import filesystem, join, publish_bytes, read_bytes, retrying
from pipeline.track import MaskReader, TrackError, TrackMeta, grids
from transforms import AugmentChain
from transforms.mixing import draw_mix

LOG = logging.getLogger(__name__)
NAMESPACE = "stemforge"
ERRORS = "errors"
DONE = "done"
TIMING = "timing"


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or type(exc).__name__


class _JobFn(beam.DoFn):
    """A DoFn that carries the job (config, run id, fingerprint) to the workers, and publishes its progress."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def setup(self) -> None:
        folder = progress_folder(self._job.scratch) if self._job.progress else None
        self.progress = ProgressWriter(folder, self._job.config.storage_options)

    def reject(self, ref: TrackRef, stage: str, exc: Exception) -> beam.pvalue.TaggedOutput:
        """The error record of a rejected input (the source named in its one-line message), counted."""
        Metrics.counter(NAMESPACE, "rejected").inc()
        self.progress.add("rejected")
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if ref.source not in message:
            message = f"{ref.source}: {message}"
        return beam.pvalue.TaggedOutput(ERRORS, ErrorRecord(ref.source, ref.track_key, stage, _reason(exc), message))

    def written(self, meta: TrackMeta, rows: int, report: StemReport | None, seconds: float) -> Any:
        """The DONE record of a written track variant (its rows, stem gain and clipping), counted."""
        Metrics.counter(NAMESPACE, "rows").inc(rows)
        Metrics.counter(NAMESPACE, "tracks_committed").inc()
        self.progress.add("written", audio_seconds=meta.audio_seconds)
        clipped = report.clipped if report and any(report.clipped.values()) else None
        return beam.pvalue.TaggedOutput(DONE, TrackDone(meta.track_key, meta.variant, rows, meta.audio_seconds,
                                                        report.gain if report else None, clipped, round(seconds, 4)))

    def finish_bundle(self) -> None:
        self.progress.flush()

    def teardown(self) -> None:
        self.progress.flush()


class _TrackFn(_JobFn):
    """A DoFn that prepares tracks, so it builds the augmentation chain once per worker."""

    def setup(self) -> None:
        super().setup()
        self._chain = AugmentChain.from_config(list(self._job.config.augment.chain))


class ListInputs(_JobFn):
    """Expands the input URI on a worker, so a huge corpus is never listed in the launcher."""

    def process(self, uri: str) -> Iterator[Any]:
        config = self._job.config
        try:
            if config.mix is not None:
                refs = expand_stemset(uri, config.mix.sources, config.storage_options)
            else:
                refs = expand_input(uri, config.input.extensions, config.storage_options)
            for ref in refs:
                if isinstance(ref, tuple):
                    yield self.reject(ref[0], "list", ref[1])
                    continue
                Metrics.counter(NAMESPACE, "inputs").inc()
                self.progress.add("listed")
                yield ref
        except Exception as exc:  # noqa: BLE001 - a listing failure is dead-lettered, the run goes on
            yield self.reject(TrackRef(uri, ""), "list", exc)
        self.progress.add("inputs_done")


class ReadCommitted(_JobFn):
    """Track keys that earlier runs with the same fingerprint committed (for skip_existing)."""

    def process(self, output_uri: str) -> Iterator[str]:
        options = self._job.config.storage_options
        fs, path = filesystem(join(output_uri, "runs"), options)
        fs.invalidate_cache()
        for manifest_path in retrying(lambda: fs.glob(f"{path}/*.json"), f"list {output_uri}/runs", options):
            data = retrying(lambda p=manifest_path: fs.cat_file(p), f"read {manifest_path}", options)
            manifest = json.loads(data)
            if manifest.get("status") == "committed" and manifest.get("fingerprint") == self._job.fingerprint:
                yield from manifest.get("tracks", [])


class CountSkipped(_JobFn):
    """Counts the tracks an earlier run committed, for the progress display."""

    def process(self, ref: TrackRef) -> Iterator[str]:
        self.progress.add("skipped")
        yield ref.track_key


class PrepareTrack(_TrackFn):
    """Decodes, resamples and augments one track variant, then yields its model windows, and at the end
    the seconds this took (TIMING), not counting the work of the fused stages downstream."""

    def process(self, element: tuple[TrackRef, int]) -> Iterator[Any]:
        ref, variant = element
        config = self._job.config
        start = time.perf_counter()
        try:
            track = self._job.prepare(ref.source, ref.track_key, variant, self._chain, getattr(ref, "plan", None))
        except TrackError as exc:
            yield self.reject(ref, exc.stage, exc.cause)
            return
        seconds = [time.perf_counter() - start]
        with track:
            Metrics.counter(NAMESPACE, "audio_milliseconds").inc(int(track.meta.audio_seconds * 1000))
            for pass_index, index, magnitude in timed(track.windows(config, self._job.offset), seconds):
                Metrics.counter(NAMESPACE, "windows").inc()
                yield Window(track.meta, pass_index, index, magnitude)
        self.progress.add("prepared", audio_seconds=track.meta.audio_seconds)
        yield beam.pvalue.TaggedOutput(TIMING, (ref.track_key, variant, seconds[0]))


class StoreMask(_JobFn):
    """Spills each window's mask to the run's scratch folder so assembly streams it back in order."""

    def process(self, item: WindowMask) -> Iterator[tuple[str, tuple[TrackMeta, int, int]]]:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(item.mask, np.float32))
        uri = join(self._job.scratch, item.meta.track_id, f"{item.pass_index}-{item.index:07d}.npy")
        publish_bytes(buffer.getvalue(), uri, self._job.config.storage_options)
        yield item.meta.track_id, (item.meta, item.pass_index, item.index)


class AssembleTrack(_TrackFn):
    """Writes the stems and yields the spectrogram rows of one track variant from its masks."""

    def process(self, element: tuple[str, Any]) -> Iterator[Any]:
        track_id, items = element
        start = time.perf_counter()
        items = list(items)
        meta: TrackMeta = items[0][0]
        config = self._job.config
        ref = TrackRef(meta.source, meta.track_key)
        offset = self._job.offset
        expected = {(p, i) for p, grid in enumerate(grids(meta, config, offset)) for i in grid.contributing()}
        if {(p, i) for _, p, i in items} != expected:
            yield self.reject(ref, "separate", RuntimeError(f"{meta.source}: incomplete model windows"))
            return
        self.progress.add("separated", audio_seconds=meta.audio_seconds)
        folder = join(self._job.scratch, track_id)

        def load_window(pass_index: int, index: int) -> np.ndarray:
            data = read_bytes(f"{folder}/{pass_index}-{index:07d}.npy", config.storage_options)
            return np.load(io.BytesIO(data))

        seconds = [0.0]
        try:
            with self._job.prepare(meta.source, meta.track_key, meta.variant, self._chain, meta.mix) as track:
                if track.meta != meta:
                    raise RuntimeError(f"{meta.source}: re-reading the track gave different audio")
                report = None
                if config.output.write_stems and meta.mix is not None:
                    report = write_sources(track, config, config.storage_options, staging=self._job.staging)
                elif config.output.write_stems:
                    report = write_stems(track, MaskReader(meta, config, offset, load_window, track.aggression),
                                         config, config.storage_options, staging=self._job.staging)
                rows = 0
                gain = report.gain if report else None
                seconds[0] = time.perf_counter() - start
                if config.output.write_spectrograms:
                    masks = MaskReader(meta, config, offset, load_window, track.aggression)
                    for row in timed(spectrogram_rows(track, masks, config, gain), seconds):
                        rows += 1
                        yield row
        except Exception as exc:  # noqa: BLE001 - one track's failure never stops the run
            yield self.reject(ref, "write", exc)
            return
        yield self.written(meta, rows, report, seconds[0])


def mix_variants(ref: MixRef, config: Any, catalog: dict[str, dict[str, str]]) -> list[tuple[MixRef, int]]:
    """Each variant of a stem-set track with its drawn MixPlan (remix partners from the whole catalog)."""
    mix = config.mix
    return [(replace(ref, plan=draw_mix(config.augment.seed, ref.track_key, v, mix.targets, catalog, mix.gain_db,
                                        mix.remix_p, mix.drop_p)), v) for v in range(config.augment.variants)]


class MixTrack(_TrackFn):
    """A mix run without a model: mixes one track variant and yields its audio files and rows in one step."""

    def process(self, element: tuple[MixRef, int]) -> Iterator[Any]:
        ref, variant = element
        config = self._job.config
        start = time.perf_counter()
        try:
            track = self._job.prepare(ref.source, ref.track_key, variant, self._chain, ref.plan)
        except TrackError as exc:
            yield self.reject(ref, exc.stage, exc.cause)
            return
        meta = track.meta
        prepared = time.perf_counter()
        self.progress.add("prepared", audio_seconds=meta.audio_seconds)
        rows = 0
        try:
            with track:
                report = (write_sources(track, config, config.storage_options, staging=self._job.staging)
                          if config.output.write_stems else None)
                if config.output.write_spectrograms:
                    for row in spectrogram_rows(track, None, config, report.gain if report else None):
                        rows += 1
                        yield row
        except Exception as exc:  # noqa: BLE001 - one track's failure never stops the run
            yield self.reject(ref, "write", exc)
            return
        yield self.written(meta, rows, report, time.perf_counter() - prepared)
        yield beam.pvalue.TaggedOutput(TIMING, (ref.track_key, variant, prepared - start))


class WriteShards(_JobFn):
    """Bundles rows into Parquet shards; yields each published shard's path."""

    def start_bundle(self) -> None:
        self._writer = ShardWriter(self._job.config, self._job.checkpoint_sha256, self._job.run_id,
                                   self._job.config.storage_options, staging=self._job.staging)

    def process(self, row: dict[str, Any]) -> Iterator[str]:
        yield from self._writer.add(row)

    def finish_bundle(self) -> Iterator[Any]:
        for path in self._writer.close():
            yield GlobalWindows.windowed_value(path)


def build(p: beam.Pipeline, job: Job) -> beam.PCollection:
    """Adds the whole run to a pipeline; the result holds the manifest's URI once committed."""
    config = job.config
    listed = (p | "Input" >> beam.Create(list(config.input.uris))
              | "ListInputs" >> beam.ParDo(ListInputs(job)).with_outputs(ERRORS, main="refs"))
    refs = (listed.refs
            | "KeyByTrack" >> beam.Map(lambda r: (r.track_key, r))
            | "GroupByKey" >> beam.GroupByKey()
            | "UniqueKeys" >> beam.FlatMap(lambda kv: unique_keys(list(kv[1]))))
    all_refs = refs
    if config.run.skip_existing:
        committed = (p | "OutputRoot" >> beam.Create([config.output.uri])
                     | "ReadCommitted" >> beam.ParDo(ReadCommitted(job)))
        committed_keys = beam.pvalue.AsList(committed)
        skipped = (refs | "Skipped" >> beam.Filter(lambda r, keys: r.track_key in set(keys), committed_keys)
                   | "CountSkipped" >> beam.ParDo(CountSkipped(job)))
        refs = refs | "NotCommitted" >> beam.Filter(lambda r, keys: r.track_key not in set(keys), committed_keys)
    else:
        skipped = p | "NothingSkipped" >> beam.Create([])
    if config.mix is None:
        variants = refs | "Variants" >> beam.FlatMap(lambda r: [(r, v) for v in range(config.augment.variants)])
    else:  # every listed track is a remix partner, also in a rerun that skips the committed ones
        catalog = beam.pvalue.AsDict(all_refs | "Catalog" >> beam.Map(lambda r: (r.track_key, dict(r.stems))))
        variants = refs | "Variants" >> beam.FlatMap(mix_variants, config, catalog)
    variants = variants | "Spread" >> beam.Reshuffle()
    if config.runs_model:
        prepared = variants | "PrepareTrack" >> beam.ParDo(PrepareTrack(job)).with_outputs(ERRORS, TIMING,
                                                                                             main="windows")
        assembled = (prepared.windows
                     | "Separate" >> RunInference(CascadedNetHandler(config.model, config.storage_options))
                     | "StoreMask" >> beam.ParDo(StoreMask(job))
                     | "GroupWindows" >> beam.GroupByKey()
                     | "AssembleTrack" >> beam.ParDo(AssembleTrack(job)).with_outputs(ERRORS, DONE, main="rows"))
        stage_errors, timing = (prepared[ERRORS], assembled[ERRORS]), prepared[TIMING]
    else:
        assembled = variants | "MixTrack" >> beam.ParDo(MixTrack(job)).with_outputs(ERRORS, DONE, TIMING,
                                                                                     main="rows")
        stage_errors, timing = (assembled[ERRORS],), assembled[TIMING]
    shards = assembled.rows | "WriteShards" >> beam.ParDo(WriteShards(job))
    errors = ((listed[ERRORS], *stage_errors) | "AllErrors" >> beam.Flatten())
    counted = refs | "CountInputs" >> beam.combiners.Count.Globally()
    return (p | "Trigger" >> beam.Create([None])
            | "Commit" >> beam.Map(commit, job,
                                   beam.pvalue.AsList(counted),
                                   beam.pvalue.AsList(skipped), beam.pvalue.AsList(shards),
                                   beam.pvalue.AsList(assembled[DONE]), beam.pvalue.AsList(errors),
                                   beam.pvalue.AsList(timing)))


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


def run(job: Job, options: PipelineOptions,
        test_pipeline: beam.Pipeline | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs the job to completion; returns its committed manifest and its metrics."""
    config = job.config
    removed = retrying(lambda: clean_leftovers(config, job.run_id, config.storage_options, time.time()),
                       f"clean leftovers of dead runs in {config.output.uri}", config.storage_options)
    if removed:
        LOG.info("removed %d leftovers of runs that died: %s", len(removed), ", ".join(removed[:5]))
    pipeline = test_pipeline or beam.Pipeline(runner=runner_for(options), options=options)
    build(pipeline, job)
    result = pipeline.run()
    result.wait_until_finish()
    uri = join(job.config.output.uri, "runs", f"{job.run_id}.json")
    return json.loads(read_bytes(uri, job.config.storage_options)), metrics_summary(result)
