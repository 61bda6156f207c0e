"""Files in every format a corpus holds, encoded here by the ffmpeg command (skipped without it),
and ffmpeg's own decode of them as the independent reference."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 44100


@dataclass(frozen=True)
class Kind:
    """One way of encoding: file name, ffmpeg's output arguments, what the reader should make of it."""

    name: str
    filename: str
    args: tuple[str, ...]
    decoder: str = "ffmpeg"
    length: str = "declared"  # "declared": equals the source's length; "counted": what ffmpeg decodes
    lag: int | None = 0  # samples the decode lags the source by (None: not compared, another rate)
    lossless: bool = False


KINDS = [
    Kind("mp3_xing", "x.mp3", ("-c:a", "libmp3lame", "-q:a", "2")),
    Kind("mp3_cbr_no_xing", "x.mp3", ("-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0"),
         length="counted", lag=1105),  # LAME's 576 + the decoder's 529: no LAME tag says so
    Kind("mp3_vbr_no_xing", "x.mp3", ("-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0"),
         length="counted", lag=1105),
    Kind("m4a_aac", "x.m4a", ("-c:a", "aac", "-b:a", "160k")),
    Kind("mp4_aac_faststart", "x.mp4", ("-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart")),
    Kind("aac_adts", "x.aac", ("-c:a", "aac", "-b:a", "160k", "-f", "adts"), length="counted", lag=1024),
    Kind("webm_opus", "x.webm", ("-c:a", "libopus", "-b:a", "128k"), length="counted", lag=None),
    Kind("mka_vorbis", "x.mka", ("-c:a", "libvorbis", "-q:a", "6"), length="counted"),
    Kind("mkv_flac", "x.mkv", ("-c:a", "flac"), length="counted", lossless=True),
    Kind("wma", "x.wma", ("-c:a", "wmav2", "-b:a", "192k"), length="counted", lag=None),
    Kind("m4a_alac", "x.m4a", ("-c:a", "alac"), lossless=True),
    Kind("alac", "x.alac", ("-c:a", "alac", "-f", "ipod"), lossless=True),
    Kind("caf_alac", "x.caf", ("-c:a", "alac"), length="counted", lossless=True),
    Kind("caf_pcm", "x.caf", ("-c:a", "pcm_s16le"), length="counted", lossless=True),
    Kind("wavpack", "x.wv", ("-c:a", "wavpack"), lossless=True),
]
KIND = {kind.name: kind for kind in KINDS}


def need_ffmpeg() -> str:
    """The ffmpeg command, or skip the test."""
    found = shutil.which("ffmpeg")
    if found is None:
        pytest.skip("ffmpeg is not installed")
    return found


def source_signal(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Stereo music-like float32 ``[2, n]`` at 16-bit resolution: two tones, a sweep, quiet noise, fades."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    left = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * (200 + 400 * t) * t)
    right = 0.3 * np.sin(2 * np.pi * 523 * t) + 0.1 * rng.standard_normal(t.size)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    x = np.stack([left, right]) * fade
    return (np.round(x * 32767) / 32768).astype(np.float32)


def write_source(path: Path, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Write :func:`source_signal` as 16-bit WAV; returns the samples."""
    x = source_signal(seconds, seed)
    sf.write(path, x.T, SR, subtype="PCM_16")
    return x


def encode(source: Path, target: Path, args: tuple[str, ...]) -> Path:
    """``ffmpeg -i source ARGS target``; skips the test when this ffmpeg lacks the encoder."""
    done = subprocess.run([need_ffmpeg(), "-v", "error", "-y", "-i", str(source), *args, str(target)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this ffmpeg cannot write {args}: {done.stderr.decode(errors='replace')[-200:]}")
    return target


def reference_decode(path: Path, channels: int = 2) -> np.ndarray:
    """ffmpeg's own decode of ``path`` as float32 ``[channels, n]``."""
    raw = subprocess.run([need_ffmpeg(), "-v", "error", "-i", str(path), "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).reshape(-1, channels).T


def lag_of(decoded: np.ndarray, source: np.ndarray, search: int = 3000) -> int:
    """How many samples ``decoded`` lags ``source`` by (cross-correlation of the first channel)."""
    segment = source[0, search:search + 20000]
    scores = [float(np.dot(decoded[0, search + lag:search + lag + segment.size], segment))
              for lag in range(-search, search)]
    return int(np.argmax(scores)) - search
