"""UVR band tables ("modelparams" JSONs): what a multi-band spectrogram is made of.

A table lists bands from the lowest rate up (UVR numbers them 1…N; here ``bands[0]`` is band 1 and
``bands[-1]`` the top band). Each band is an STFT of the track resampled to ``sr`` whose rows
``[crop_start, crop_stop)`` are stacked, in band order, into one ``[2, bins + 1, frames]`` spectrogram.

Read as UVR's ``ModelParameters`` reads them: digit keys are band numbers, ``n_bins`` (when present)
replaces ``bins``, the global flags default to False, ``sr`` defaults to 44100 and the pre-filter
bounds to -1. Training-only keys (``unstable_bins``, ``reduction_bins``, ``stable_bins``) are dropped.
``mid_side_b``, ``stereo_w`` and the global ``stereo_n`` are parsed but UVR's procedure never acts on
them, and neither does stemforge.

Built-in tables are UVR's published files, shipped in ``transforms/bandparams/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import fsspec

from stemforge.transforms.redaction import scrub

CONVERSIONS = frozenset({"mid_side", "stereo_n", "mid_side_c"})
_FLAGS = ("mid_side", "mid_side_b", "mid_side_b2", "stereo_w", "stereo_n", "reverse")


class BandParamsError(ValueError):
    """A band table that is missing, unreadable or not a valid UVR modelparams table (one line)."""


@dataclass(frozen=True)
class Band:
    """One band: STFT at ``sr`` with hop ``hl`` and ``n_fft``; rows ``[crop_start, crop_stop)`` kept.

    ``lpf_*``/``hpf_*`` are the synthesis ramps (None where the table has none; ``hpf_start <= 0``
    means no high-pass), ``res_type`` the resampler that brings the next band up's wave to ``sr``,
    ``convert_channels`` the VR 5.1 per-band channel conversion (None, ``mid_side``, ``stereo_n``,
    ``mid_side_c``)."""

    sr: int
    hl: int
    n_fft: int
    crop_start: int
    crop_stop: int
    res_type: str
    lpf_start: int | None = None
    lpf_stop: int | None = None
    hpf_start: int | None = None
    hpf_stop: int | None = None
    convert_channels: str | None = None

    @property
    def rows(self) -> int:
        """Rows this band contributes to the combined spectrogram."""
        return self.crop_stop - self.crop_start

    @property
    def has_highpass(self) -> bool:
        return self.hpf_start is not None and self.hpf_start > 0


@dataclass(frozen=True)
class BandParams:
    """A whole band table; ``name`` is the built-in name or the source it was read from."""

    name: str
    sr: int
    bins: int
    pre_filter_start: int
    pre_filter_stop: int
    bands: tuple[Band, ...]
    mid_side: bool = False
    mid_side_b: bool = False
    mid_side_b2: bool = False
    stereo_w: bool = False
    stereo_n: bool = False
    reverse: bool = False

    @property
    def top(self) -> Band:
        return self.bands[-1]

    @property
    def n_fft(self) -> int:
        """The model's ``n_fft``: ``2 · bins`` (the combined spectrogram has ``bins + 1`` rows)."""
        return 2 * self.bins


def list_band_params() -> list[str]:
    """Names of the built-in band tables, sorted."""
    return sorted(p.name[:-5] for p in _tables().iterdir() if p.name.endswith(".json"))


def _tables() -> Any:
    """The folder of built-in tables (package data of ``transforms``)."""
    return resources.files(__package__).joinpath("bandparams")


def load_band_params(source: str | os.PathLike[str] | BandParams,
                     storage_options: Mapping[str, Any] | None = None) -> BandParams:
    """A built-in table by name (``"4band_v2"``), or a UVR modelparams JSON at a path or fsspec URL.

    Raises :class:`BandParamsError` (one line naming the source) for a missing or invalid table.
    A :class:`BandParams` is returned unchanged.
    """
    if isinstance(source, BandParams):
        return source
    text = os.fspath(source)
    if text in list_band_params():
        raw = _tables().joinpath(f"{text}.json").read_text()
        return parse_band_params(_json(raw, text), text)
    shown = scrub(text, storage_options)
    if "/" not in text and os.sep not in text and not os.path.exists(text):
        raise BandParamsError(f"band table {shown!r}: no such built-in table or file "
                              f"(built-in: {', '.join(list_band_params())})")
    try:
        with fsspec.open(text, "r", **dict(storage_options or {})) as f:
            raw = f.read()
    except Exception as exc:  # noqa: BLE001 - any storage failure becomes one error naming the source
        detail = scrub(" ".join(str(exc).split()), storage_options, uris=(text,))[:200]
        raise BandParamsError(f"band table {shown!r}: cannot read ({type(exc).__name__}: {detail})") from None
    return parse_band_params(_json(raw, shown), shown)


def _json(raw: str, shown: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BandParamsError(f"band table {shown!r}: not JSON ({exc})") from None


def parse_band_params(data: Any, name: str) -> BandParams:
    """A :class:`BandParams` from a decoded modelparams JSON object; ``name`` is used in errors."""
    def fail(what: str) -> BandParamsError:
        return BandParamsError(f"band table {name!r}: {what}")

    if not isinstance(data, Mapping) or not isinstance(data.get("band"), Mapping) or not data["band"]:
        raise fail("expected a JSON object with a non-empty 'band' object")
    numbers = sorted(data["band"], key=lambda k: int(k) if str(k).isdigit() else -1)
    if [str(k) for k in numbers] != [str(i) for i in range(1, len(numbers) + 1)]:
        raise fail(f"band keys must be 1..N, got {list(data['band'])}")
    try:
        bands = tuple(_band(data["band"][k]) for k in numbers)
        bins = int(data["n_bins"] if "n_bins" in data else data["bins"])
        params = BandParams(
            name=name, sr=int(data.get("sr", 44100)), bins=bins,
            pre_filter_start=int(data.get("pre_filter_start", -1)),
            pre_filter_stop=int(data.get("pre_filter_stop", -1)),
            bands=bands, **{flag: bool(data.get(flag, False)) for flag in _FLAGS})
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"missing or invalid entry ({type(exc).__name__}: {exc})") from None
    problem = _problem(params)
    if problem:
        raise fail(problem)
    return params


def _band(raw: Mapping[str, Any]) -> Band:
    def opt(key: str) -> int | None:
        return None if raw.get(key) is None else int(raw[key])

    conversion = raw.get("convert_channels")
    return Band(sr=int(raw["sr"]), hl=int(raw["hl"]), n_fft=int(raw["n_fft"]),
                crop_start=int(raw["crop_start"]), crop_stop=int(raw["crop_stop"]),
                res_type=str(raw["res_type"]), lpf_start=opt("lpf_start"), lpf_stop=opt("lpf_stop"),
                hpf_start=opt("hpf_start"), hpf_stop=opt("hpf_stop"),
                convert_channels=None if conversion is None else str(conversion))


def _problem(p: BandParams) -> str | None:
    """What makes a parsed table unusable by UVR's procedure, or None."""
    if p.bins <= 0 or p.sr <= 0:
        return f"bins and sr must be positive, got bins={p.bins}, sr={p.sr}"
    if p.top.sr != p.sr:
        return f"top band rate {p.top.sr} differs from the table's sr {p.sr}"
    for i, b in enumerate(p.bands, start=1):
        last = i == len(p.bands)
        if b.sr <= 0 or b.hl <= 0 or b.n_fft <= 0 or b.n_fft % 2 or b.hl > b.n_fft:
            return f"band {i}: need sr, hl > 0 and an even n_fft >= hl"
        if not 0 <= b.crop_start < b.crop_stop <= b.n_fft // 2 + 1:
            return f"band {i}: crop [{b.crop_start}, {b.crop_stop}) outside the {b.n_fft // 2 + 1} rows"
        if b.convert_channels is not None and b.convert_channels not in CONVERSIONS:
            return f"band {i}: convert_channels {b.convert_channels!r} not one of {sorted(CONVERSIONS)}"
        if not last and (b.lpf_start is None or b.lpf_stop is None):
            return f"band {i}: a band below the top needs lpf_start and lpf_stop"
        if i > 1 and not last and (b.hpf_start is None or b.hpf_stop is None):
            return f"band {i}: a middle band needs hpf_start and hpf_stop"
        if b.has_highpass and b.hpf_stop is None:
            return f"band {i}: hpf_start without hpf_stop"
        if b.hl * p.top.sr != p.top.hl * b.sr:
            return f"band {i}: hop {b.hl} at {b.sr} Hz lasts differently from the top band's (waves cannot be summed)"
    if sum(b.rows for b in p.bands) > p.bins:
        return f"band crops hold {sum(b.rows for b in p.bands)} rows, more than bins={p.bins}"
    return None
