"""Turning a prepared track and its model masks into stems and spectrogram rows, block by block."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from stemforge.config.run import Config
from stemforge.pipeline.engine.masks import require_finite
from stemforge.pipeline.scratch import scratch_root
from stemforge.pipeline.engine.rows import model_columns
from stemforge.pipeline.storage import StorageOptions, publish_file, redact_uri
from stemforge.pipeline.engine.track import MaskReader, PreparedTrack, TrackMeta
from stemforge.transforms.chain import recorded_draws

_FORMATS = {"flac": "FLAC", "wav": "WAV", "ogg": "OGG"}


def row_metadata(meta: TrackMeta, config: Config) -> dict[str, Any]:
    """The scalar columns shared by every row of a track variant."""
    return {
        "track_key": meta.track_key,
        "source": redact_uri(meta.source),
        "variant": meta.variant,
        "sample_rate": meta.sample_rate,
        "n_fft": config.model.n_fft,
        "hop_length": config.model.hop_length,
        "seed": meta.seed,
        **recorded_draws(meta.params),
        "augment_params": json.dumps(list(meta.params), sort_keys=True),
        **({"mix_params": meta.mix.to_json(), "dropped": ",".join(meta.mix.dropped)} if meta.mix else {}),
    }


def spectrogram_rows(track: PreparedTrack, masks: MaskReader | None, config: Config,
                     stem_gain: float | None = None) -> Iterator[dict[str, Any]]:
    """One row per segment of ``segment_frames`` frames (the last zero-padded): the mixture's
    magnitude, mask·|X| and (1−mask)·|X| under the model's stem names (``teacher_`` names in a mix run),
    a mix run's target stems' magnitudes, and the clean magnitude. The columns are not scaled by
    ``stem_gain`` (the stems sum to the mixture); it is recorded, None when no stem file was written."""
    meta = track.meta
    seg = config.output.segment_frames
    dtype = np.dtype(config.output.spectrogram_dtype)
    mixture = track.frames()
    clean = track.frames(clean=True) if track.clean is not None else None
    targets = {name: track.target_frames(name) for name in track.targets}
    predicted = model_columns(config)
    shared = dict(row_metadata(meta, config), stem_gain=stem_gain)
    for segment, start in enumerate(range(0, meta.num_frames, seg)):
        valid = min(seg, meta.num_frames - start)
        mask = masks.get(start, start + valid) if masks is not None else None
        columns = dict(zip(["mixture", *predicted], track.columns(mixture.get(start, start + valid), mask, dtype, seg)))
        for name, frames in targets.items():
            columns[name] = track.columns(frames.get(start, start + valid), None, dtype, seg)[0]
        if clean is not None:
            columns["clean"] = track.columns(clean.get(start, start + valid), None, dtype, seg)[0]
        yield dict(shared, segment=segment, start_frame=start, num_frames=valid, **columns)


def _clear_wav_timestamp(path: str) -> None:
    """libsndfile stamps a float WAV's PEAK chunk with the wall-clock time; zero it, so that a rerun or a
    retried bundle writes the same bytes. (FLAC and PCM WAV carry no time; Ogg streams get a random
    serial number from libsndfile, so ogg stems are not byte-reproducible.)"""
    with open(path, "r+b") as handle:
        head = handle.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        position = 12
        while chunk := handle.read(8):
            if len(chunk) < 8 or chunk[:4] == b"data":
                return
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"PEAK":  # version (4 bytes), then the timestamp (4 bytes)
                handle.seek(position + 12)
                handle.write(bytes(4))
                return
            position += 8 + size + (size & 1)
            handle.seek(position)


@dataclass(frozen=True)
class StemReport:
    """What writing a track variant's stems did to their values (see ``output.clip``)."""

    uris: list[str]
    gain: float  # common gain on every stem: 1.0 unless ``rescale`` had to bring a peak to full scale
    peaks: dict[str, float]  # each stem's peak before the gain
    clipped: dict[str, int]  # ``clamp``: samples clipped to ±1.0 per stem


class StemFiles:
    """The one stem writer: audio files at ``paths`` that every block goes through, where ``output.clip`` applies
    (a common ``gain``, ``clamp`` counting the samples it clips, nothing clipped with ``none``) and each file's
    peak before the gain is tracked. Separated stems and a mix run's sources alike."""

    def __init__(self, paths: list[str], config: Config, sample_rate: int, gain: float) -> None:
        output = config.output
        self._mode, self._gain = output.clip, gain
        self.peaks, self.clipped = [0.0] * len(paths), [0] * len(paths)
        self._files = [sf.SoundFile(p, "w", samplerate=sample_rate, channels=2, format=_FORMATS[output.stem_format],
                                    subtype=output.resolved_subtype, compression_level=output.compression_level)
                       for p in paths]

    def __enter__(self) -> StemFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._files:
            handle.close()

    def encode(self, k: int, audio: np.ndarray) -> None:
        """Writes block ``audio`` ``[2, n]`` to file ``k``."""
        self.peaks[k] = max(self.peaks[k], float(np.abs(audio).max(initial=0.0)))
        if self._gain != 1.0:
            audio = audio * np.float32(self._gain)
        if self._mode == "clamp":
            self.clipped[k] += int(np.count_nonzero(np.abs(audio) > 1.0))
        if self._mode != "none":  # after a rescale this only removes float rounding (at most one ulp past 1.0)
            audio = np.clip(audio, -1.0, 1.0)
        self._files[k].write(np.ascontiguousarray(audio.T))


def rescale_gain(config: Config, peaks: list[float]) -> float:
    """The common gain ``output.clip: rescale`` applies to files whose largest peak is ``max(peaks)``: 1/peak
    above full scale, else 1 (and always 1 for the other modes)."""
    return 1.0 / max(peaks) if config.output.clip == "rescale" and max(peaks) > 1.0 else 1.0


def _stem_pass(track: PreparedTrack, masks: MaskReader, config: Config, paths: list[str], gain: float,
               ) -> tuple[list[float], list[int]]:
    """Invert mask·X and (1−mask)·X block by block, times ``gain``, into the two files at ``paths``;
    returns each stem's peak (before the gain) and how many samples ``clamp`` clipped.

    The inverse runs over the spectrogram of the track followed by zeros (the mask of its last frame held
    there), so the last hop is covered by full windows and every input sample comes back: see
    ``transforms.end_padded_frames`` and, for UVR's band tables, ``transforms.multiband.tail_padding``.
    """
    with StemFiles(paths, config, track.meta.sample_rate, gain) as files:
        def encode(k: int, audio: np.ndarray) -> None:
            require_finite(audio, f"{config.model.stems[k]} stem")
            files.encode(k, audio)

        track.synthesise(masks, encode)
    return files.peaks, files.clipped


def write_stems(track: PreparedTrack, masks: MaskReader, config: Config, storage_options: StorageOptions,
                staging: str | None = None) -> StemReport:
    """Writes the two stem files of a track variant and publishes each whole (``staging`` holds local
    temporaries; see ``storage.publish_file``).

    ``output.clip`` decides what happens to samples beyond ±1.0. ``rescale`` needs the stems' peak before
    it writes: the stems are encoded at gain 1 while the peak is tracked, and only a track variant whose
    peak turns out above 1.0 is inverted and encoded a second time, at gain 1/peak. That is exact, and
    costs nothing for the (usual) variants that fit.
    """
    meta = track.meta
    stems = config.model.stems
    uris = [config.output.stem_uri(meta.track_key, meta.variant, stem) for stem in stems]
    with tempfile.TemporaryDirectory(prefix="stems-", dir=scratch_root()) as scratch:
        paths = [os.path.join(scratch, f"{i}.{config.output.stem_format}") for i in range(2)]
        peaks, clipped = _stem_pass(track, masks, config, paths, 1.0)
        gain = rescale_gain(config, peaks)
        if gain != 1.0:
            _stem_pass(track, masks, config, paths, gain)
        for path in paths:
            _clear_wav_timestamp(path)
        for path, uri in zip(paths, uris):
            publish_file(path, uri, storage_options, staging)
    return StemReport(uris, gain, dict(zip(stems, peaks)), dict(zip(stems, clipped)))


def write_sources(track: PreparedTrack, config: Config, storage_options: StorageOptions,
                  staging: str | None = None) -> StemReport:
    """A mix run's audio files: the mixture and every target stem, as the spectrogram rows hold them
    (augmented), under the stem names ``mixture`` and the targets'. ``output.clip`` applies as for separated
    stems, with one common gain for all files, so the targets still sum to the mixture."""
    meta = track.meta
    waves = {"mixture": track.samples, **track.targets}
    block = max(int(config.run.chunk_seconds * meta.sample_rate), 1)
    peaks = [max((float(np.abs(wave.read(p, p + block)).max(initial=0.0)) for p in range(0, meta.num_samples, block)),
                 default=0.0) for wave in waves.values()]
    gain = rescale_gain(config, peaks)
    uris = [config.output.stem_uri(meta.track_key, meta.variant, name) for name in waves]
    with tempfile.TemporaryDirectory(prefix="stems-", dir=scratch_root()) as scratch:
        paths = [os.path.join(scratch, f"{i}.{config.output.stem_format}") for i in range(len(waves))]
        with StemFiles(paths, config, meta.sample_rate, gain) as files:
            for k, wave in enumerate(waves.values()):
                for position in range(0, meta.num_samples, block):
                    files.encode(k, wave.read(position, position + block))
        for path in paths:
            _clear_wav_timestamp(path)
        for path, uri in zip(paths, uris):
            publish_file(path, uri, storage_options, staging)
    return StemReport(uris, gain, dict(zip(waves, peaks)), dict(zip(waves, files.clipped)))
