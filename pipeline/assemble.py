"""Turning a prepared track and its model masks into stems and spectrogram rows, block by block."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import soundfile as sf
import torch

from pipeline.config import Config
from pipeline.storage import StorageOptions, join, publish_file, redact_uri
from pipeline.track import FrameCache, MaskReader, PreparedTrack, TrackMeta
from transforms import frames_for_samples, istft_samples

_FORMATS = {"flac": "FLAC", "wav": "WAV", "ogg": "OGG"}


def stem_uri(config: Config, track_key: str, variant: int, stem: str) -> str:
    """Where one stem of a track variant is published."""
    relative = config.output.stem_path.format(track_key=track_key, variant=variant, stem=stem,
                                              ext=config.output.stem_format)
    return join(config.output.uri, "stems", relative)


def _param(params: tuple[dict[str, Any], ...], transform: str, name: str) -> float | None:
    for entry in params:
        if entry.get("transform") == transform and entry.get("applied"):
            return float(entry[name])
    return None


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
        "lowpass_cutoff_hz": _param(meta.params, "ZeroPhaseBiquadLowPass", "cutoff_hz"),
        "lowpass_q": _param(meta.params, "ZeroPhaseBiquadLowPass", "q"),
        "gain_db": _param(meta.params, "Gain", "gain_db"),
        "augment_params": json.dumps(list(meta.params), sort_keys=True),
    }


def spectrogram_rows(track: PreparedTrack, masks: MaskReader, config: Config) -> Iterator[dict[str, Any]]:
    """One row per segment of ``segment_frames`` frames (the last zero-padded): the mixture's
    magnitude, mask·|X| and (1−mask)·|X| under the stem names, and the clean magnitude."""
    meta = track.meta
    seg = config.output.segment_frames
    dtype = np.dtype(config.output.spectrogram_dtype)
    n_fft, hop = config.model.n_fft, config.model.hop_length
    mixture = FrameCache(track.read, meta.num_samples, n_fft, hop, block_frames=seg)
    clean = None
    if track.clean is not None:
        clean = FrameCache(track.read_clean, meta.num_samples, n_fft, hop, block_frames=seg)
    first_name, second_name = config.model.stems
    shared = row_metadata(meta, config)
    for segment, start in enumerate(range(0, meta.num_frames, seg)):
        valid = min(seg, meta.num_frames - start)
        magnitude = np.abs(mixture.get(start, start + valid))
        mask = masks.get(start, start + valid)
        columns = {"mixture": magnitude, first_name: mask * magnitude, second_name: (1.0 - mask) * magnitude}
        if clean is not None:
            columns["clean"] = np.abs(clean.get(start, start + valid))
        row = dict(shared, segment=segment, start_frame=start, num_frames=valid)
        for name, value in columns.items():
            row[name] = _column(value, dtype, seg)
        yield row


def _column(value: np.ndarray, dtype: np.dtype, frames: int) -> np.ndarray:
    """``value`` in the column's dtype, zero-padded to ``frames`` frames. The cast goes through torch,
    whose float32 → float16 conversion is vectorised (numpy's takes ~50× longer) and rounds alike."""
    out = np.zeros(value.shape[:-1] + (frames,), dtype)
    torch.from_numpy(out)[..., : value.shape[-1]] = torch.from_numpy(np.ascontiguousarray(value))
    return out


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


def write_stems(track: PreparedTrack, masks: MaskReader, config: Config, storage_options: StorageOptions,
                staging: str | None = None) -> list[str]:
    """Inverse-STFT mask·X and (1−mask)·X block by block into the two stem files; returns their URIs.

    Each stem is published whole (see ``storage.publish_file``; ``staging`` holds local temporaries)."""
    meta = track.meta
    n_fft, hop = config.model.n_fft, config.model.hop_length
    subtype = config.output.resolved_subtype
    clip = subtype.startswith("PCM") or subtype in ("ULAW", "ALAW", "VORBIS", "OPUS")
    cache = FrameCache(track.read, meta.num_samples, n_fft, hop, block_frames=4 * config.model.cropsize)
    block = max(int(config.run.chunk_seconds * meta.sample_rate) // hop, 1) * hop
    uris = [stem_uri(config, meta.track_key, meta.variant, stem) for stem in config.model.stems]
    with tempfile.TemporaryDirectory(prefix="stemforge-stems-") as scratch:
        paths = [os.path.join(scratch, f"{i}.{config.output.stem_format}") for i in range(2)]
        files = [sf.SoundFile(p, "w", samplerate=meta.sample_rate, channels=2,
                              format=_FORMATS[config.output.stem_format], subtype=subtype) for p in paths]

        def invert_and_encode(k: int, part: np.ndarray, f0: int, start: int, stop: int) -> None:
            audio = istft_samples(part, f0, start, stop, meta.num_samples, n_fft, hop)
            if clip:
                audio = np.clip(audio, -1.0, 1.0)
            files[k].write(np.ascontiguousarray(audio.T))

        try:
            # Each stem is inverted and encoded in its own thread (numpy and libsndfile release the GIL)
            # while the next block's STFT and mask are read; a stem's blocks are still written in order.
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stemforge-stem") as workers:
                pending: list[Future | None] = [None, None]
                for start in range(0, meta.num_samples, block):
                    stop = min(start + block, meta.num_samples)
                    f0, f1 = frames_for_samples(start, stop, meta.num_samples, n_fft, hop)
                    spec = cache.get(f0, f1)
                    mask = masks.get(f0, f1)
                    for k, part in enumerate((mask * spec, (1 - mask) * spec)):
                        if pending[k] is not None:
                            pending[k].result()
                        pending[k] = workers.submit(invert_and_encode, k, part, f0, start, stop)
                for future in pending:
                    if future is not None:
                        future.result()
        finally:
            for handle in files:
                handle.close()
        for path in paths:
            _clear_wav_timestamp(path)
        for path, uri in zip(paths, uris):
            publish_file(path, uri, storage_options, staging)
    return uris
