"""From a checkpoint to everything a separation needs: network, band table, stem names, window, aggression.

One entry point for notebooks and for the pipeline's launcher, with UVR's rules where UVR has them:

- the network comes from the weights (``model.detect``), never from the file size;
- a file UVR knows (``model.uvr_models``: the MD5 of its last 10,240,000 bytes) brings its band table,
  its stem names (primary, then secondary) and UVR's default aggression, 5;
- anything given explicitly wins over the table;
- without a band table a checkpoint must be single-band at ``n_fft`` (vocal-remover's): an ASPP net,
  or a CascadedNet whose LSTMs tie it to another n_fft, is refused with :class:`BandParamsRequired`
  (:class:`ShippedGeometry`, naming its own n_fft and hop, when it is the model stemforge ships);
- the window (``cropsize``) defaults to UVR's 512 for UVR models and vocal-remover's 256 otherwise, and
  ``merge_artifacts``' threshold to UVR's 0.2 and vocal-remover's 0.05;
- aggression is flipped when the first stem is a non-accompaniment stem (vocals, drums, bass, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from stemforge.model.checkpoint import CheckpointError, Uri, read_checkpoint
from stemforge.model.masks import Aggression
from stemforge.model.separator import Separator
from stemforge.model.shipped import ShippedModel, shipped_model
from stemforge.model.uvr_models import KnownModel, known_model, uvr_hash
from stemforge.transforms.bands import BandParams, load_band_params

DEFAULT_STEMS = ("instruments", "vocals")
UVR_AGGRESSION = 5


class BandParamsRequired(CheckpointError):
    """A multi-band checkpoint UVR's table does not know, with no band table given."""


class ShippedGeometry(BandParamsRequired):
    """stemforge's shipped model asked to run at another n_fft than its own; ``model`` has its geometry."""

    def __init__(self, message: str, model: ShippedModel) -> None:
        super().__init__(message)
        self.model = model


@dataclass(frozen=True)
class ModelSetup:
    """A loaded network and how to run it: ``bands`` None means vocal-remover's single band."""

    net: nn.Module
    bands: BandParams | None
    stems: tuple[str, str]
    cropsize: int
    aggression: Aggression | None
    postprocess_threshold: float
    known: KnownModel | None

    def separator(self, batch_size: int = 4, tta: bool = False, postprocess: bool = False,
                  device: str | torch.device | None = None, precision: str = "fp32") -> Separator:
        """A Separator that runs this model as its own procedure does (UVR's or vocal-remover's)."""
        return Separator(self.net, batch_size=batch_size, cropsize=self.cropsize, tta=tta, postprocess=postprocess,
                         device=device, precision=precision, aggression=self.aggression,
                         postprocess_threshold=self.postprocess_threshold)


def resolve_model(checkpoint: Uri, n_fft: int = 2048, band_params: str | BandParams | None = None,
                  stems: tuple[str, str] | None = None, cropsize: int | None = None, aggression: int | None = None,
                  device: str | torch.device | None = "auto", sha256: str | None = None,
                  storage_options: Mapping | None = None, known: KnownModel | None = None) -> ModelSetup:
    """Load ``checkpoint`` and decide how to run it (see the module's rules).

    ``known`` overrides the table lookup (None: look the file's UVR hash up). Raises CheckpointError
    (BandParamsRequired for an unknown multi-band file) and BandParamsError, each one line.
    """
    if known is None:
        known = known_model(uvr_hash(checkpoint, storage_options))
    table = band_params if band_params is not None else (known.band_params if known else None)
    bands = load_band_params(table, storage_options) if table is not None else None
    read = read_checkpoint(checkpoint, sha256, storage_options)
    if bands is None and (read.spec.family != "cascaded" or read.spec.n_fft != n_fft):
        shipped = shipped_model(read.digest)
        if shipped is not None:
            raise ShippedGeometry(
                f"{read.path} is stemforge's shipped {shipped.name} model, single-band at n_fft {shipped.n_fft} "
                f"and hop {shipped.hop_length}, not n_fft {n_fft}: set model.n_fft={shipped.n_fft} and "
                f"model.hop_length={shipped.hop_length} (evaluate: --n-fft {shipped.n_fft} --hop-length "
                f"{shipped.hop_length})", shipped)
        raise BandParamsRequired(
            f"{read.path} is a {read.spec.describe()}, not a single-band model at n_fft={n_fft}: "
            "give its UVR band table (a built-in name such as 4band_v2, or a modelparams JSON)")
    net = read.build(bands.n_fft if bands else n_fft, device)
    uvr = bands is not None
    names = stems or (known.stems if known else DEFAULT_STEMS)
    value = aggression if aggression is not None else (UVR_AGGRESSION if known else None)
    adjust = None
    if value is not None and uvr:
        adjust = Aggression.for_table(value, bands, names[0])
    elif value is not None:
        raise ValueError("aggression is UVR's setting and needs a band table (its split bin is band 1's crop_stop)")
    return ModelSetup(net, bands, tuple(names), cropsize or (512 if uvr else 256), adjust, 0.2 if uvr else 0.05,
                      known)
