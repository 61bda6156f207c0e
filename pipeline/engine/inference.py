"""The VR networks (vocal-remover's and UVR's) as a run loads them: the launcher resolves the model's settings
from its checkpoint once, and each worker process loads the network (``pipeline.batchers``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from stemforge.model import (
    Aggression,
    BandParamsRequired,
    CascadedASPPNet,
    CascadedNet,
    CheckpointError,
    InferenceModel,
    ShippedGeometry,
    load_checkpoint,
    resolve_model,
)
from stemforge.config.run import Config, ConfigError, ModelConfig
from stemforge.pipeline.storage import StorageOptions, is_transient, options_for, redact_uri, retry
from stemforge.transforms import BandParams, BandParamsError, load_band_params
from stemforge.transforms.stft import check_window

LOG = logging.getLogger(__name__)
RANDOM_INIT_SEED = 0


def random_init_net(config: ModelConfig) -> CascadedNet:
    """The fixed-seed random network the demo runs when no checkpoint is given."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(RANDOM_INIT_SEED)
        return CascadedNet(config.n_fft, config.random_init_nout, config.random_init_nout_lstm).eval()
    finally:
        torch.random.set_rng_state(generator_state)


def resolve(config: Config) -> tuple[Config, nn.Module]:
    """The config with every model default decided from the checkpoint, and the loaded network (on the CPU).

    ``model.resolve_model`` decides, with UVR's table and defaults for UVR files: the band table (and so
    n_fft and hop), stem names, window, aggression and merge_artifacts' threshold. The shipped model given as a
    checkpoint runs at its own n_fft and hop unless the config sets either. What it cannot run is a ConfigError
    naming the key to set.
    """
    model = config.model
    if not model.checkpoint:
        if model.band_params is not None or model.aggression is not None or model.high_end != "none":
            raise ConfigError("model.band_params: random weights (model.allow_random_init) run vocal-remover's "
                              "single-band net only; band_params, aggression and high_end need a UVR checkpoint")
        LOG.warning("RANDOM WEIGHTS: no checkpoint configured; outputs are NOT a real separation")
        net: nn.Module = random_init_net(model)
        update = {"cropsize": model.cropsize or 256, "stems": model.stems or ("instruments", "vocals"),
                  "postprocess_threshold": model.postprocess_threshold or 0.05}
    else:
        checkpoint = model.checkpoint
        options = options_for(checkpoint, config.storage_options)
        try:
            setup = retry(lambda: resolve_model(checkpoint, n_fft=model.n_fft, band_params=model.band_params,
                                                stems=model.stems, cropsize=model.cropsize,
                                                aggression=model.aggression, device="cpu", sha256=model.sha256,
                                                storage_options=options),
                          f"read checkpoint {redact_uri(checkpoint)}", is_transient,
                          config.storage_options)
        except ShippedGeometry as exc:  # the shipped model as a plain checkpoint: its own geometry, unless set
            if {"n_fft", "hop_length"} & model.model_fields_set:
                raise ConfigError(f"model.n_fft: {exc}") from None
            LOG.info("%s is the shipped %s model: it runs at n_fft %d, hop %d", redact_uri(checkpoint),
                     exc.model.name, exc.model.n_fft, exc.model.hop_length)
            own = {"n_fft": exc.model.n_fft, "hop_length": exc.model.hop_length}
            return resolve(config.model_copy(update={"model": model.model_copy(update=own)}))
        except (BandParamsRequired, BandParamsError) as exc:
            raise ConfigError(f"model.band_params: {exc}") from None
        except CheckpointError:
            raise
        except ValueError as exc:
            raise ConfigError(f"model.aggression: {exc}") from None
        net = setup.net
        update = {"cropsize": setup.cropsize, "stems": setup.stems,
                  "postprocess_threshold": model.postprocess_threshold or setup.postprocess_threshold,
                  "aggression": setup.aggression.value if setup.aggression else None}
        if setup.bands is not None:
            update.update(band_params=model.band_params or setup.bands.name, n_fft=setup.bands.n_fft,
                          hop_length=setup.bands.top.hl)
        elif model.high_end != "none":
            raise ConfigError("model.high_end: mirroring is UVR's high-end process and needs a band table")
    if model.spectra == "device" and "band_params" in update:
        raise ConfigError("model.spectra: the device path computes single-band spectrograms; a UVR band table's "
                          "run on the host (set auto or host)")
    try:
        check_window(update["cropsize"], int(net.offset))
    except ValueError as exc:
        raise ConfigError(f"model.{exc}: UVR models use 512 (320 and 1024 also work)") from None
    resolved = config.model_copy(update={"model": model.model_copy(update=update)})
    return resolved, net


@dataclass(frozen=True)
class ResolvedModel:
    """What a run decides about its model once, at launch, and carries to every worker in its ``Job``: the
    network's family, the band table (None: a single band of n_fft/hop_length), stem names, UVR's aggression
    for the masks, the window (``cropsize``) and the network's context ``offset`` (0 without a network)."""

    family: str  # "cascaded" (vocal-remover, UVR's VR 5.1) or "aspp" (UVR's CascadedASPPNet)
    bands: BandParams | None
    stems: tuple[str, str] | None
    aggression: Aggression | None
    cropsize: int
    offset: int

    @property
    def per_band(self) -> bool:
        """Whether a band table's channel conversions apply band by band (UVR's ``is_v51``), as for every
        network but the ASPP family."""
        return self.family != "aspp"


def resolved_model(config: Config, net: nn.Module | None) -> ResolvedModel:
    """The run's ResolvedModel from its resolved config (``resolve``) and network (None: a mix run without one)."""
    model = config.model
    uri = model.band_params
    bands = None if uri is None else load_band_params(uri, options_for(uri, config.storage_options))
    aggression = None
    if model.aggression is not None and bands is not None:
        aggression = Aggression.for_table(model.aggression, bands, model.stems[0])
    family = "aspp" if isinstance(net, CascadedASPPNet) else "cascaded"
    return ResolvedModel(family, bands, model.stems, aggression, model.cropsize, 0 if net is None else int(net.offset))


def load_net(config: ModelConfig, storage_options: StorageOptions, device: str = "cpu") -> nn.Module:
    """The configured checkpoint (weights_only, sha256-pinned if asked) or, if allowed, random weights, for a
    config that :func:`resolve` has resolved (its n_fft is the band table's for UVR models)."""
    if config.checkpoint:
        checkpoint = config.checkpoint
        return retry(lambda: load_checkpoint(checkpoint, n_fft=config.n_fft, device=device, sha256=config.sha256,
                                             storage_options=options_for(checkpoint, storage_options)),
                     f"read checkpoint {redact_uri(checkpoint)}", is_transient, storage_options)
    LOG.warning("RANDOM WEIGHTS: no checkpoint configured; outputs are NOT a real separation")
    return random_init_net(config)


def load_model(config: ModelConfig, storage_options: StorageOptions) -> InferenceModel:
    """The configured network on its device (see ``model.cpu_threads``)."""
    if config.cpu_threads is not None:
        # one intra-op pool per worker process: with several SDK processes per machine, N processes x N cores
        # threads would oversubscribe the CPUs
        torch.set_num_threads(config.cpu_threads)
    net = load_net(config, storage_options, device=config.device)
    return InferenceModel(net, device=config.device, precision=config.precision)
