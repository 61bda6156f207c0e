"""The pure steps of UVR's multi-band procedure, each on its own: channel conversions and their
inverses, frequency ramps, the pre-filter, crop-and-combine, row placement and high-end mirroring.

Row conventions follow UVR's procedure (see ``transforms/multiband.py`` for how they chain):

* low-pass ``(a, b)``: rows ``a … b-1`` scaled by ``1 - k/(b-a)`` for ``k = 1 … b-a`` (so row
  ``b-1`` is 0), rows ``>= b`` zeroed;
* high-pass ``(a, c)`` (UVR passes ``c = hpf_stop - 1``): rows ``a, a-1, …, c+1`` scaled by
  ``1 - k/(a-c)`` for ``k = 1 …`` (so row ``c+1`` is 0), rows ``0 … c`` zeroed.

Each ramp comes in UVR's two forms: ``fft_*`` (row by row, as ASPP models use) and ``*_mask``
(a ``linspace`` mask, as VR 5.1 models use); they agree to floating-point rounding.
"""

from __future__ import annotations

import numpy as np

from stemforge.transforms.bands import BandParams


def apply_global_channels(wave: np.ndarray, params: BandParams) -> np.ndarray:
    """ASPP models' global flags on a band's stereo wave ``[2, n]``, in UVR's order: ``reverse``
    (time-reverse), ``mid_side`` ((L+R)/2, L-R), ``mid_side_b2`` (R + L/2, L - R/2)."""
    out = wave
    if params.reverse:
        out = out[:, ::-1]
    if params.mid_side:
        out = np.stack([(out[0] + out[1]) / 2, out[0] - out[1]])
    if params.mid_side_b2:
        out = np.stack([out[1] + out[0] * 0.5, out[0] - out[1] * 0.5])
    return np.ascontiguousarray(out)


def invert_global_channels(wave: np.ndarray, params: BandParams) -> np.ndarray:
    """Inverse of :func:`apply_global_channels` on a synthesised band wave, flags in reverse order."""
    out = wave
    if params.mid_side_b2:
        out = np.stack([out[1] / 1.25 + 0.4 * out[0], out[0] / 1.25 - 0.4 * out[1]])
    if params.mid_side:
        out = np.stack([out[0] + out[1] / 2, out[0] - out[1] / 2])
    if params.reverse:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def apply_band_conversion(spec: np.ndarray, conversion: str | None) -> np.ndarray:
    """VR 5.1's per-band ``convert_channels`` on a stereo band spectrogram ``[2, rows, frames]``."""
    left, right = spec[0], spec[1]
    if conversion is None:
        return spec
    if conversion == "mid_side":
        return np.stack([(left + right) / 2, left - right])
    if conversion == "stereo_n":
        return np.stack([(left + right * 0.25) / 0.9375, (right + left * 0.25) / 0.9375])
    if conversion == "mid_side_c":
        return np.stack([left + right * 0.25, right - left * 0.25])
    raise ValueError(f"unknown convert_channels {conversion!r}")


def invert_band_conversion(wave: np.ndarray, conversion: str | None) -> np.ndarray:
    """Inverse of :func:`apply_band_conversion`, applied (it is linear) to the band's synthesised wave."""
    left, right = wave[0], wave[1]
    if conversion is None:
        return wave
    if conversion == "mid_side":
        return np.stack([left + right / 2, left - right / 2])
    if conversion == "stereo_n":
        return np.stack([left - right * 0.25, right - left * 0.25])
    if conversion == "mid_side_c":
        return np.stack([left / 1.0625 - right / 4.25, right / 1.0625 + left / 4.25])
    raise ValueError(f"unknown convert_channels {conversion!r}")


def fft_lowpass_gains(n_rows: int, start: int, stop: int) -> np.ndarray:
    """Row gains (float64 ``[n_rows]``) of UVR's ``fft_lp_filter(start, stop)``."""
    gains = np.ones(n_rows)
    width = stop - start
    for k, row in enumerate(range(start, min(stop, n_rows)), start=1):
        gains[row] = 1 - k / width
    gains[max(stop, 0):] = 0
    return gains


def fft_highpass_gains(n_rows: int, start: int, stop: int) -> np.ndarray:
    """Row gains (float64 ``[n_rows]``) of UVR's ``fft_hp_filter(start, stop)``; ``stop = hpf_stop - 1``."""
    gains = np.ones(n_rows)
    width = start - stop
    for k, row in enumerate(range(start, stop, -1), start=1):
        gains[row] = 1 - k / width
    gains[:stop + 1] = 0
    return gains


def lowpass_mask(n_rows: int, start: int, stop: int) -> np.ndarray:
    """UVR's ``get_lp_filter_mask``: ``[ones(start-1), linspace(1, 0, stop-start+1), zeros(n_rows-stop)]``."""
    return np.concatenate([np.ones(start - 1), np.linspace(1, 0, stop - start + 1), np.zeros(n_rows - stop)])


def highpass_mask(n_rows: int, start: int, stop: int) -> np.ndarray:
    """UVR's ``get_hp_filter_mask``: ``[zeros(stop+1), linspace(0, 1, 1+start-stop), ones(n_rows-start-2)]``."""
    return np.concatenate([np.zeros(stop + 1), np.linspace(0, 1, 1 + start - stop), np.ones(n_rows - start - 2)])


def db_decay_gains(start: int, stop: int) -> np.ndarray:
    """Gains of the ASPP multi-band pre-filter for rows ``start+1 … stop-1``: each row's
    ``g = 10^(-(row-start)·(3.5-g_prev)/20)``, ``g_prev`` starting at 1."""
    gains, previous = [], 1.0
    for row in range(start + 1, stop):
        previous = 10 ** (-(row - start) * (3.5 - previous) / 20)
        gains.append(previous)
    return np.asarray(gains, dtype=np.float64)


def scale_rows(spec: np.ndarray, gains: np.ndarray, first_row: int = 0) -> np.ndarray:
    """``spec`` ``[2, rows, frames]`` with rows ``first_row …`` multiplied by ``gains`` (same dtype)."""
    out = spec.copy()
    rows = slice(first_row, first_row + len(gains))
    out[:, rows] = (spec[:, rows] * gains[:, None]).astype(spec.dtype)
    return out


def pre_filter(spec: np.ndarray, params: BandParams, is_v51: bool) -> np.ndarray:
    """UVR's pre-filter of a combined spectrogram (only when ``pre_filter_start > 0``): a linear
    mask for VR 5.1, ``fft_lp_filter`` for a one-band ASPP table, the dB decay otherwise."""
    start, stop = params.pre_filter_start, params.pre_filter_stop
    if start <= 0:
        return spec
    if is_v51:
        return scale_rows(spec, lowpass_mask(spec.shape[1], start, stop))
    if len(params.bands) == 1:
        return scale_rows(spec, fft_lowpass_gains(spec.shape[1], start, stop))
    return scale_rows(spec, db_decay_gains(start, stop), start + 1)


def crop_combine(specs: list[np.ndarray], params: BandParams) -> np.ndarray:
    """Band spectrograms (band 1 first) cropped to their rows and stacked into complex64
    ``[2, bins + 1, frames]``, ``frames`` being the shortest band's; rows past the crops stay 0."""
    frames = min(s.shape[-1] for s in specs)
    out = np.zeros((2, params.bins + 1, frames), dtype=np.complex64)
    row = 0
    for band, spec in zip(params.bands, specs, strict=True):
        out[:, row:row + band.rows] = spec[:, band.crop_start:band.crop_stop, :frames]
        row += band.rows
    return out


def place_rows(spec: np.ndarray, params: BandParams, index: int) -> np.ndarray:
    """Band ``index``'s (0 = band 1) full complex128 spectrogram ``[2, n_fft/2 + 1, frames]`` with its
    crop rows taken back from the combined ``spec`` and every other row 0."""
    band = params.bands[index]
    row = sum(b.rows for b in params.bands[:index])
    out = np.zeros((spec.shape[0], band.n_fft // 2 + 1, spec.shape[-1]), dtype=np.complex128)
    out[:, band.crop_start:band.crop_stop] = spec[:, row:row + band.rows]
    return out


def band_ramps(spec: np.ndarray, params: BandParams, index: int, is_v51: bool) -> np.ndarray:
    """Synthesis ramps of band ``index``: band 1 low-pass only; middle bands high- then low-pass;
    the top band high-pass only (when ``hpf_start > 0``). Mask forms for VR 5.1, fft forms otherwise."""
    band, rows = params.bands[index], spec.shape[1]
    top = index == len(params.bands) - 1
    high, low = (highpass_mask, lowpass_mask) if is_v51 else (fft_highpass_gains, fft_lowpass_gains)
    out = spec
    if (band.has_highpass and top) or 0 < index < len(params.bands) - 1:
        out = scale_rows(out, high(rows, band.hpf_start, band.hpf_stop - 1))
    if not top:
        out = scale_rows(out, low(rows, band.lpf_start, band.lpf_stop))
    return out


def high_end_rows(params: BandParams) -> int:
    """Rows ``H`` of the top band kept for mirroring: ``(n_fft/2 - crop_stop) + (pre_filter_stop -
    pre_filter_start)``."""
    top = params.top
    return (top.n_fft // 2 - top.crop_stop) + (params.pre_filter_stop - params.pre_filter_start)


def input_high_end(top_spec: np.ndarray, params: BandParams) -> np.ndarray:
    """The mixture's top-band rows ``[n_fft/2 - H, n_fft/2)`` that mirroring takes phases from."""
    half, h = params.top.n_fft // 2, high_end_rows(params)
    return top_spec[:, half - h:half].copy()


def mirroring(spec: np.ndarray, high_end: np.ndarray, params: BandParams) -> np.ndarray:
    """UVR's ``mirroring`` high-end process: rows ``[pfs-10-H, pfs-10)`` of the stem's combined
    ``spec``, flipped in frequency, with ``high_end``'s phases; wherever the mixture's own row is
    quieter, it is kept instead. Returns the ``H`` rows to place at the top of the top band.

    The rows are a Python slice, as in UVR: with ``pre_filter_start = -1`` (``4band_v4_ms_fullband``)
    the bounds are negative and count from the top of ``spec``."""
    h, pfs = high_end.shape[1], params.pre_filter_start
    source = spec[:, pfs - 10 - h:pfs - 10]
    if source.shape[1] != h:
        raise ValueError(f"mirroring: rows [{pfs - 10 - h}, {pfs - 10}) of {spec.shape[1]} do not give {h} rows")
    mirror = np.flip(np.abs(source), 1) * np.exp(1j * np.angle(high_end))
    return np.where(np.abs(high_end) <= np.abs(mirror), high_end, mirror)
