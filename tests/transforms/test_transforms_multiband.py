"""Multi-band analysis and synthesis against UVR's procedure (audio-separator 0.47.1's spec_utils as a black box).

The reference analysis is UVR's ``loading_mix`` cascade spelled out with librosa.resample (the band's
res_type, top band first) and spec_utils.wave_to_spectrogram / combine_spectrograms; synthesis is
spec_utils.cmb_spectrogram_to_wave. Signals: a few seconds of 44.1 kHz stereo partials plus noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt
from uvr_reference import uvr_or_skip

from stemforge.transforms import multiband as mb
from stemforge.transforms import multiband_filters as mf
from stemforge.transforms.bands import load_band_params
from stemforge.transforms.resample import resampled_length
from stemforge.transforms.stft import istft, stft

librosa = pytest.importorskip("librosa")

# (table, is_v51) as real models use them: ASPP models and VR 5.1 models.
CASES = [("4band_v2", False), ("4band_44100", False), ("3band_44100_msb2", False), ("2band_32000", False),
         ("1band_sr44100_hl1024", False), ("4band_v3", True), ("4band_v4_ms_fullband", True),
         ("1band_sr44100_hl1024", True)]
N = 2 * 44100 + 321


@pytest.fixture(scope="module")
def uvr() -> dict[str, Any]:
    return uvr_or_skip()


@pytest.fixture(scope="module")
def su(uvr):
    return uvr["spec_utils"]


def model_params(uvr, name: str) -> Any:
    return uvr["ModelParameters"](str(uvr["modelparams"] / f"{name}.json"))


def make_signal(n: int = N, band_limit: float | None = None, seed: int = 0) -> np.ndarray:
    """Stereo partials (different per channel) plus white noise, optionally low-passed."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 44100
    freqs = [55, 220, 440, 1000, 3000, 7000, 12000] + ([] if band_limit else [17000, 20500])
    x = np.zeros((2, n))
    for f in freqs:
        x[0] += 0.05 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
        x[1] += 0.04 * np.sin(2 * np.pi * 1.01 * f * t + rng.uniform(0, 6))
    noise = 0.02 * rng.standard_normal((2, n))
    if band_limit:
        noise = sosfiltfilt(butter(8, band_limit, fs=44100, output="sos"), noise)
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return make_signal()


def reference_analysis(uvr, x: np.ndarray, name: str, is_v51: bool) -> tuple[np.ndarray, np.ndarray]:
    """UVR's loading_mix on an in-memory 44.1 kHz wave: (combined spectrogram, input high end)."""
    su, mp = uvr["spec_utils"], model_params(uvr, name)
    bands = mp.param["band"]
    top = len(bands)
    waves, specs = {}, {}
    for d in range(top, 0, -1):
        bp = bands[d]
        source, rate = (x, 44100) if d == top else (waves[d + 1], bands[d + 1]["sr"])
        waves[d] = source if rate == bp["sr"] else librosa.resample(
            source, orig_sr=rate, target_sr=bp["sr"], res_type=bp["res_type"])
        specs[d] = su.wave_to_spectrogram(waves[d], bp["hl"], bp["n_fft"], mp, d, is_v51)
    h = (bands[top]["n_fft"] // 2 - bands[top]["crop_stop"]) + (mp.param["pre_filter_stop"] - mp.param["pre_filter_start"])
    half = bands[top]["n_fft"] // 2
    return su.combine_spectrograms(specs, mp, is_v51), specs[top][:, half - h:half, :]


def stem_like(spec: np.ndarray, seed: int = 1) -> np.ndarray:
    """The spectrogram times a mask spread over (0, 1), smooth in time: what a model's stem looks like."""
    rng = np.random.default_rng(seed)
    mask = 1 / (1 + np.exp(-3 * rng.standard_normal(spec.shape[:2] + (1,))))
    mask = mask * (0.6 + 0.4 * np.cos(np.linspace(0, 7, spec.shape[-1])))
    return (spec * mask).astype(np.complex64)


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def max_relative(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(np.max(np.abs(estimate - reference)) / np.max(np.abs(reference)))


# ---- each step alone, tiny inputs -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["4band_44100_mid", "4band_44100_reverse", "3band_44100_msb2", "4band_44100_msb",
                                  "4band_v2_sn"])
def test_global_channel_flags(uvr, su, name: str) -> None:
    """ASPP models: reverse / mid_side / mid_side_b2 on the wave (mid_side_b, stereo_n ignored) and the inverses."""
    x = make_signal(1000, seed=3)
    mp, table = model_params(uvr, name), load_band_params(name)
    for index, band in enumerate(table.bands):
        ours = mb.band_spectrum(x, table, index, is_v51=False)
        assert max_relative(su.wave_to_spectrogram(x, band.hl, band.n_fft, mp, index + 1, False), ours) < 1e-6
        spec = (ours * np.exp(0.3j)).astype(np.complex64)
        theirs = su.spectrogram_to_wave(spec, band.hl, mp, index + 1, False)
        assert max_relative(theirs, mf.invert_global_channels(istft(spec, band.hl), table)) < 1e-5
    assert np.allclose(mf.invert_global_channels(mf.apply_global_channels(x, table), table), x, atol=1e-6)


def _table_with_conversion(tmp_path: Path, uvr, conversion: str) -> tuple[Any, Any]:
    data = json.loads((uvr["modelparams"] / "4band_v3.json").read_text())
    for band in data["band"].values():
        band["convert_channels"] = conversion
    path = tmp_path / f"v3_{conversion}.json"
    path.write_text(json.dumps(data))
    return uvr["ModelParameters"](str(path)), load_band_params(path)


@pytest.mark.parametrize("conversion", ["mid_side", "stereo_n", "mid_side_c"])
def test_band_conversions(tmp_path: Path, uvr, su, conversion: str) -> None:
    """VR 5.1: per-band convert_channels on the spectrum, its inverse on the band's wave."""
    mp, table = _table_with_conversion(tmp_path, uvr, conversion)
    x = make_signal(1000, seed=4)
    band = table.bands[2]
    spec = stft(x, band.n_fft, band.hl)
    ours = mf.apply_band_conversion(spec, conversion)
    assert ours.dtype == np.complex64
    assert max_relative(su.convert_channels(spec.copy(), mp, 3), ours) < 1e-6
    assert max_relative(su.wave_to_spectrogram(x, band.hl, band.n_fft, mp, 3, True),
                        mb.band_spectrum(x, table, 2, is_v51=True)) < 1e-6
    theirs = su.spectrogram_to_wave(ours, band.hl, mp, 3, True)
    back = mf.invert_band_conversion(istft(ours, band.hl), conversion)
    assert max_relative(theirs, back) < 1e-5
    assert max_relative(istft(spec, band.hl), back) < 1e-5
    assert mf.apply_band_conversion(spec, None) is spec
    with pytest.raises(ValueError, match="spin"):
        mf.apply_band_conversion(spec, "spin")


@pytest.mark.parametrize(("start", "stop"), [(37, 73), (93, 185), (668, 672), (1023, 1024), (5, 6)])
def test_lowpass_ramps(su, start: int, stop: int) -> None:
    """Both forms equal UVR's to 1e-12 (its fft_* form accumulates the ramp step, leaving ~1e-16 residues)."""
    rows = max(stop + 3, 200)
    ones = np.ones((2, rows, 3), dtype=np.complex128)
    fft_form = su.fft_lp_filter(ones.copy(), start, stop)[0, :, 0].real
    assert np.allclose(mf.fft_lowpass_gains(rows, start, stop), fft_form, rtol=0, atol=1e-12)
    mask = su.get_lp_filter_mask(rows, start, stop)[:, 0]
    assert np.array_equal(mf.lowpass_mask(rows, start, stop), mask)
    assert np.allclose(mask, fft_form, atol=1e-12)


@pytest.mark.parametrize(("start", "stop"), [(36, 18), (130, 86), (44, 23), (157, 110), (2, 1)])
def test_highpass_ramps(su, start: int, stop: int) -> None:
    """UVR calls the high-pass with ``hpf_stop - 1``; the tests pass that value."""
    rows = 400
    ones = np.ones((2, rows, 3), dtype=np.complex128)
    fft_form = su.fft_hp_filter(ones.copy(), start, stop - 1)[0, :, 0].real
    assert np.allclose(mf.fft_highpass_gains(rows, start, stop - 1), fft_form, rtol=0, atol=1e-12)
    mask = su.get_hp_filter_mask(rows, start, stop - 1)[:, 0]
    assert np.array_equal(mf.highpass_mask(rows, start, stop - 1), mask)
    assert np.allclose(mask, fft_form, atol=1e-12)


def _band_specs(table, frames: int, seed: int) -> list[np.ndarray]:
    """Random complex band spectra of each band's shape, lengths differing as real bands' can."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((2, b.n_fft // 2 + 1, frames + i)) + 1j * rng.standard_normal(
        (2, b.n_fft // 2 + 1, frames + i))).astype(np.complex64) for i, b in enumerate(table.bands)]


@pytest.mark.parametrize(("name", "is_v51"), CASES + [("1band_sr44100_hl512_cut", False), ("4band_v3_sn", True)])
def test_crop_combine_and_pre_filter(uvr, su, name: str, is_v51: bool) -> None:
    """dB decay (ASPP multi-band), linear mask (VR 5.1), fft_lp_filter (ASPP one band), none when start <= 0."""
    table, mp = load_band_params(name), model_params(uvr, name)
    specs = _band_specs(table, 7, seed=5)
    theirs = su.combine_spectrograms({i + 1: s for i, s in enumerate(specs)}, mp, is_v51)
    ours = mf.pre_filter(mf.crop_combine(specs, table), table, is_v51)
    assert ours.dtype == np.complex64 and ours.shape == theirs.shape == (2, table.bins + 1, 7)
    assert max_relative(theirs, ours) < 1e-6
    assert not ours[:, table.bins].any()


def test_db_decay_values() -> None:
    """README's worked example for 4band_44100 (rows 741…) and 4band_v2 (rows 669–671)."""
    assert np.allclose(mf.db_decay_gains(740, 768)[:4], [0.7499, 0.5309, 0.3586, 0.2354], atol=1e-4)
    assert np.allclose(mf.db_decay_gains(668, 672), [0.7499, 0.5309, 0.3586], atol=1e-4)


@pytest.mark.parametrize("name", ["4band_44100", "4band_v2", "2band_32000"])
def test_place_rows_inverts_crop_combine(name: str) -> None:
    table = load_band_params(name)
    specs = _band_specs(table, 5, seed=6)
    combined = mf.crop_combine(specs, table)
    for index, band in enumerate(table.bands):
        placed = mf.place_rows(combined, table, index)
        assert placed.dtype == np.complex128 and placed.shape == (2, band.n_fft // 2 + 1, 5)
        assert np.array_equal(placed[:, band.crop_start:band.crop_stop], specs[index][:, band.crop_start:band.crop_stop, :5])
        assert not placed[:, :band.crop_start].any() and not placed[:, band.crop_stop:].any()


@pytest.mark.parametrize("name", ["4band_44100", "4band_v2", "3band_44100_msb2", "2band_32000",
                                  "1band_sr44100_hl1024", "4band_v4_ms_fullband"])
def test_mirroring_step(uvr, su, name: str) -> None:
    """Including 4band_v4_ms_fullband's negative slice (pre_filter_start = -1)."""
    table, mp = load_band_params(name), model_params(uvr, name)
    rng = np.random.default_rng(7)
    h = mf.high_end_rows(table)
    spec = (rng.standard_normal((2, table.bins + 1, 9)) + 1j * rng.standard_normal((2, table.bins + 1, 9)))
    top = (rng.standard_normal((2, table.top.n_fft // 2 + 1, 9)) * 0.7 + 1j).astype(np.complex64)
    high_end = mf.input_high_end(top, table)
    assert high_end.shape == (2, h, 9)
    ours = mf.mirroring(spec.astype(np.complex64), high_end, table)
    theirs = su.mirroring("mirroring", spec.astype(np.complex64), high_end, mp)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_mirroring_rejects_a_short_source() -> None:
    table = load_band_params("4band_44100")
    with pytest.raises(ValueError, match="mirroring"):
        mf.mirroring(np.zeros((2, 20, 3), np.complex64), np.zeros((2, 30, 3), np.complex64), table)


def test_analyse_wants_stereo() -> None:
    with pytest.raises(ValueError, match=r"\[2, n\]"):
        mb.analyse(np.zeros((1, 1000), np.float32), load_band_params("4band_v2"), False)


# ---- whole analysis and synthesis ------------------------------------------------------------------


def _ids(case: tuple[str, bool]) -> str:
    return f"{case[0]}-{'v51' if case[1] else 'aspp'}"


@pytest.fixture(scope="module", params=CASES, ids=_ids)
def analysed(request, uvr, signal) -> dict[str, Any]:
    """Ours and the reference's analysis of the same signal for one (table, is_v51)."""
    name, is_v51 = request.param
    table = load_band_params(name)
    reference, reference_high_end = reference_analysis(uvr, signal, name, is_v51)
    return {"name": name, "is_v51": is_v51, "table": table, "mp": model_params(uvr, name),
            "ours": mb.analyse(signal, table, is_v51), "reference": reference, "reference_high_end": reference_high_end}


def test_analysis_equals_uvr(analysed) -> None:
    ours, reference, table = analysed["ours"], analysed["reference"], analysed["table"]
    assert ours.spec.dtype == np.complex64 and ours.spec.shape == reference.shape
    assert ours.spec.shape[-1] == mb.analysis_frames(N, table)
    assert max_relative(np.abs(reference), np.abs(ours.spec)) <= 1e-5
    assert max_relative(reference, ours.spec) <= 1e-5
    assert ours.high_end.shape == analysed["reference_high_end"].shape
    assert max_relative(analysed["reference_high_end"], ours.high_end) <= 1e-5
    assert (ours.n_samples, ours.pad_tail) == (N, False)


def test_synthesis_equals_uvr(analysed, su) -> None:
    """A stem-like (masked) spectrogram through both syntheses, with and without mirroring: >= 60 dB."""
    stem, table, is_v51 = stem_like(analysed["reference"]), analysed["table"], analysed["is_v51"]
    theirs = su.cmb_spectrogram_to_wave(stem, analysed["mp"], is_v51_model=is_v51)
    ours = mb.synthesise(stem, table, is_v51)
    assert ours.dtype == np.float32
    assert ours.shape == theirs.shape == (2, table.top.hl * (stem.shape[-1] - 1))
    assert snr_db(theirs, ours) >= 60
    high_end = mf.mirroring(stem, analysed["ours"].high_end, table)
    their_high_end = su.mirroring("mirroring", stem, analysed["reference_high_end"], analysed["mp"])
    theirs = su.cmb_spectrogram_to_wave(stem, analysed["mp"], their_high_end.shape[1], their_high_end, is_v51_model=is_v51)
    mirrored = mb.synthesise(stem, table, is_v51, high_end)
    assert snr_db(theirs, mirrored) >= 60
    assert snr_db(ours, mirrored) < 90  # mirroring changed the stem: the agreement above is not vacuous


def test_round_trip_matches_uvrs_round_trip(analysed, uvr, su) -> None:
    """analyse → synthesise of the unmodified spectrogram against the input, where UVR's procedure is meant to be
    near-transparent (a 12 kHz band-limited signal, below every table's cut-off): ours and UVR's agree."""
    name, table, is_v51 = analysed["name"], analysed["table"], analysed["is_v51"]
    x = make_signal(band_limit=12000, seed=2)
    ours = mb.synthesise(mb.analyse(x, table, is_v51).spec, table, is_v51)
    reference, _ = reference_analysis(uvr, x, name, is_v51)
    theirs = su.cmb_spectrogram_to_wave(reference, analysed["mp"], is_v51_model=is_v51)
    if table.sr != 44100:
        ours = mb.to_input_rate(ours, table, ours.shape[-1] * 44100 // table.sr)
        theirs = librosa.resample(theirs, orig_sr=table.sr, target_sr=44100)
    m = min(ours.shape[-1], theirs.shape[-1])
    measured, uvr_measured = snr_db(x[:, :m], ours[:, :m]), snr_db(x[:, :m], theirs[:, :m])
    print(f"round trip {name} v51={is_v51}: {measured:.1f} dB (UVR {uvr_measured:.1f} dB) over {m} samples")
    assert abs(measured - uvr_measured) < 0.1


def test_exact_length_output(analysed) -> None:
    """pad_tail: frames past the end, so the stem has exactly the input's length at 44.1 kHz. The frames UVR
    computes are unchanged except its last few, where UVR's lower bands see their resampler's end cut. The last
    hop (which UVR drops) is synthesised from real frames: the floor of 30 dB is far above what zero-filling it
    would give (0 dB); it is below the body's figure only through the track's cut-off edge, whose broadband
    transient the tables' band limits remove."""
    name, table, is_v51 = analysed["name"], analysed["table"], analysed["is_v51"]
    x = make_signal(band_limit=12000, seed=2)
    plain, padded = mb.analyse(x, table, is_v51), mb.analyse(x, table, is_v51, pad_tail=True)
    frames = plain.spec.shape[-1]
    assert padded.spec.shape[-1] == mb.analysis_frames(N, table, pad_tail=True) > frames
    assert padded.pad_tail and padded.high_end.shape[-1] == padded.spec.shape[-1]
    assert max_relative(plain.spec[..., :frames - 4], padded.spec[..., :frames - 4]) <= 1e-5
    out = mb.to_input_rate(mb.synthesise(padded.spec, table, is_v51), table, N)
    assert out.shape == (2, N) and out.dtype == np.float32
    hop = round(table.top.hl * 44100 / table.sr)
    body, tail = snr_db(x[:, :N - hop], out[:, :N - hop]), snr_db(x[:, N - hop:], out[:, N - hop:])
    print(f"exact length {name} v51={is_v51}: body {body:.1f} dB, last hop {tail:.1f} dB")
    assert tail >= 30
    if N % table.top.hl and table.sr == 44100:
        with pytest.raises(ValueError, match="pad_tail=True"):
            mb.to_input_rate(mb.synthesise(plain.spec, table, is_v51), table, N)


def test_32k_table_brought_to_44k_as_uvr(uvr, su, signal) -> None:
    """2band_32000: the stem at 32 kHz resampled to 44.1 kHz (soxr HQ; UVR: librosa's default soxr_hq)."""
    table, mp = load_band_params("2band_32000"), model_params(uvr, "2band_32000")
    stem = stem_like(reference_analysis(uvr, signal, "2band_32000", False)[0])
    theirs = librosa.resample(su.cmb_spectrogram_to_wave(stem, mp, is_v51_model=False), orig_sr=32000, target_sr=44100)
    wave = mb.synthesise(stem, table, False)
    ours = mb.to_input_rate(wave, table, resampled_length(wave.shape[-1], 32000, 44100))
    assert abs(ours.shape[-1] - theirs.shape[-1]) <= 1
    m = min(ours.shape[-1], theirs.shape[-1])
    assert snr_db(theirs[:, :m], ours[:, :m]) >= 60


@pytest.mark.parametrize(("name", "is_v51"), [("4band_v2", False), ("2band_32000", False), ("4band_v4_ms_fullband", True)])
def test_analysis_equals_vr_separator_loading_mix(tmp_path: Path, uvr, signal, name: str, is_v51: bool) -> None:
    """UVR's own loading_mix (reading a float WAV, as it reads files) agrees with analyse, high end included;
    this also checks the test's spelled-out reference cascade."""
    import logging

    import soundfile

    path = tmp_path / "mix.wav"
    soundfile.write(path, signal.T, 44100, subtype="FLOAT")
    separator = uvr["VRSeparator"].__new__(uvr["VRSeparator"])
    separator.__dict__.update(model_params=model_params(uvr, name), audio_file_path=str(path), wav_subtype="FLOAT",
                              torch_device_mps=None, logger=logging.getLogger("uvr"), is_vr_51_model=is_v51,
                              high_end_process=True)
    theirs = separator.loading_mix()
    ours = mb.analyse(signal, load_band_params(name), is_v51)
    assert ours.spec.shape == theirs.shape
    assert max_relative(theirs, ours.spec) <= 1e-5
    assert max_relative(separator.input_high_end, ours.high_end) <= 1e-5
