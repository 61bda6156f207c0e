"""One track variant from its source to its stem files and rows, in the order the pipeline's DoFns take it
(``pipeline.stages``), and without Beam: for a notebook, a test, or another scheduler.

    job = open_job(load_config("run.yaml"))
    model = job.config.model
    batcher = WindowBatcher(load_model(model, job.config.storage_options), model.batch_size)
    chain = AugmentChain.from_config(list(job.config.augment.chain))
    out = separate_track(job, "song.flac", "song", 0, chain, batcher)

The pipeline drives the same steps through its DoFns, so that one batcher fills its batches across tracks
and threads; :func:`write_outputs` is the part both share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stemforge.model import WindowGrid
from stemforge.model.batcher import WindowBatcher
from stemforge.pipeline.engine.assemble import StemReport, spectrogram_rows, write_sources, write_stems
from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.engine.masks import TrackMasks
from stemforge.pipeline.engine.track import MaskReader, PreparedTrack, TrackMeta, grids
from stemforge.transforms import AugmentChain
from stemforge.transforms.mixing import MixPlan


@dataclass
class TrackOutput:
    """What one track variant gave: its metadata, its stem report (None: no stems written) and its rows."""

    meta: TrackMeta
    report: StemReport | None
    rows: list[dict[str, Any]]


def write_outputs(job: Job, track: PreparedTrack,
                  masks: MaskReader | None) -> tuple[StemReport | None, Iterator[dict[str, Any]]]:
    """Writes the track's stem files now (a mix run's sources, else the model's stems from ``masks``) and
    returns their report with the track's rows, made as they are read (the track must stay open until then)."""
    config = job.config
    if masks is None and config.runs_model:
        raise ValueError("the run has a model: its stems and model columns need the track's masks (a batcher)")
    report = None
    if config.output.write_stems and track.meta.mix is not None:
        report = write_sources(track, config, config.storage_options, staging=job.staging)
    elif config.output.write_stems:
        report = write_stems(track, masks, config, config.storage_options, staging=job.staging)
    if not config.output.write_spectrograms:
        return report, iter(())
    return report, spectrogram_rows(track, masks, config, report.gain if report else None)


@dataclass
class Submitted:
    """A track variant whose model windows are with the batcher: its masks' scratch file (complete once
    ``store.wait()`` returns) and the window grids they belong to."""

    store: TrackMasks
    passes: list[WindowGrid]  # built once: the windows were cut from them and the masks are read by them
    windows: int  # how many windows were submitted
    waited: float  # seconds ``submit`` blocked on a full batcher queue

    def masks(self, job: Job, meta: TrackMeta) -> MaskReader:
        """The track's mask by frame range, once ``store.wait()`` returned (merge_artifacts' weights read every
        window's mask as the reader is made)."""
        return MaskReader(meta, self.passes, job.config, self.store.load, job.model.aggression)


def submit_windows(job: Job, track: PreparedTrack, batcher: WindowBatcher) -> Submitted:
    """Hands every model window of the track to ``batcher``; the masks land in the track's scratch file as the
    batcher returns them (the file is closed again if a window fails to submit)."""
    passes = grids(track.meta, job.config, job.model.offset)
    store = TrackMasks(track.scratch_path("masks.f32"), [(p, i) for p, grid in enumerate(passes)
                                                          for i in grid.contributing()])
    windows, waited = 0, 0.0
    try:
        for pass_index, index, magnitude in track.windows(passes):
            windows += 1
            waited += batcher.submit(magnitude, store.receiver((pass_index, index)))
    except BaseException:
        store.close()
        raise
    return Submitted(store, passes, windows, waited)


def separate_track(job: Job, source: str, track_key: str, variant: int, chain: AugmentChain,
                   batcher: WindowBatcher | None, mix: MixPlan | None = None) -> TrackOutput:
    """One track variant, start to end: prepared, separated by ``batcher``'s model (None: a mix run without a
    model), its stems written and its rows returned (in memory: the pipeline streams them instead)."""
    with job.prepare(source, track_key, variant, chain, mix) as track:
        if batcher is None:
            report, rows = write_outputs(job, track, None)
            return TrackOutput(track.meta, report, list(rows))
        submitted = submit_windows(job, track, batcher)
        try:
            batcher.flush()
            submitted.store.wait()
            report, rows = write_outputs(job, track, submitted.masks(job, track.meta))
            return TrackOutput(track.meta, report, list(rows))
        finally:
            submitted.store.close()
