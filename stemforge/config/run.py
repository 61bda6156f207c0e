"""The one config schema of a stemforge run: validated pydantic models (read by ``stemforge.config.loader``).

Unknown keys are errors. Every key a user can set, and every default that does not depend on the checkpoint,
lives here. The model keys left ``None`` (``band_params``, ``cropsize``, ``aggression``, ``stems``,
``postprocess_threshold``) are decided from the checkpoint at launch (``model.resolve``, through
``pipeline.engine.inference.resolve``); the Beam runner is not a config key (``pipeline.launch.DEFAULT_RUNNER``).
The ``mix`` section (mix runs) is in ``stemforge.config.mix``. Importing this module imports no Beam and installs
no log filter: `stemforge train` reads its own schema with the same loader.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stemforge.config import loader as config_loader
from stemforge.config.loader import ConfigError, Section
from stemforge.config.mix import MixConfig
from stemforge.shards.paths import inside, join
from stemforge.transforms.audio_io import AUDIO_EXTENSIONS, check_stem_format
from stemforge.transforms.redaction import MASK, redact_uri
from stemforge.transforms.stft import check_geometry, check_window

STEM_SUBTYPE_DEFAULTS = {"flac": "PCM_24", "wav": "PCM_24", "ogg": "VORBIS"}
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # one safe path segment: runs/{id}.json, _tmp/{id}


class InputConfig(Section):
    uri: str | tuple[str, ...] | None = None
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS

    @field_validator("uri")
    @classmethod
    def _one_or_more(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        if isinstance(value, tuple) and (not value or not all(value)):
            raise ValueError("a list of inputs must name at least one, and no empty one")
        return value

    @property
    def uris(self) -> tuple[str, ...]:
        """Every input URI (``uri`` is one, or a list whose keys are each relative to their own root)."""
        return (self.uri,) if isinstance(self.uri, str) else tuple(self.uri or ())

    @field_validator("extensions")
    @classmethod
    def _dotted_lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in value)


class AudioConfig(Section):
    sample_rate: int = Field(44100, ge=1000, le=384000)
    multichannel: Literal["downmix", "reject"] = "downmix"


class AugmentConfig(Section):
    variants: int = Field(1, ge=1, le=1000)
    seed: int = 0
    keep_clean: bool = False
    chain: tuple[dict[str, Any], ...] = ()

    @field_validator("chain")
    @classmethod
    def _buildable(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        if value:  # audiomentations loads only for a config that has a chain
            from stemforge.transforms.chain import AugmentChain

            AugmentChain.from_config(list(value))
        return value


class ModelConfig(Section):
    checkpoint: str | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    allow_random_init: bool = False
    random_init_nout: int = Field(32, ge=4)
    random_init_nout_lstm: int = Field(128, ge=2)
    n_fft: int = Field(2048, ge=64)
    hop_length: int = Field(1024, ge=16)
    band_params: str | None = None
    cropsize: int | None = Field(None, ge=32)
    batch_size: int = Field(4, ge=1, le=4096)
    tta: bool = False
    postprocess: bool = False
    postprocess_threshold: float | None = Field(None, gt=0, lt=1)
    aggression: int | None = Field(None, ge=-100, le=100)
    high_end: Literal["none", "mirroring"] = "none"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    spectra: Literal["auto", "host", "device"] = "auto"  # where STFT, masking and ISTFT run (pipeline.engine.layout)
    cpu_threads: int | None = Field(None, ge=1, le=1024)
    share_across_processes: bool = False  # one model per machine (Beam's MultiProcessShared), served to its processes
    model_copies: int = Field(1, ge=1, le=64)  # with share_across_processes: how many copies that machine loads
    stems: tuple[str, str] | None = None

    @field_validator("hop_length")
    @classmethod
    def _invertible(cls, value: int, info: ValidationInfo) -> int:
        n_fft = info.data.get("n_fft")
        if n_fft is not None and n_fft % 2 == 0:  # an odd n_fft is refused on its own below
            check_geometry(n_fft, value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.n_fft % 2:
            raise ValueError("n_fft must be even")
        if self.cropsize is not None:
            check_window(self.cropsize)
        if self.stems is not None:
            if len(set(self.stems)) != 2 or any(not s.isidentifier() for s in self.stems):
                raise ValueError("stems must be two distinct identifier-like names")
            if set(self.stems) & {"mixture", "clean"}:
                raise ValueError("stems may not be named 'mixture' or 'clean' (reserved columns)")
        return self


class OutputConfig(Section):
    uri: str | None = None
    write_stems: bool = True
    write_spectrograms: bool = True
    stems_uri: str | None = None
    stem_format: Literal["flac", "wav", "ogg"] = "flac"
    stem_subtype: str | None = None
    flac_compression: float | None = Field(None, ge=0, le=1)  # libsndfile's 0..1; None: its default (0.5)
    stem_path: str = "{track_key}/v{variant}/{stem}.{ext}"
    clip: Literal["rescale", "clamp", "none"] = "rescale"
    spectrogram_dtype: Literal["float16", "float32"] = "float16"
    segment_frames: int = Field(256, ge=1)
    max_shard_bytes: int = Field(512 * 1024**2, ge=1024**2)
    row_group_bytes: int = Field(32 * 1024**2, ge=1024**2)

    @field_validator("stem_path")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        try:
            value.format(track_key="k", variant=0, stem="s", ext="e")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"stem_path may use only {{track_key}}, {{variant}}, {{stem}}, {{ext}}: {exc}") from None
        if "{track_key}" not in value or "{stem}" not in value:
            raise ValueError("stem_path must contain {track_key} and {stem}")
        if value.startswith("/") or "://" in value:
            raise ValueError(f"{value!r} is absolute: stem_path is a path inside the stems folder "
                             "(output.stems_uri, or OUTPUT/stems); set that folder to write elsewhere")
        odd = [part for part in value.split("/") if part in ("", ".", "..")]
        if odd:
            raise ValueError(f"{value!r} has a{'n empty' if not odd[0] else ' ' + repr(odd[0])} segment: "
                             "each part between '/' must name a folder or file inside the stems folder")
        return value

    @field_validator("clip")
    @classmethod
    def _clip_fits_subtype(cls, value: str, info: ValidationInfo) -> str:
        subtype = info.data.get("stem_subtype") or STEM_SUBTYPE_DEFAULTS.get(info.data.get("stem_format", ""), "")
        if value == "none" and subtype.upper() not in FLOAT_SUBTYPES:
            raise ValueError(f"'none' writes stem samples beyond ±1.0 as they are, which the {subtype} subtype "
                             "cannot hold: use stem_format wav with stem_subtype FLOAT or DOUBLE, or clip "
                             "rescale/clamp")
        return value

    @field_validator("stem_subtype")
    @classmethod
    def _format_holds_subtype(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "stem_format" in info.data:
            check_stem_format(info.data["stem_format"], value)
        return value

    @property
    def stems_root(self) -> str | None:
        """Where stem_path starts: ``stems_uri``, or OUTPUT/stems."""
        if self.stems_uri:
            return self.stems_uri
        return join(self.uri, "stems") if self.uri else None

    def stem_relative(self, track_key: str, variant: int, stem: str) -> str:
        """The path of one stem of a track variant inside ``stems_root``: ``stem_path`` filled in and normalised
        (PathEscape when a track key would take it outside)."""
        filled = self.stem_path.format(track_key=track_key, variant=variant, stem=stem, ext=self.stem_format)
        return inside(filled, self.stems_root or "the stems folder")

    def stem_uri(self, track_key: str, variant: int, stem: str) -> str:
        """Where one stem of a track variant is written."""
        return join(self.stems_root or "", self.stem_relative(track_key, variant, stem))

    @property
    def compression_level(self) -> float | None:
        """What soundfile's ``compression_level`` gets for a stem file (FLAC only)."""
        return self.flac_compression if self.stem_format == "flac" else None

    @property
    def resolved_subtype(self) -> str:
        """The soundfile subtype stems are written with."""
        return self.stem_subtype or STEM_SUBTYPE_DEFAULTS[self.stem_format]


class RunConfig(Section):
    skip_existing: bool = True
    run_id: str | None = Field(None, pattern=RUN_ID_PATTERN)
    chunk_seconds: float = Field(60.0, gt=0.5)
    clean_after_seconds: float = Field(86400.0, ge=0)
    lease_heartbeat_seconds: float = Field(30.0, gt=0)
    on_lease: Literal["fail", "wait"] = "fail"


class Config(Section):
    input: InputConfig = InputConfig()
    storage_options: dict[str, dict[str, Any]] = {}
    audio: AudioConfig = AudioConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    mix: MixConfig | None = None
    output: OutputConfig = OutputConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _variants_have_paths(self) -> Config:
        if self.augment.variants > 1 and "{variant}" not in self.output.stem_path:
            raise ValueError(f"output.stem_path must contain {{variant}} when augment.variants is "
                             f"{self.augment.variants}, or the variants' stems overwrite each other")
        if not (self.output.write_stems or self.output.write_spectrograms):
            raise ValueError("output: write_stems and write_spectrograms are both false; the run would write nothing")
        if self.mix is not None and self.augment.chain:
            from stemforge.transforms.chain import LINEAR_TRANSFORMS, is_linear  # audiomentations: only for a chain

            odd = [e.get("transform") for e in self.augment.chain if not is_linear(e.get("transform", ""))]
            if odd:
                raise ValueError(f"augment.chain: {odd[0]} is not applied to mixed stems (only "
                                 f"{', '.join(LINEAR_TRANSFORMS)}, which are linear, keep the targets summing to "
                                 "the mix)")
        return self

    @property
    def runs_model(self) -> bool:
        """Whether the run separates: always, except a mix run without a checkpoint (no teacher columns)."""
        return self.mix is None or bool(self.model.checkpoint) or self.model.allow_random_init

    def require_runnable(self) -> None:
        """Raise ConfigError unless the fields a run needs are present."""
        if not self.input.uri:
            raise ConfigError("input.uri: required (a directory, glob or manifest) — set it or pass --input")
        if not self.output.uri:
            raise ConfigError("output.uri: required — set it or pass --output")
        if self.mix is None and not self.model.checkpoint and not self.model.allow_random_init:
            raise ConfigError(
                "model.checkpoint: required — pass --checkpoint PATH (a vocal-remover .pth or .safetensors); "
                "random weights run only with model.allow_random_init: true"
            )

    def redacted(self) -> dict[str, Any]:
        """The config as plain data with every storage option value hidden (they hold secrets), and
        URLs without credentials (``user:password@``, query strings)."""
        data = self.model_dump(mode="json")
        data["storage_options"] = {
            proto: {key: MASK for key in opts} for proto, opts in self.storage_options.items()
        }
        for section, key in (("input", "uri"), ("output", "uri"), ("output", "stems_uri"), ("model", "checkpoint")):
            value = data[section][key]
            if isinstance(value, list):
                data[section][key] = [redact_uri(v) for v in value]
            elif value:
                data[section][key] = redact_uri(value)
        return data

    def fingerprint(self, checkpoint_sha256: str) -> str:
        """Hash of everything that decides a track's results; equal fingerprints mean reusable outputs."""
        data = self.model_dump(mode="json")
        relevant = {
            "audio": data["audio"],
            "augment": data["augment"],
            "model": {k: v for k, v in data["model"].items()
                      if k not in ("device", "batch_size", "cpu_threads", "checkpoint", "share_across_processes",
                                   "model_copies", "spectra")},
            "output": {k: data["output"][k] for k in ("write_stems", "stem_format", "stem_subtype", "stem_path",
                                                      "clip", "spectrogram_dtype", "segment_frames")},
            "checkpoint_sha256": checkpoint_sha256,
        }
        if data["mix"] is not None:
            relevant["mix"] = data["mix"]
        # keys added later count only away from their defaults, so earlier runs' fingerprints still hold
        for key, default in (("write_spectrograms", True), ("stems_uri", None)):
            if data["output"][key] != default:
                relevant["output"][key] = data["output"][key]
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def default_run_id(self) -> str:
        """UTC timestamp to the millisecond, a short hash of the config and a random part, e.g.
        20261124T071500.123Z-3f2a9c1d-5e0b77a1: two launches of one config (practically) never share an id."""
        now = dt.datetime.now(dt.UTC)
        stamp = f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z"
        digest = hashlib.sha256(json.dumps(self.redacted(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{stamp}-{digest}-{secrets.token_hex(4)}"


def build_config(data: dict[str, Any], overrides: list[str] | None = None, schema: type[Any] = Config) -> Any:
    """Validate plain data plus ``dotted.key=value`` overrides against ``schema`` (a run's Config by default)."""
    return config_loader.build_config(data, overrides, schema)


def load_config(path: str | Path, overrides: list[str] | None = None, schema: type[Any] = Config) -> Any:
    """Read a YAML config file and validate it against ``schema`` (a run's Config by default) with overrides."""
    return config_loader.load_config(path, overrides, schema)
