"""UVR's multi-band spectrograms: analysis of a 44.1 kHz stereo track into the combined
``[2, bins + 1, frames]`` spectrogram its VR models read, and synthesis back to a waveform.

Analysis (UVR's ``loading_mix``): the track is resampled to the top band's rate with that band's
``res_type``, then down the bands, each band's wave from the next band up's with its own
``res_type`` (librosa's arithmetic: ``scipy.signal.resample_poly`` for ``polyphase``, libsamplerate
for ``sinc_*``, output trimmed or zero-padded to ``ceil(n · ratio)``). Each band gets the ASPP
models' global channel flags on its wave, a librosa-equal STFT, and VR 5.1's per-band
``convert_channels`` on its spectrum; :func:`~transforms.multiband_filters.crop_combine` and the
pre-filter make the combined spectrogram.

Synthesis (UVR's ``cmb_spectrogram_to_wave``): band by band from the lowest, rows placed back,
ramps, ISTFT without ``length``, inverse channel conversion; the running sum is resampled up to the
next band's rate with libsamplerate's ``sinc_fastest`` (not the band's ``res_type``). The result is
at the table's rate with ``hl_top · (frames - 1)`` samples.

Exact length: UVR's stems lose up to one hop at the end. With ``analyse(..., pad_tail=True)`` the
track is followed by :func:`tail_padding` zeros before analysis, so the spectrogram has frames past
the end (the STFT of the track followed by silence, which is what lies past its end) and every band's
ISTFT and resampler edge falls after the last real sample; :func:`to_input_rate` then resamples to
44.1 kHz where needed and cuts exactly ``n_samples``.

Each band's work is its own function (:func:`band_waves`, :func:`band_spectrum`, :func:`band_wave`)
so that block-wise processing of long tracks can run the same steps; the functions here work on
whole tracks.

Resamplers: ``polyphase`` and ``sinc_fastest/medium/best`` are reproduced exactly. resampy's
``kaiser_fast``/``kaiser_best`` are not available: a table that would need them (only
``1band_sr32000_hl512``'s top band, 44.1 → 32 kHz; every other kaiser band runs at 44.1 kHz and
never resamples) raises :class:`~transforms.bands.BandParamsError` naming the band.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import samplerate
from scipy.signal import resample_poly

from stemforge.transforms.bands import BandParams, BandParamsError
from stemforge.transforms.model_input import MODEL_SAMPLE_RATE
from stemforge.transforms.multiband_filters import (
    apply_band_conversion,
    apply_global_channels,
    band_ramps,
    crop_combine,
    input_high_end,
    invert_band_conversion,
    invert_global_channels,
    place_rows,
    pre_filter,
)
from stemforge.transforms.resample import resample
from stemforge.transforms.stft import istft, stft

INPUT_RATE = MODEL_SAMPLE_RATE
SYNTHESIS_RES_TYPE = "sinc_fastest"
_SINC = frozenset({"sinc_fastest", "sinc_medium", "sinc_best", "linear", "zero_order_hold"})


@dataclass(frozen=True)
class MultibandAnalysis:
    """A track's combined spectrogram and what synthesis needs from the analysis.

    ``spec``: complex64 ``[2, bins + 1, frames]``; ``high_end``: complex64 ``[2, H, frames]``, the
    mixture's top-band rows that :func:`~transforms.multiband_filters.mirroring` reads;
    ``n_samples``: the input's length at 44.1 kHz; ``pad_tail``: whether the frames reach past it."""

    spec: np.ndarray
    high_end: np.ndarray
    n_samples: int
    pad_tail: bool


def librosa_length(n: int, sr_in: int, sr_out: int) -> int:
    """Samples librosa.resample returns: ``ceil(n · sr_out/sr_in)`` in its float arithmetic."""
    return int(np.ceil(n * (float(sr_out) / sr_in)))


def resample_band(wave: np.ndarray, sr_in: int, sr_out: int, res_type: str) -> np.ndarray:
    """``wave`` ``[C, n]`` resampled as librosa.resample(res_type) does, float32 ``[C, ceil(n · ratio)]``;
    unchanged when the rates are equal. ``polyphase`` and libsamplerate's converters only."""
    if sr_in == sr_out:
        return wave
    n_out = librosa_length(wave.shape[-1], sr_in, sr_out)
    if res_type == "polyphase":
        g = math.gcd(sr_in, sr_out)
        out = resample_poly(wave, sr_out // g, sr_in // g, axis=-1)
    elif res_type in _SINC:
        out = np.stack([samplerate.resample(c, sr_out / sr_in, res_type) for c in wave])
    else:
        raise ValueError(f"res_type {res_type!r} is not reproduced (polyphase, {', '.join(sorted(_SINC))} are)")
    fixed = np.zeros((wave.shape[0], n_out), dtype=np.float32)
    fixed[:, :min(n_out, out.shape[-1])] = out[:, :n_out]
    return fixed


def check_resamplers(params: BandParams) -> None:
    """Raise :class:`BandParamsError` naming the first band whose analysis resampling is not reproduced."""
    for index, band in enumerate(params.bands):
        sr_in = params.bands[index + 1].sr if index + 1 < len(params.bands) else INPUT_RATE
        if sr_in != band.sr and band.res_type != "polyphase" and band.res_type not in _SINC:
            raise BandParamsError(
                f"band table {params.name!r}: band {index + 1} resamples {sr_in} -> {band.sr} Hz with res_type "
                f"{band.res_type!r} (resampy), which stemforge does not reproduce")


def tail_padding(params: BandParams) -> int:
    """Zeros (at 44.1 kHz) appended by ``analyse(pad_tail=True)``: the longest band window in input samples."""
    return max(math.ceil(b.n_fft * INPUT_RATE / b.sr) for b in params.bands)


def band_waves(wave: np.ndarray, params: BandParams) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, wave at that band's rate)`` from the top band down (index 0 = band 1): UVR's cascade."""
    current, rate = wave, INPUT_RATE
    for index in range(len(params.bands) - 1, -1, -1):
        band = params.bands[index]
        current, rate = resample_band(current, rate, band.sr, band.res_type), band.sr
        yield index, current


def band_spectrum(wave: np.ndarray, params: BandParams, index: int, is_v51: bool) -> np.ndarray:
    """Band ``index``'s complex64 spectrum ``[2, n_fft/2 + 1, 1 + n // hl]`` of its stereo wave."""
    band = params.bands[index]
    if not is_v51:
        return stft(apply_global_channels(wave, params), band.n_fft, band.hl)
    return apply_band_conversion(stft(wave, band.n_fft, band.hl), band.convert_channels)


def analyse(wave: np.ndarray, params: BandParams, is_v51: bool, pad_tail: bool = False) -> MultibandAnalysis:
    """Combined spectrogram of a float32 stereo ``[2, n]`` track at 44.1 kHz, as UVR's analysis.

    With ``pad_tail`` the track is followed by :func:`tail_padding` zeros first, so that
    :func:`synthesise` + :func:`to_input_rate` can return all ``n`` samples. The frames UVR computes
    are then unchanged except its last few (at most 4 in the shipped tables), whose lower-band windows
    reach past the end of UVR's truncated resampler output.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"expected a stereo wave [2, n], got shape {x.shape}")
    check_resamplers(params)
    n = x.shape[1]
    if pad_tail:
        x = np.pad(x, ((0, 0), (0, tail_padding(params))))
    specs: list[np.ndarray] = [np.empty(0)] * len(params.bands)
    high_end = np.empty(0)
    for index, band_wave in band_waves(x, params):
        spec = band_spectrum(band_wave, params, index, is_v51)
        if index == len(params.bands) - 1:
            high_end = input_high_end(spec, params)
        specs[index] = spec
    combined = pre_filter(crop_combine(specs, params), params, is_v51)
    return MultibandAnalysis(combined, high_end[..., :combined.shape[-1]], n, pad_tail)


def analysis_frames(n_samples: int, params: BandParams, pad_tail: bool = False) -> int:
    """Frames :func:`analyse` gives for ``n_samples`` input samples at 44.1 kHz (the shortest band's)."""
    length, rate, frames = n_samples + (tail_padding(params) if pad_tail else 0), INPUT_RATE, []
    for band in reversed(params.bands):
        length, rate = (length if rate == band.sr else librosa_length(length, rate, band.sr)), band.sr
        frames.append(1 + length // band.hl)
    return min(frames)


def band_rows(spec: np.ndarray, params: BandParams, index: int, is_v51: bool,
              high_end: np.ndarray | None = None) -> np.ndarray:
    """Band ``index``'s full spectrogram ``[2, n_fft/2 + 1, frames]`` ready for its ISTFT, from the
    combined ``spec``: rows placed back, ``high_end`` rows on top (top band only), ramps."""
    band = params.bands[index]
    rows = place_rows(spec, params, index)
    if high_end is not None and index == len(params.bands) - 1 and high_end.shape[1]:
        half = band.n_fft // 2
        rows[:, half - high_end.shape[1]:half] = high_end
    return band_ramps(rows, params, index, is_v51)


def invert_band_channels(wave: np.ndarray, params: BandParams, index: int, is_v51: bool) -> np.ndarray:
    """Band ``index``'s inverse channel conversion on its synthesised wave: the band's own
    ``convert_channels`` for VR 5.1, the table's global flags otherwise."""
    if is_v51:
        return invert_band_conversion(wave, params.bands[index].convert_channels)
    return invert_global_channels(wave, params)


def band_wave(spec: np.ndarray, params: BandParams, index: int, is_v51: bool,
              high_end: np.ndarray | None = None) -> np.ndarray:
    """Band ``index``'s float32 stereo wave ``[2, hl · (frames - 1)]`` at its rate from the combined
    ``spec``: :func:`band_rows`, ISTFT, :func:`invert_band_channels`."""
    wave = istft(band_rows(spec, params, index, is_v51, high_end), params.bands[index].hl)
    return invert_band_channels(wave, params, index, is_v51)


def synthesise(spec: np.ndarray, params: BandParams, is_v51: bool,
               high_end: np.ndarray | None = None) -> np.ndarray:
    """Waveform float32 ``[2, hl_top · (frames - 1)]`` at ``params.sr`` of a combined spectrogram.

    ``high_end``: rows for the top of the top band, e.g. ``mirroring(spec, analysis.high_end, params)``;
    None leaves them 0, as UVR without its high-end process."""
    total = band_wave(spec, params, 0, is_v51, high_end)
    for index in range(1, len(params.bands)):
        total = resample_band(total, params.bands[index - 1].sr, params.bands[index].sr, SYNTHESIS_RES_TYPE)
        total = total + band_wave(spec, params, index, is_v51, high_end)
    return total


def to_input_rate(wave: np.ndarray, params: BandParams, n_samples: int) -> np.ndarray:
    """A synthesised wave at ``params.sr`` → float32 ``[2, n_samples]`` at 44.1 kHz.

    Tables at another rate are resampled with soxr HQ (UVR uses librosa's default, soxr_hq).
    Raises ValueError when the wave is too short: analyse with ``pad_tail=True`` for exact length."""
    out = resample(wave, params.sr, INPUT_RATE) if params.sr != INPUT_RATE else wave
    if out.shape[-1] < n_samples:
        raise ValueError(f"synthesis gives {out.shape[-1]} samples at {INPUT_RATE} Hz, fewer than "
                         f"{n_samples}; analyse with pad_tail=True")
    return np.ascontiguousarray(out[:, :n_samples], dtype=np.float32)
