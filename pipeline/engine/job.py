"""What a run knows before it starts (config, identity, the checkpoint's fingerprint) and carries to every
worker: its scratch and staging folders and how a track is prepared."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stemforge.config.run import Config
from stemforge.pipeline.engine.inference import RANDOM_INIT_SEED, ResolvedModel, resolve, resolved_model
from stemforge.pipeline.engine.layout import FrameLayout, frame_layout
from stemforge.pipeline.engine.track import PreparedTrack
from stemforge.pipeline.storage import is_transient_read, join, retry
from stemforge.transforms import AugmentChain
from stemforge.transforms.mixing import MixPlan

NO_MODEL = "none"  # the checkpoint sha256 of a mix run without a model (ground-truth columns only)


@dataclass(frozen=True)
class Job:
    """What a run knows before it starts: config, identity, the checkpoint's fingerprint and its resolved model."""

    config: Config
    run_id: str
    started_at: str
    checkpoint_sha256: str
    random_init: bool
    model: ResolvedModel  # decided at launch: no worker derives any of it again
    progress: bool = True  # workers publish live progress counters (pipeline.progress)
    lease_token: str | None = None  # the token of the run's leases (pipeline.lease), checked at commit; None: unleased

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint(self.checkpoint_sha256)

    @property
    def layout(self) -> FrameLayout:
        """The run's frame layout: what its rows' bins are and how its tracks' spectra are computed."""
        return frame_layout(self.model, self.config.model)

    @property
    def scratch(self) -> str:
        return join(self.config.output.uri, "_tmp", self.run_id)

    @property
    def staging(self) -> str:
        """Where local temporary copies wait before their rename (cleaned with the scratch folder)."""
        return join(self.scratch, "publish")

    def prepare(self, source: str, track_key: str, variant: int, chain: AugmentChain,
                mix: MixPlan | None = None) -> PreparedTrack:
        """A PreparedTrack (of a mix run's plan, when given); a transient storage failure while reading the
        input is retried with backoff."""
        config = self.config
        return retry(lambda: PreparedTrack(source, track_key, variant, config, config.storage_options, chain,
                                           self.model, mix),
                     f"read {source}", is_transient_read, config.storage_options)


def open_job(config: Config, progress: bool = True) -> Job:
    """The job of ``config``: every model default resolved from the checkpoint (``engine.inference.resolve``),
    the checkpoint's fingerprint, the start time and the run id (``run.run_id``, else a fresh default).

    It checks nothing about the inputs or the output folder: the launcher does that first
    (``pipeline.launch.make_job``)."""
    if config.runs_model:
        config, net = resolve(config)
        random_init = not config.model.checkpoint
        sha256 = f"random-init-seed-{RANDOM_INIT_SEED}" if random_init else net.checkpoint_sha256
    else:  # a mix run without a model: nothing to load
        model = config.model
        config = config.model_copy(update={"model": model.model_copy(update={"cropsize": model.cropsize or 256})})
        random_init, sha256, net = False, NO_MODEL, None
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    run_id = config.run.run_id or config.default_run_id()
    return Job(config, run_id, started, sha256, random_init, resolved_model(config, net), progress)
