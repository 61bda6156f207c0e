"""Streaming multi-band analysis and synthesis equal the whole-track functions of transforms.multiband.

Signals: about a second of 44.1 kHz stereo partials plus noise; blocks of 0.3 s force many blocks,
and one block longer than the track covers the single-block path.
"""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from stemforge.transforms import multiband as mb
from stemforge.transforms.bands import BandParams, load_band_params
from stemforge.transforms.multiband_filters import mirroring
from stemforge.transforms.multiband_stream import MultibandStreamAnalysis, synthesise_stream
from stemforge.transforms.multiband_stream_io import ScratchWave, SincStream, polyphase_block, sinc_count

CASES = [("4band_v2", False), ("4band_44100", False), ("3band_44100_msb2", False), ("2band_32000", False),
         ("1band_sr44100_hl1024", False), ("4band_v3", True), ("4band_v4_ms_fullband", True)]
SHORT_BLOCK = 13230  # 0.3 s
LONG_BLOCK = 10**7


def make_signal(n: int, seed: int = 0) -> np.ndarray:
    """Stereo partials (different per channel) across the bands, plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 44100
    x = np.zeros((2, n))
    for f in (55, 440, 3000, 12000, 19000):
        x[0] += 0.05 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
        x[1] += 0.04 * np.sin(2 * np.pi * 1.01 * f * t + rng.uniform(0, 6))
    return (x + 0.02 * rng.standard_normal((2, n))).astype(np.float32)


def exact_ends(n: int, params: BandParams) -> bool:
    """Whether libsamplerate's one-shot sample count is unambiguous for the table's 44.1 kHz input
    (see transforms/multiband_stream_io.py): n · sr / 44100 not an integer, or no resampling."""
    return params.top.sr == mb.INPUT_RATE or (n * params.top.sr) % mb.INPUT_RATE != 0


def lengths(params: BandParams) -> list[int]:
    """A track length whose top-band wave is a multiple of the top hop, and one that is not."""
    n = 44100
    while mb.librosa_length(n, mb.INPUT_RATE, params.top.sr) % params.top.hl or not exact_ends(n, params):
        n += 1
    return [n, 44100 + 123]


def stream(x: np.ndarray, params: BandParams, is_v51: bool, pad_tail: bool, block: int,
           directory: Path) -> MultibandStreamAnalysis:
    return MultibandStreamAnalysis(lambda a, b: x[:, a:b], x.shape[1], params, is_v51, pad_tail, str(directory), block)


def gather(fn, total: int, step: int = 37) -> np.ndarray:
    """``fn`` over the whole frame range, asked in runs of ``step`` frames."""
    return np.concatenate([fn(f, min(f + step, total)) for f in range(0, total, step)], axis=-1)


def frames_of(array: np.ndarray):
    """A ``frames(f0, f1)`` callable over an in-memory spectrogram."""
    return lambda f0, f1: array[..., f0:f1]


def snr_db(out: np.ndarray, ref: np.ndarray) -> float:
    noise = np.sum((out.astype(np.float64) - ref) ** 2)
    return math.inf if noise == 0 else 10 * math.log10(np.sum(ref.astype(np.float64) ** 2) / noise)


@pytest.mark.parametrize("block", [SHORT_BLOCK, LONG_BLOCK])
@pytest.mark.parametrize("pad_tail", [False, True])
@pytest.mark.parametrize(("name", "is_v51"), CASES)
def test_analysis_equals_whole_track(name, is_v51, pad_tail, block, tmp_path):
    params = load_band_params(name)
    for n in lengths(params):
        x = make_signal(n)
        whole = mb.analyse(x, params, is_v51, pad_tail)
        with stream(x, params, is_v51, pad_tail, block, tmp_path) as analysis:
            assert analysis.total == whole.spec.shape[-1] == mb.analysis_frames(n, params, pad_tail)
            spec, high_end = gather(analysis.frames, analysis.total), gather(analysis.high_end, analysis.total)
        peak = np.abs(whole.spec).max()
        assert spec.dtype == np.complex64 and spec.shape == whole.spec.shape
        assert np.abs(spec - whole.spec).max() <= 1e-6 * peak
        assert high_end.shape == whole.high_end.shape
        assert np.abs(high_end - whole.high_end).max() <= 1e-6 * peak
        assert list(tmp_path.iterdir()) == []


def test_reverse_table_analysis_and_synthesis(tmp_path):
    """``reverse`` time-reverses each band's wave: frames read the scratch files backwards."""
    params = load_band_params("4band_44100_reverse")
    x = make_signal(44100 + 123, seed=3)
    whole = mb.analyse(x, params, False, True)
    with stream(x, params, False, True, SHORT_BLOCK, tmp_path) as analysis:
        assert np.array_equal(gather(analysis.frames, analysis.total), whole.spec)
    ref = mb.to_input_rate(mb.synthesise(whole.spec * 0.7, params, False), params, x.shape[1])
    out = np.concatenate(list(synthesise_stream(lambda a, b: whole.spec[..., a:b] * 0.7, whole.spec.shape[-1],
                                                x.shape[1], params, False, SHORT_BLOCK)), axis=1)
    assert snr_db(out, ref) >= 100


def test_libsamplerate_end_rounding_without_tail_padding(tmp_path):
    """44.1 → 32 kHz at a length multiple of 441: libsamplerate's rounding may drop the last
    resampled sample of the one-shot; only the last frames can differ, and with pad_tail nothing."""
    params = load_band_params("2band_32000")
    x = make_signal(441 * 77, seed=1)
    for pad_tail, exact_frames in ((False, -8), (True, None)):
        whole = mb.analyse(x, params, False, pad_tail)
        with stream(x, params, False, pad_tail, SHORT_BLOCK, tmp_path) as analysis:
            spec = gather(analysis.frames, analysis.total)
        assert np.array_equal(spec[..., :exact_frames], whole.spec[..., :exact_frames])


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize(("name", "is_v51"), CASES)
def test_synthesis_equals_whole_track(name, is_v51, mirror, tmp_path):
    params = load_band_params(name)
    for n in lengths(params):
        analysis = mb.analyse(make_signal(n, seed=2), params, is_v51, pad_tail=True)
        rows, frames = np.ogrid[:params.bins + 1, :analysis.spec.shape[-1]]
        mask = 0.5 + 0.45 * np.sin(rows / 7.0 + frames / 5.0) * np.cos(rows / 53.0)  # a stem-like mask
        stem = (analysis.spec * mask).astype(np.complex64)
        high_end = mirroring(stem, analysis.high_end, params) if mirror else None
        ref = mb.to_input_rate(mb.synthesise(stem, params, is_v51, high_end), params, n)
        blocks = list(synthesise_stream(frames_of(stem), stem.shape[-1], n, params, is_v51, SHORT_BLOCK,
                                        frames_of(analysis.high_end) if mirror else None))
        assert all(b.dtype == np.float32 and b.shape[0] == 2 and 0 < b.shape[1] <= SHORT_BLOCK for b in blocks)
        out = np.concatenate(blocks, axis=1)
        assert out.shape == ref.shape == (2, n)
        assert snr_db(out, ref) >= 100, f"{name}: {snr_db(out, ref):.1f} dB"


@pytest.mark.parametrize("n", [0, 10, 700])
@pytest.mark.parametrize(("name", "is_v51"), [("2band_32000", False), ("4band_v3", True)])
def test_tiny_tracks_and_blocks(name, is_v51, n, tmp_path):
    """Tracks shorter than a window and blocks of a few dozen samples."""
    params = load_band_params(name)
    x = make_signal(n, seed=6)
    whole = mb.analyse(x, params, is_v51, pad_tail=True)
    with stream(x, params, is_v51, True, 100, tmp_path) as analysis:
        assert np.array_equal(analysis.frames(0, analysis.total), whole.spec)
        assert np.array_equal(analysis.high_end(0, analysis.total), whole.high_end)
    ref = mb.to_input_rate(mb.synthesise(whole.spec, params, is_v51), params, n)
    blocks = list(synthesise_stream(frames_of(whole.spec), whole.spec.shape[-1], n, params, is_v51, 64))
    assert np.array_equal(np.concatenate([np.zeros((2, 0), np.float32), *blocks], axis=1), ref)


def test_synthesis_rejects_a_short_spectrogram():
    params = load_band_params("4band_v2")
    n = 44100 + 123
    spec = mb.analyse(make_signal(n), params, False, pad_tail=False).spec
    with pytest.raises(ValueError, match="pad_tail=True"):
        synthesise_stream(frames_of(spec), spec.shape[-1], n, params, False)


@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 7350), (44100, 11025), (14700, 7350), (22050, 11025),
                                               (44100, 14700), (44100, 22050), (44100, 32000), (7350, 14700)])
def test_polyphase_blocks_equal_whole_wave(sr_in, sr_out):
    x = make_signal(20_011, seed=4)
    ref = mb.resample_band(x, sr_in, sr_out, "polyphase")
    for step in (61, 1000, ref.shape[1] + 5):
        got = np.concatenate([polyphase_block(lambda a, b: x[:, a:b], x.shape[1], sr_in, sr_out, s,
                                              min(s + step, ref.shape[1])) for s in range(0, ref.shape[1], step)], axis=1)
        assert np.array_equal(got, ref)


@pytest.mark.parametrize(("sr_in", "sr_out", "res_type"), [
    (44100, 32000, "sinc_medium"), (32000, 6000, "sinc_fastest"), (6000, 32000, "sinc_fastest"),
    (7350, 14700, "sinc_fastest"), (14700, 44100, "sinc_fastest"), (32000, 44100, "sinc_best")])
def test_sinc_stream_equals_one_shot(sr_in, sr_out, res_type):
    """Streaming libsamplerate plus explicit trailing zeros equals the one-shot resample, its sample
    count included (6000 samples put the last output exactly at the end for 6 → 32 and 32 → 6 kHz)."""
    for n in (20_011, 6000):
        x = make_signal(n, seed=5)
        ref = mb.resample_band(x, sr_in, sr_out, res_type)
        for step in (1000, 4097, n):
            resampler = SincStream(sr_in, sr_out, res_type, n)
            parts = [resampler.push(x[:, a:a + step]) for a in range(0, n, step)] + [resampler.finish()]
            assert np.array_equal(np.concatenate(parts, axis=1), ref)
            assert not ref[:, sinc_count(n, sr_in, sr_out):].any()


def test_scratch_wave_round_trip(tmp_path):
    wave = ScratchWave(str(tmp_path), 1000)
    block = make_signal(300)
    wave.write(800, block)  # the part past the end is dropped
    assert np.array_equal(wave.read(800, 1000), block[:, :200])
    assert not wave.read(0, 800).any()
    with pytest.raises(ValueError):
        wave.read(900, 1001)
    wave.close()
    assert list(tmp_path.iterdir()) == []


def _procedural(n: int):
    """A track served by range without ever existing whole: partials computed from the sample index."""
    def read(a: int, b: int) -> np.ndarray:
        t = np.arange(a, b) / 44100
        left = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 5003 * t)
        return np.stack([left, 0.5 * left + 0.05 * np.sin(2 * np.pi * 13001 * t)]).astype(np.float32)
    return read


def _stream_peak(n: int, params: BandParams, directory: Path) -> tuple[int, int]:
    """Peak traced memory of a streaming analysis and synthesis of an ``n``-sample track, and the
    scratch files' total size."""
    block = 11025
    tracemalloc.start()
    try:
        with MultibandStreamAnalysis(_procedural(n), n, params, False, True, str(directory), block) as analysis:
            scratch = sum(p.stat().st_size for p in directory.iterdir())
            written = sum(b.shape[1] for b in synthesise_stream(
                lambda a, b: analysis.frames(a, b) * 0.5, analysis.total, n, params, False, block, analysis.high_end))
        assert written == n
        return tracemalloc.get_traced_memory()[1], scratch
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_track(tmp_path):
    """The scratch files are the only whole-track storage: a track 10× longer stores 10× more on
    disk but peaks at (almost) the same traced memory, below its whole-track spectrogram alone."""
    params = load_band_params("4band_v2")
    (short := tmp_path / "short").mkdir()
    (long := tmp_path / "long").mkdir()
    peak_short, disk_short = _stream_peak(44100, params, short)
    peak_long, disk_long = _stream_peak(10 * 44100, params, long)
    assert disk_long > 9 * disk_short
    whole_spec = 2 * (params.bins + 1) * mb.analysis_frames(10 * 44100, params, True) * 8
    assert peak_long < 1.1 * peak_short
    assert peak_long < whole_spec / 2
