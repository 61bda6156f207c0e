"""Synthetic stem sets that every machine here can make: voices from espeak-ng and music from our own synthesis,
as ``{track}/instruments.wav`` and ``{track}/vocals.wav`` (44.1 kHz stereo float WAV) plus a manifest.

Voices: espeak-ng's English voices and variants at random rates and pitches, saying random
sentences from a small word list, with pauses between phrases. Music: a random key, mode and tempo; a chord
progression played by one of several timbres (additive saw, square, soft sine, plucked), a bass line on the
chord roots, and a drum pattern (kick, snare, hats) on the grid; panned to stereo. Each track's vocals are
scaled to a voice-to-music ratio drawn from ``ratios_db``. The same seed gives the same files.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from stemforge.transforms import resample

SR = 44100
MIN_SECONDS = 0.5  # shorter tracks hold hardly a syllable; 0 s holds no sample at all
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-us+f2", "en-us+f3", "en-us+f4", "en-gb+m3", "en-us+m4",
          "en+Andy", "en+Annie", "en+belinda", "en+david", "en+linda", "en+Mike", "en+paul", "en+steph",
          "en+robert", "en+max", "en+aunty", "en+john")
WORDS = (
    "river", "light", "morning", "falling", "silver", "window", "open", "quiet", "stone", "garden", "summer",
    "heart", "away", "long", "road", "over", "golden", "night", "again", "every", "little", "dream", "under",
    "fire", "slowly", "home", "bright", "rain", "tomorrow", "sky", "turning", "voice", "along", "shadow",
    "dancing", "paper", "ocean", "sleeping", "winter", "follow", "sound", "yellow", "always", "between",
)
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 0, 3, 4))


class SynthError(RuntimeError):
    """The synthesis cannot run here (espeak-ng missing), said in one line."""


@dataclass(frozen=True)
class SynthTrack:
    """One generated track: where its stems are and how it was drawn."""

    key: str
    folder: Path
    voice: str
    tempo: float
    ratio_db: float


def espeak_voice(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """espeak-ng saying ``text``, mono float32 at 44.1 kHz (espeak-ng speaks at 22.05 kHz)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SynthError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "voice.wav"
        subprocess.run([espeak, "-v", voice, "-s", str(rate), "-p", str(pitch), "-a", "120", "-w", str(path), text],
                       check=True, capture_output=True, timeout=120)
        if not path.exists():
            raise SynthError(f"espeak-ng wrote no audio for voice {voice}")
        wave, rate_in = sf.read(path, dtype="float32", always_2d=True)
    return resample(wave.T[:1], rate_in, SR)[0]


def _voice_track(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    voice = str(rng.choice(VOICES))
    out = np.zeros(int(seconds * SR), np.float32)
    at = int(rng.uniform(0.2, 1.0) * SR)
    while at < len(out) - SR // 2:
        words = " ".join(rng.choice(WORDS, int(rng.integers(3, 9))))
        phrase = espeak_voice(words, voice, int(rng.integers(110, 210)), int(rng.integers(20, 80)))
        phrase = phrase[: len(out) - at]
        out[at: at + len(phrase)] += phrase
        at += len(phrase) + int(rng.uniform(0.1, 0.9) * SR)
    return out, voice


def _note(freq: float, samples: int, timbre: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(samples) / SR
    if timbre == "saw":
        wave = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 12) if k * freq < SR / 2.2)
    elif timbre == "square":
        wave = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 12, 2) if k * freq < SR / 2.2)
    elif timbre == "pluck":
        wave = sum(np.sin(2 * np.pi * k * freq * t) * np.exp(-t * 3 * k) / k for k in range(1, 8))
    else:
        wave = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)
    attack = min(samples, int(0.01 * SR))
    envelope = np.minimum(1.0, np.exp(-t * rng.uniform(0.5, 3.0)) * 1.2)
    envelope[:attack] *= np.linspace(0, 1, attack)
    return (wave * envelope).astype(np.float32)


def _drums(samples: int, beat: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(samples, np.float32)
    t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    snare = (rng.standard_normal(t.size) * 0.6 + np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 20)
    hat = np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t * 60) * 0.3
    for number, start in enumerate(range(0, samples, beat // 2)):
        for hit, when in ((kick, number % 4 == 0), (snare, number % 4 == 2), (hat, True)):
            if when:
                piece = hit[: samples - start]
                out[start: start + len(piece)] += piece
    return out


def _music_track(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    samples = int(seconds * SR)
    tempo = float(rng.uniform(70, 150))
    beat = int(SR * 60 / tempo)
    root = 48 + int(rng.integers(0, 12))
    scale = MAJOR if rng.random() < 0.6 else MINOR
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    timbre = str(rng.choice(("saw", "square", "soft", "pluck")))
    left, right = np.zeros(samples, np.float32), np.zeros(samples, np.float32)
    bar = 4 * beat
    for number, start in enumerate(range(0, samples, bar)):
        degree = progression[number % len(progression)]
        chord = [root + 12 + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        length = min(bar, samples - start)
        for note in chord:
            tone = 0.12 * _note(440 * 2 ** ((note - 69) / 12), length, timbre, rng)
            pan = rng.uniform(0.3, 0.7)
            left[start: start + length] += (1 - pan) * tone
            right[start: start + length] += pan * tone
        bass_freq = 440 * 2 ** ((root - 12 + scale[degree % 7] - 69) / 12)
        for step in range(0, length, beat):
            piece = 0.25 * _note(bass_freq, min(beat, length - step), "soft", rng)
            left[start + step: start + step + len(piece)] += piece
            right[start + step: start + step + len(piece)] += piece
    drums = 0.3 * _drums(samples, beat, rng)
    return np.stack([left + drums, right + drums]), tempo


def make_track(folder: Path, key: str, seconds: float, ratio_db: float, rng: np.random.Generator,
               music: np.ndarray | None = None, voice: tuple[np.ndarray, str] | None = None) -> SynthTrack:
    """One track's two stems, the vocals scaled to ``ratio_db`` of voice-to-music energy; ``music`` (stereo
    ``[2, seconds·44100]``, e.g. a recorded excerpt) replaces the synthesised music (tempo then 0), ``voice``
    (mono ``[seconds·44100]`` and its name, e.g. a recorded speaker) the espeak-ng voice."""
    vocals, voice = _voice_track(seconds, rng) if voice is None else voice
    music, tempo = _music_track(seconds, rng) if music is None else (music, 0.0)
    pan = rng.uniform(0.4, 0.6)
    vocals = np.stack([(1 - pan) * vocals, pan * vocals]) * 2
    energy = float(np.sum(music**2)) / max(float(np.sum(vocals**2)), 1e-12)
    vocals = vocals * np.sqrt(energy * 10 ** (ratio_db / 10))
    peak = max(float(np.abs(vocals + music).max()), 1e-9) / 0.9  # the mixture peaks at 0.9, stems alike
    (folder / key).mkdir(parents=True, exist_ok=True)
    sf.write(folder / key / "instruments.wav", (music / peak).T, SR, subtype="FLOAT")
    sf.write(folder / key / "vocals.wav", (vocals / peak).T, SR, subtype="FLOAT")
    return SynthTrack(key, folder / key, voice, tempo, ratio_db)


def check_size(tracks: int, seconds: float) -> None:
    """Refuses a stem set of no tracks or of tracks too short to separate, before anything is made."""
    if tracks < 1:
        raise SynthError(f"--tracks must be at least 1, got {tracks}")
    if not seconds >= MIN_SECONDS:  # also NaN
        raise SynthError(f"--seconds must be at least {MIN_SECONDS:g}, got {seconds:g}")


def make_stemset(folder: str | Path, tracks: int, seed: int, seconds: float = 10.0,
                 ratios_db: tuple[float, ...] = (-5.0, 0.0, 5.0)) -> list[SynthTrack]:
    """``tracks`` tracks of ``seconds`` under ``folder``, plus ``folder/stemset.csv``; the same seed, the same
    files. Keys are ``s{seed}-{n}``, so sets of different seeds never share a key."""
    check_size(tracks, seconds)
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    made = [make_track(folder, f"s{seed}-{n:04d}", seconds, float(rng.choice(ratios_db)), rng) for n in range(tracks)]
    with (folder / "stemset.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["track", "instruments", "vocals", "voice", "tempo", "ratio_db"])
        for t in made:
            writer.writerow([t.key, f"{t.key}/instruments.wav", f"{t.key}/vocals.wav", t.voice, f"{t.tempo:.1f}",
                             t.ratio_db])
    return made
