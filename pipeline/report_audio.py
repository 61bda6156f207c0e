"""The audio clips of `stemforge report`: the first seconds of a track's mixture and stems as Ogg Opus
``data:`` URIs in ``<audio>`` elements, so a separation can be judged by ear from the page alone.

Opus at about 48 kbit/s stereo (libsndfile's compression level 0.93; measured on recorded music) keeps a 15 s
clip near 90 KB, 120 KB as base64, and is clear enough to hear leakage between stems; Opus runs at 48 kHz,
so clips are resampled to it.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import soundfile as sf

from stemforge.transforms import resample

CLIP_SECONDS = 15.0
OPUS_RATE = 48000
COMPRESSION = 0.93  # libsndfile's Opus bitrate control: 0 the highest bitrate, 1 the lowest


def read_clip(sound: sf.SoundFile, seconds: float = CLIP_SECONDS) -> tuple[np.ndarray, int]:
    """The first ``seconds`` of an open sound file, float32 ``[frames, channels]``, and its rate."""
    sound.seek(0)
    return sound.read(int(seconds * sound.samplerate), dtype="float32", always_2d=True), sound.samplerate


def opus_uri(wave: np.ndarray, rate: int) -> str:
    """``wave`` (``[frames, channels]`` within ±1; at most two channels kept) as an Ogg Opus ``data:`` URI."""
    wave = wave[:, :2]
    if rate != OPUS_RATE:
        wave = resample(np.ascontiguousarray(wave.T), rate, OPUS_RATE).T
    packed = io.BytesIO()
    sf.write(packed, wave, OPUS_RATE, format="OGG", subtype="OPUS", compression_level=COMPRESSION)
    return "data:audio/ogg;codecs=opus;base64," + base64.b64encode(packed.getvalue()).decode("ascii")


def clips(waves: dict[str, tuple[np.ndarray, int]]) -> str:
    """One row of players, one per stem in order; without a ``mixture`` among them, the stems' sum is
    offered as the mixture (a mask model's stems add up to its input)."""
    if "mixture" not in waves and waves:
        rates = {rate for _, rate in waves.values()}
        length = min(len(w) for w, _ in waves.values())
        if len(rates) == 1 and length:
            summed = sum(w[:length] for w, _ in waves.values())
            waves = {"mixture (the stems' sum)": (summed, rates.pop()), **waves}
    players = []
    for name, (wave, rate) in waves.items():
        peak = float(np.abs(wave).max()) if wave.size else 0.0
        scaled = f", scaled by {-20 * np.log10(peak):.1f} dB to fit full scale" if peak > 1 else ""
        wave = wave / peak if peak > 1 else wave
        label = html.escape(f"{name}, first {len(wave) / rate:.1f} s{scaled}")
        players.append(f'<figure style="margin:4px 12px 4px 0"><audio controls preload="metadata" '
                       f'src="{opus_uri(wave, rate)}" title="{label}"></audio>'
                       f'<figcaption>{label}</figcaption></figure>')
    return f'<div style="display:flex;flex-wrap:wrap">{"".join(players)}</div>'
