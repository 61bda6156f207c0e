"""What a run knows before it starts (config, identity, the checkpoint's fingerprint) and carries to every
worker: its scratch and staging folders and how a track is prepared."""

from __future__ import annotations

from dataclasses import dataclass

from stemforge.config.run import Config
from stemforge.pipeline.inference import ResolvedModel
from stemforge.pipeline.spectra import FrameLayout, frame_layout
from stemforge.pipeline.storage import is_transient_read, join, retry
from stemforge.pipeline.track import PreparedTrack
from stemforge.transforms import AugmentChain
from stemforge.transforms.mixing import MixPlan


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
