"""UVR's multi-band analysis and synthesis for tracks of any length, in memory that does not grow
with the track: the whole-track :func:`~transforms.multiband.analyse` and
:func:`~transforms.multiband.synthesise` + :func:`~transforms.multiband.to_input_rate`, block by block.

Analysis (:class:`MultibandStreamAnalysis`): the resampling cascade runs block by block from the
track's reader into one scratch file per band rate (a band at the same rate as the band above it
shares that band's wave, and a top band at 44.1 kHz reads the track itself); the combined
spectrogram's frames are then computed on request from those files with
:func:`~transforms.stft.stft_frames`, reading only the samples they cover.

Synthesis (:func:`synthesise_stream`): the combined spectrogram is read in runs of frames; for each
run every band's wave is inverted over the same stretch of time with
:func:`~transforms.stft.istft_samples`, and the running sum goes up the bands through streaming
libsamplerate ``sinc_fastest`` resamplers, then to 44.1 kHz through a streaming soxr resampler.

Both equal the whole-track functions: polyphase blocks are computed with enough input context,
libsamplerate and soxr streams give the one-shot values (see ``transforms/multiband_stream_io.py``
for the one libsamplerate rounding case where the last sample of an analysis band may differ when
``pad_tail`` is False), and the STFT helpers equal the whole-signal transforms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Self

import numpy as np

from stemforge.transforms.bands import Band, BandParams
from stemforge.transforms.multiband import (
    INPUT_RATE,
    SYNTHESIS_RES_TYPE,
    band_rows,
    check_resamplers,
    invert_band_channels,
    librosa_length,
    tail_padding,
)
from stemforge.transforms.multiband_filters import (
    apply_band_conversion,
    apply_global_channels,
    input_high_end,
    mirroring,
    pre_filter,
)
from stemforge.transforms.multiband_stream_io import (
    Reader,
    ScratchWave,
    SincStream,
    polyphase_block,
    polyphase_factors,
    read_padded,
)
from stemforge.transforms.resample import Resampler, resampled_length
from stemforge.transforms.stft import frames_for_samples, istft_samples, stft_frames

DEFAULT_BLOCK_SAMPLES = 1 << 17
FramesFn = Callable[[int, int], np.ndarray]


class MultibandStreamAnalysis:
    """The combined multi-band spectrogram of a 44.1 kHz stereo track, served by frame range.

    ``read(start, stop)`` returns the track's float32 ``[2, stop - start]`` samples inside
    ``[0, n_samples)``; it must stay readable while frames are served (a top band at 44.1 kHz reads
    it directly). Construction runs the resampling cascade into scratch files under ``scratch_dir``
    in blocks of about ``block_samples`` input samples; :meth:`close` (or leaving the ``with``
    block) removes them. ``frames(f0, f1)`` equals ``analyse(track, params, is_v51, pad_tail).spec[..., f0:f1]``.
    """

    def __init__(self, read: Reader, n_samples: int, params: BandParams, is_v51: bool, pad_tail: bool,
                 scratch_dir: str, block_samples: int = DEFAULT_BLOCK_SAMPLES) -> None:
        if n_samples < 0 or block_samples <= 0:
            raise ValueError("n_samples must be >= 0 and block_samples positive")
        check_resamplers(params)
        self.params, self.is_v51, self.pad_tail, self.n_samples = params, is_v51, pad_tail, n_samples
        self._files: list[ScratchWave] = []
        self._sources: list[tuple[Reader, int]] = [(read, 0)] * len(params.bands)
        length = n_samples + (tail_padding(params) if pad_tail else 0)

        def padded(a: int, b: int) -> np.ndarray:  # the track, then zeros (the tail padding)
            return read_padded(read, n_samples, a, b)

        source: Reader = padded
        rate = INPUT_RATE
        try:
            for index in reversed(range(len(params.bands))):
                band = params.bands[index]
                if band.sr != rate:
                    wave = self._resample(source, length, rate, band, scratch_dir, block_samples)
                    source, length, rate = wave.read, wave.length, band.sr
                self._sources[index] = (source, length)
        except BaseException:
            self.close()
            raise
        self.total = min(1 + n // band.hl for (_, n), band in zip(self._sources, params.bands, strict=True))

    def _resample(self, source: Reader, n_in: int, sr_in: int, band: Band, scratch_dir: str,
                  block_samples: int) -> ScratchWave:
        """``band``'s wave: ``source`` (``n_in`` samples at ``sr_in``) resampled block by block as
        ``resample_band`` does, into a new scratch file."""
        sr_out, res_type = band.sr, band.res_type
        wave = ScratchWave(scratch_dir, librosa_length(n_in, sr_in, sr_out))
        self._files.append(wave)
        if res_type == "polyphase":
            up, _ = polyphase_factors(sr_in, sr_out)
            step = max(up, block_samples * sr_out // INPUT_RATE // up * up)
            for start in range(0, wave.length, step):
                wave.write(start, polyphase_block(source, n_in, sr_in, sr_out, start, min(start + step, wave.length)))
            return wave
        stream, written = SincStream(sr_in, sr_out, res_type, n_in), 0
        step = max(1, block_samples * sr_in // INPUT_RATE)
        for start in range(0, n_in, step):
            block = stream.push(source(start, min(start + step, n_in)))
            wave.write(written, block)
            written += block.shape[1]
        wave.write(written, stream.finish())
        return wave

    def _band_frames(self, index: int, f0: int, f1: int) -> np.ndarray:
        """Band ``index``'s complex64 spectrum frames ``[f0, f1)``, channel conversions applied."""
        band, (source, length) = self.params.bands[index], self._sources[index]
        if self.is_v51:
            spec = stft_frames(source, length, f0, f1, band.n_fft, band.hl)
            return apply_band_conversion(spec, band.convert_channels)

        def converted(a: int, b: int) -> np.ndarray:
            block = source(length - b, length - a) if self.params.reverse else source(a, b)
            return apply_global_channels(block, self.params)

        return stft_frames(converted, length, f0, f1, band.n_fft, band.hl)

    def _check(self, f0: int, f1: int) -> None:
        if not self._sources:
            raise ValueError("the analysis is closed")
        if not 0 <= f0 <= f1 <= self.total:
            raise ValueError(f"frames [{f0}, {f1}) outside [0, {self.total})")

    def frames(self, f0: int, f1: int) -> np.ndarray:
        """Frames ``[f0, f1)`` of the combined spectrogram, complex64 ``[2, bins + 1, f1 - f0]``."""
        self._check(f0, f1)
        out = np.zeros((2, self.params.bins + 1, f1 - f0), np.complex64)
        if f1 == f0:
            return out
        row = 0
        for index, band in enumerate(self.params.bands):
            out[:, row:row + band.rows] = self._band_frames(index, f0, f1)[:, band.crop_start:band.crop_stop]
            row += band.rows
        return pre_filter(out, self.params, self.is_v51)

    def high_end(self, f0: int, f1: int) -> np.ndarray:
        """Frames ``[f0, f1)`` of the mixture's high end (``analyse(...).high_end``), what
        :func:`~transforms.multiband_filters.mirroring` takes phases from: complex64 ``[2, H, f1 - f0]``."""
        self._check(f0, f1)
        top = len(self.params.bands) - 1
        if f1 == f0:
            return input_high_end(np.zeros((2, self.params.top.n_fft // 2 + 1, 0), np.complex64), self.params)
        return input_high_end(self._band_frames(top, f0, f1), self.params)

    def close(self) -> None:
        """Remove the scratch files; frames can no longer be served."""
        for wave in self._files:
            wave.close()
        self._files, self._sources = [], []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Fifo:
    """Stereo float32 samples waiting to be summed or handed out (a few blocks at most)."""

    def __init__(self) -> None:
        self._data = np.zeros((2, 0), np.float32)

    @property
    def size(self) -> int:
        return self._data.shape[1]

    def push(self, block: np.ndarray) -> None:
        self._data = np.concatenate([self._data, np.asarray(block, np.float32)], axis=1)

    def pop(self, n: int) -> np.ndarray:
        out, self._data = self._data[:, :n], self._data[:, n:]
        return out


class _Level:
    """One step of the running sum: the lower bands' sum brought to this band's rate, plus the band."""

    def __init__(self, lower_sr: int, sr: int, lower_length: int) -> None:
        self._resampler = SincStream(lower_sr, sr, SYNTHESIS_RES_TYPE, lower_length) if lower_sr != sr else None
        self._lower, self._own = _Fifo(), _Fifo()

    def push(self, lower: np.ndarray, own: np.ndarray, last: bool) -> np.ndarray:
        if self._resampler is not None:
            lower = self._resampler.push(lower)
            if last:
                lower = np.concatenate([lower, self._resampler.finish()], axis=1)
        self._lower.push(lower)
        self._own.push(own)
        if last and self._lower.size != self._own.size:
            raise ValueError(f"band waves of different lengths ({self._lower.size} and {self._own.size} left)")
        n = min(self._lower.size, self._own.size)
        return self._lower.pop(n) + self._own.pop(n)


def synthesise_stream(spec_frames: FramesFn, total_frames: int, n_samples: int, params: BandParams,
                      is_v51: bool, block_samples: int = DEFAULT_BLOCK_SAMPLES,
                      high_end_frames: FramesFn | None = None) -> Iterator[np.ndarray]:
    """The stem of a combined spectrogram at 44.1 kHz, exactly ``n_samples`` long, in float32
    ``[2, <= block_samples]`` blocks: ``to_input_rate(synthesise(spec, params, is_v51, high_end),
    params, n_samples)`` without holding the spectrogram or the wave.

    ``spec_frames(f0, f1)`` returns frames ``[f0, f1)`` (inside ``[0, total_frames)``) of the
    complex ``[2, bins + 1, total_frames]`` spectrogram. With ``high_end_frames`` (the mixture's, e.g.
    :meth:`MultibandStreamAnalysis.high_end`) UVR's mirroring fills the top band's high end.
    Raises ValueError at once when the spectrogram is too short for ``n_samples`` (analyse with
    ``pad_tail=True``)."""
    if total_frames < 1 or n_samples < 0 or block_samples <= 0:
        raise ValueError("need total_frames >= 1, n_samples >= 0 and block_samples > 0")
    top = params.top.hl * (total_frames - 1)
    available = top if params.sr == INPUT_RATE else resampled_length(top, params.sr, INPUT_RATE)
    if available < n_samples:
        raise ValueError(f"synthesis gives {available} samples at {INPUT_RATE} Hz, fewer than {n_samples}; "
                         "analyse with pad_tail=True")
    return _synthesis_blocks(spec_frames, total_frames, n_samples, params, is_v51, block_samples, high_end_frames)


def _synthesis_blocks(spec_frames: FramesFn, total_frames: int, n_samples: int, params: BandParams,
                      is_v51: bool, block_samples: int, high_end_frames: FramesFn | None) -> Iterator[np.ndarray]:
    bands = params.bands
    levels = [_Level(bands[k - 1].sr, bands[k].sr, bands[k - 1].hl * (total_frames - 1)) for k in range(1, len(bands))]
    to_input = Resampler(params.sr, INPUT_RATE, 2) if params.sr != INPUT_RATE else None
    out, emitted = _Fifo(), 0
    step = max(1, block_samples * params.sr // (params.top.hl * INPUT_RATE))  # frames per run
    for t0 in range(0, total_frames - 1, step):
        if emitted == n_samples:
            return
        t1 = min(t0 + step, total_frames - 1)
        last = t1 == total_frames - 1
        pieces = _band_pieces(spec_frames, high_end_frames, total_frames, t0, t1, params, is_v51)
        total = pieces[0]
        for level, piece in zip(levels, pieces[1:], strict=True):
            total = level.push(total, piece, last)
        out.push(total if to_input is None else to_input.process(total, last=last))
        while emitted < n_samples and out.size >= min(block_samples, n_samples - emitted):
            block = out.pop(min(block_samples, n_samples - emitted))
            emitted += block.shape[1]
            yield block


def _band_pieces(spec_frames: FramesFn, high_end_frames: FramesFn | None, total_frames: int, t0: int, t1: int,
                 params: BandParams, is_v51: bool) -> list[np.ndarray]:
    """Every band's wave over frame times ``[t0, t1)`` (samples ``[t0 · hl, t1 · hl)`` at its rate),
    from one read of the frames they all need."""
    ranges = []
    for band in params.bands:
        length, s0, s1 = band.hl * (total_frames - 1), t0 * band.hl, t1 * band.hl
        if params.reverse and not is_v51:  # the band's ISTFT runs backwards in time
            s0, s1 = length - s1, length - s0
        ranges.append((length, s0, s1, *frames_for_samples(s0, s1, length, band.n_fft, band.hl)))
    u0, u1 = min(r[3] for r in ranges), max(r[4] for r in ranges)
    spec = np.asarray(spec_frames(u0, u1))
    if spec.shape != (2, params.bins + 1, u1 - u0):
        raise ValueError(f"spec_frames({u0}, {u1}) returned shape {spec.shape}, expected {(2, params.bins + 1, u1 - u0)}")
    high = None if high_end_frames is None else mirroring(spec, np.asarray(high_end_frames(u0, u1)), params)
    pieces = []
    for index, (band, (length, s0, s1, _, _)) in enumerate(zip(params.bands, ranges, strict=True)):
        rows = band_rows(spec, params, index, is_v51, high)
        wave = istft_samples(rows, u0, s0, s1, length, band.n_fft, band.hl)
        pieces.append(invert_band_channels(wave, params, index, is_v51))
    return pieces
