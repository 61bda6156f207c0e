"""The DoFns that take a track variant from its source to its stems and rows: Beam's side of the engine
(``pipeline.engine``), whose ``one_track`` runs the same steps without Beam.

SeparateTrack does all of it in one step: prepare (decode, resample, augment, peak), submit the model windows
to the worker process's batcher (``pipeline.batchers``: one model, batches filled across tracks and threads),
and, once the masks are back in the track's local scratch file (``engine.masks``), write the stems and yield
the rows (``engine.one_track.write_outputs``). A mix run without a model does the same without the model
(MixTrack).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from stemforge.pipeline.batchers import acquire_batcher, release_batcher
from stemforge.pipeline.engine.assemble import StemReport
from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.engine.one_track import Submitted, submit_windows, write_outputs
from stemforge.pipeline.engine.rows import audio_stems
from stemforge.pipeline.engine.track import PreparedTrack, TrackError, TrackMeta
from stemforge.pipeline.listing import MixRef, TrackRef
from stemforge.pipeline.progress import ProgressWriter, progress_folder, timed
from stemforge.pipeline.sinks import ErrorRecord, TrackDone
from stemforge.pipeline.storage import PathEscape
from stemforge.transforms import AugmentChain
from stemforge.transforms.mixing import MixCatalog, draw_mix

NAMESPACE = "stemforge"
ERRORS = "errors"
DONE = "done"
TIMING = "timing"


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or type(exc).__name__


class JobFn(beam.DoFn):
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

    def misplaced(self, ref: TrackRef, variant: int) -> beam.pvalue.TaggedOutput | None:
        """The error record of a track variant whose stem files would land outside the stems folder, found
        before any work on it; None when every one lies inside."""
        config = self._job.config
        try:
            for stem in audio_stems(config) if config.output.write_stems else ():
                config.output.stem_uri(ref.track_key, variant, stem)
        except PathEscape as exc:
            return self.reject(ref, "write", exc)
        return None

    def written(self, meta: TrackMeta, rows: int, report: StemReport | None, seconds: float) -> Any:
        """The DONE record of a written track variant (its rows, stem gain and clipping), counted."""
        Metrics.counter(NAMESPACE, "rows").inc(rows)
        Metrics.counter(NAMESPACE, "tracks_committed").inc()
        self.progress.add("written", audio_seconds=meta.audio_seconds)
        clipped = report.clipped if report and any(report.clipped.values()) else None
        return beam.pvalue.TaggedOutput(DONE, TrackDone(meta.track_key, meta.variant, rows, meta.audio_seconds,
                                                        report.gain if report else None, clipped, round(seconds, 4),
                                                        meta.decoded))

    def finish_bundle(self) -> None:
        self.progress.flush()

    def teardown(self) -> None:
        self.progress.flush()


class TrackFn(JobFn):
    """A DoFn that prepares tracks, so it builds the augmentation chain once per worker."""

    def setup(self) -> None:
        super().setup()
        self._chain = AugmentChain.from_config(list(self._job.config.augment.chain))


@dataclass
class _Open:
    """A track variant whose windows are submitted and whose masks may still be on their way."""

    ref: TrackRef
    track: PreparedTrack
    submitted: Submitted


class SeparateTrack(TrackFn):
    """One track variant from source to stems and rows, its model windows batched with other tracks'.

    A track stays open (its scratch files on local disk) while its last windows wait for later tracks to fill
    their batch: at most ``MAX_OPEN`` tracks, then the oldest is flushed through. The bundle's end flushes the
    rest, so each bundle's outputs are complete when it finishes (a retried bundle redoes all of them).
    """

    MAX_OPEN = 2

    def setup(self) -> None:
        super().setup()
        config = self._job.config
        self._batcher = acquire_batcher(self._job.run_id, config.model, config.storage_options)
        self._open: deque[_Open] = deque()

    def start_bundle(self) -> None:
        self._discard_open()  # left by a bundle that failed: the runner retries it, with these tracks

    def teardown(self) -> None:
        super().teardown()
        self._discard_open()
        release_batcher(self._job.run_id)

    def _discard_open(self) -> None:
        while self._open:
            item = self._open.popleft()
            item.submitted.store.close()
            item.track.close()

    def process(self, element: tuple[TrackRef, int]) -> Iterator[Any]:
        ref, variant = element
        start = time.perf_counter()
        refused = self.misplaced(ref, variant)
        if refused is not None:
            yield refused
            return
        try:
            track = self._job.prepare(ref.source, ref.track_key, variant, self._chain, getattr(ref, "plan", None))
        except TrackError as exc:
            yield self.reject(ref, exc.stage, exc.cause)
            return
        meta = track.meta
        Metrics.counter(NAMESPACE, "audio_milliseconds").inc(int(meta.audio_seconds * 1000))
        try:
            submitted = submit_windows(self._job, track, self._batcher)
        except Exception as exc:  # noqa: BLE001 - one track's failure never stops the run
            track.close()
            yield self.reject(ref, "separate", exc)
            return
        Metrics.counter(NAMESPACE, "windows").inc(submitted.windows)
        self.progress.add("prepared", audio_seconds=meta.audio_seconds)
        yield beam.pvalue.TaggedOutput(TIMING, (ref.track_key, variant,
                                                time.perf_counter() - start - submitted.waited))
        self._open.append(_Open(ref, track, submitted))
        yield from self._finish(everything=False)

    def finish_bundle(self) -> Iterator[Any]:
        for out in self._finish(everything=True):
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(out.tag, GlobalWindows.windowed_value(out.value))
            else:
                yield GlobalWindows.windowed_value(out)
        super().finish_bundle()

    def _finish(self, everything: bool) -> Iterator[Any]:
        """Writes the open tracks, oldest first: those whose masks are all back, or all of them."""
        self._report_batches()
        while self._open and (everything or self._open[0].submitted.store.complete
                              or len(self._open) > self.MAX_OPEN):
            item = self._open.popleft()
            if not item.submitted.store.complete:
                self._batcher.flush()
            try:
                yield from self._write(item)
            finally:
                item.submitted.store.close()
                item.track.close()
            self._report_batches()

    def _report_batches(self) -> None:
        """The batcher's batch sizes as a metric (Beam's metrics count on the DoFn's thread, not the batcher's)."""
        for size in self._batcher.batch_sizes():
            Metrics.distribution(NAMESPACE, "batch_size").update(size)

    def _write(self, item: _Open) -> Iterator[Any]:
        track, meta = item.track, item.track.meta
        try:
            item.submitted.store.wait()
        except Exception as exc:  # noqa: BLE001 - the model failed on this track's windows
            yield self.reject(item.ref, "separate", exc)
            return
        self.progress.add("separated", audio_seconds=meta.audio_seconds)
        seconds = [0.0]
        start = time.perf_counter()

        rows = 0
        try:
            # one reader for the stems and the rows: merge_artifacts' weights read every mask once, not twice
            report, made = write_outputs(self._job, track, item.submitted.masks(self._job, meta))
            seconds[0] = time.perf_counter() - start
            for row in timed(made, seconds):
                rows += 1
                yield row
        except Exception as exc:  # noqa: BLE001 - one track's failure never stops the run
            yield self.reject(item.ref, "write", exc)
            return
        yield self.written(meta, rows, report, seconds[0])


def mix_variants(ref: MixRef, config: Any, catalog: MixCatalog) -> list[tuple[MixRef, int]]:
    """Each variant of a stem-set track with its drawn MixPlan (remix partners from the whole catalog)."""
    mix = config.mix
    return [(replace(ref, plan=draw_mix(config.augment.seed, ref.track_key, v, mix.targets, catalog, mix.gain_db,
                                        mix.remix_p, mix.drop_p)), v) for v in range(config.augment.variants)]


class MixTrack(TrackFn):
    """A mix run without a model: mixes one track variant and yields its audio files and rows in one step."""

    def process(self, element: tuple[MixRef, int]) -> Iterator[Any]:
        ref, variant = element
        start = time.perf_counter()
        refused = self.misplaced(ref, variant)
        if refused is not None:
            yield refused
            return
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
                report, made = write_outputs(self._job, track, None)
                for row in made:
                    rows += 1
                    yield row
        except Exception as exc:  # noqa: BLE001 - one track's failure never stops the run
            yield self.reject(ref, "write", exc)
            return
        yield self.written(meta, rows, report, time.perf_counter() - prepared)
        yield beam.pvalue.TaggedOutput(TIMING, (ref.track_key, variant, prepared - start))


