"""`stemforge evaluate`: how well a checkpoint separates a stem set, per track and stem.

Each track's mixture (its mixture file, or the sum of its stems) goes through the checkpoint exactly as
`stemforge run` would separate it (``model.resolve_model``: vocal-remover's or UVR's procedure); every stem
the model names and the stem set has is scored over the whole track: challenge SDR, SI-SDR, and the SI-SDR
improvement over the mixture itself (SI-SDR of the estimate minus SI-SDR of the unprocessed mixture).
A stem that is silent, or that is the whole mixture (the track has no other stem, or only silent ones), has
no such score (it would be near ±120 dB and swamp every mean): it becomes an error row saying why, and the
means leave it out.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from stemforge.model import ModelSetup, resolve_model
from stemforge.text import count
from stemforge.training.metrics import sdr, si_sdr
from stemforge.transforms import check_geometry, load_audio, resample, to_model_channels
from stemforge.transforms.stemsets import StemSetTrack, read_stemset

MODEL_RATE = 44100
SILENCE_RMS = 1e-5  # -100 dBFS: below it a signal holds nothing to score against
FIELDS = ("track", "stem", "sdr", "si_sdr", "si_sdr_mixture", "si_sdr_improvement", "seconds", "error")


def _load(uri: str, storage_options: Mapping[str, Any] | None) -> np.ndarray:
    wave, rate = load_audio(uri, storage_options)
    return resample(to_model_channels(wave, uri=uri), rate, MODEL_RATE)


def _track_audio(track: StemSetTrack, storage_options: Mapping[str, Any] | None) -> tuple[dict[str, np.ndarray],
                                                                                            np.ndarray]:
    stems = {name: _load(uri, storage_options) for name, uri in track.stems.items()}
    lengths = {name: wave.shape[1] for name, wave in stems.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"stems differ in length at {MODEL_RATE} Hz: "
                         + ", ".join(f"{n} {k}" for n, k in sorted(lengths.items())))
    mixture = _load(track.mixture, storage_options) if track.mixture else sum(stems.values())
    if mixture.shape[1] != next(iter(lengths.values())):
        raise ValueError(f"the mixture has {mixture.shape[1]} samples, its stems {next(iter(lengths.values()))}")
    return stems, mixture


def _rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0


def unscorable(name: str, reference: np.ndarray, mixture: np.ndarray) -> str | None:
    """Why stem ``name`` of a track cannot be scored against ``mixture``, or None when it can."""
    if _rms(reference) < SILENCE_RMS:
        return f"{name} is silent (RMS below -100 dBFS): there is nothing to measure a separation against"
    if _rms(mixture - reference) < SILENCE_RMS:
        return f"the mixture is {name} alone (no other stem, or only silent ones): there is nothing to separate"
    return None


def evaluate(checkpoint: str, data: str, n_fft: int = 2048, hop_length: int = 1024, band_params: str | None = None,
             device: str = "auto", batch_size: int = 4,
             storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per (track, scored stem); a track that cannot be scored gets one row with its ``error``.
    A single-band geometry that cannot invert is a ValueError before the checkpoint is read."""
    if band_params is None:
        check_geometry(n_fft, hop_length)
    setup = resolve_model(checkpoint, n_fft=n_fft, band_params=band_params, device=device,
                          storage_options=storage_options)
    return score(setup, data, hop_length, batch_size, storage_options)


def score(setup: ModelSetup, data: str, hop_length: int = 1024, batch_size: int = 4,
          storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """:func:`evaluate` for a model already in memory (the trainer scores its network this way)."""
    separator = setup.separator(batch_size=batch_size)
    tracks = read_stemset(data, storage_options=storage_options)
    if not any(set(setup.stems) & set(t.stems) for t in tracks):
        raise ValueError(f"{data}: the model's stems ({', '.join(setup.stems)}) match none of the stem set's "
                         f"({', '.join(sorted({s for t in tracks for s in t.stems}))})")
    rows = []
    for track in tracks:
        try:
            stems, mixture = _track_audio(track, storage_options)
        except Exception as exc:  # noqa: BLE001 - one bad track is reported, the others are still scored
            rows.append({**dict.fromkeys(FIELDS), "track": track.key, "error": f"{type(exc).__name__}: {exc}"})
            continue
        estimates = dict(zip(setup.stems, separator.separate_audio(mixture, hop_length, bands=setup.bands)))
        for name in sorted(set(setup.stems) & set(stems)):
            reference, estimate = stems[name], estimates[name]
            reason = unscorable(name, reference, mixture)
            if reason:
                rows.append({**dict.fromkeys(FIELDS), "track": track.key, "stem": name,
                             "seconds": mixture.shape[1] / MODEL_RATE, "error": reason})
                continue
            baseline = si_sdr(reference, mixture)
            score = si_sdr(reference, estimate)
            rows.append({"track": track.key, "stem": name, "sdr": sdr(reference, estimate), "si_sdr": score,
                         "si_sdr_mixture": baseline, "si_sdr_improvement": score - baseline,
                         "seconds": mixture.shape[1] / MODEL_RATE, "error": None})
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text (metrics in dB to 4 decimals)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def render(rows: list[dict[str, Any]]) -> str:
    """A plain text table of the rows, with the mean of each stem's scores over the tracks that have them (how
    many it says) and which tracks the means leave out (their error rows say why)."""
    lines = [f"{'track':<28} {'stem':<14} {'SDR':>8} {'SI-SDR':>8} {'mix':>8} {'SI-SDRi':>8}"]
    for row in rows:
        if row["error"]:
            lines.append(f"{row['track']:<28} {row['stem'] or '':<14} error: {row['error']}")
            continue
        lines.append(f"{row['track']:<28} {row['stem']:<14} {row['sdr']:8.2f} {row['si_sdr']:8.2f} "
                     f"{row['si_sdr_mixture']:8.2f} {row['si_sdr_improvement']:8.2f}")
    for stem in sorted({r["stem"] for r in rows if not r["error"]}):
        scored = [r for r in rows if r["stem"] == stem and not r["error"]]
        means = [float(np.mean([r[k] for r in scored])) for k in ("sdr", "si_sdr", "si_sdr_mixture",
                                                                    "si_sdr_improvement")]
        if all(math.isfinite(m) for m in means):
            lines.append(f"{'mean of ' + count(len(scored), 'track'):<28} {stem:<14} "
                         + " ".join(f"{m:8.2f}" for m in means))
    left_out: dict[str, list[str]] = {}
    for row in rows:
        if row["error"]:
            left_out.setdefault(row["stem"] or "every stem", []).append(row["track"])
    if left_out:
        lines.append("left out of the means (see their errors): "
                     + "; ".join(f"{stem} of {', '.join(tracks)}" for stem, tracks in sorted(left_out.items())))
    return "\n".join(lines)
