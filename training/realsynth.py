"""Stem sets from recorded sources (`stemforge synth-real`): real voices and recorded music from Debian packages
(:mod:`training.sources`), with synthetic voices (espeak-ng, Flite, Festival) and synthesised music mixed in,
the voices augmented (:mod:`training.voice_fx`). Written like `stemforge synth`'s sets:
``{track}/instruments.wav`` and ``{track}/vocals.wav`` plus ``stemset.csv``, which also names each track's
source files and their packages, and ``sources.json``: every package's copyright file, its sha256 and the
licences it declares. The same seed, the same files."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from stemforge.training import sources as src
from stemforge.training.synth import SR, VOICES, WORDS, SynthError, check_size, espeak_voice, make_track
from stemforge.training.voice_fx import augment_voice
from stemforge.transforms import resample

# Shares of voice kinds and of recorded music on the training side; held-out sets use real voices and
# recorded music only.
TRAIN_VOICES = {"klettres": 0.4, "fillets": 0.25, "tts": 0.15, "espeak": 0.2}
TRAIN_RECORDED_MUSIC = 0.75
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")
FIELDS = ("track", "instruments", "vocals", "voice", "ratio_db", "voice_files", "music_file", "music_offset_s",
          "augment", "packages")


def read_clip(path: str, start_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """``seconds`` of ``path`` from ``start_s`` (all of it when None), float32 ``[channels, n]`` at 44.1 kHz."""
    with sf.SoundFile(path) as handle:
        rate = handle.samplerate
        handle.seek(int(start_s * rate))
        frames = -1 if seconds is None else int(seconds * rate) + 1
        wave = handle.read(frames, dtype="float32", always_2d=True).T
    if wave.shape[1] == 0:
        raise ValueError(f"{path}: no audio at {start_s:.1f} s")
    return resample(wave, rate, SR) if rate != SR else wave


def _tts(text: str, voice: str) -> np.ndarray:
    """Flite (``flite:NAME``) or Festival (``festival:NAME``) saying ``text``, mono at 44.1 kHz."""
    engine, name = voice.split(":", 1)
    tool = shutil.which("flite" if engine == "flite" else "text2wave")
    if tool is None:
        raise SynthError(f"{engine} is not installed (Debian: apt-get install flite festival festvox-kallpc16k)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "voice.wav"
        if engine == "flite":
            subprocess.run([tool, "-voice", name, "-t", text, "-o", str(path)], check=True, capture_output=True,
                           timeout=120)
        else:
            subprocess.run([tool, "-eval", f"(voice_{name})", "-o", str(path)], input=text.encode(), check=True,
                           capture_output=True, timeout=120)
        return read_clip(str(path)).mean(axis=0)


def _sequence(samples: int, clip: Callable[[], tuple[np.ndarray, str]], rng: np.random.Generator,
              gap: tuple[float, float]) -> tuple[np.ndarray, list[str]]:
    """Clips one after another with pauses, each at the same loudness (±3 dB), until ``samples`` are filled."""
    out, used = np.zeros(samples, np.float32), []
    at, silent = int(rng.uniform(0.1, 0.8) * SR), 0
    while at < samples - SR // 4:
        wave, name = clip()
        rms = float(np.sqrt(np.mean(wave**2))) if wave.size else 0.0
        if rms < 1e-5:
            silent += 1
            if silent > 20:
                raise SynthError(f"20 silent clips in a row (the last: {name or 'a synthetic phrase'})")
            continue
        wave = wave[: samples - at] * (0.1 / rms * 10 ** (rng.uniform(-3, 3) / 20))
        out[at: at + wave.size] += wave
        used.append(name)
        at += wave.size + int(rng.uniform(*gap) * SR)
    return out, used


def voice_track(kind: str, samples: int, pool: list[src.Source], rng: np.random.Generator
                ) -> tuple[np.ndarray, str, list[str]]:
    """A voice of ``kind`` (klettres, fillets, tts, espeak) filling ``samples``: mono, its speaker's name and
    the recorded files used (none for synthetic voices)."""
    if kind in ("klettres", "fillets"):
        speakers = sorted({s.speaker for s in pool if s.package.startswith(kind)})
        if not speakers:
            raise SynthError(f"no {kind} voices are installed (Debian: apt-get install {kind}-data)")
        speaker = str(rng.choice(speakers))
        files = [s.path for s in pool if s.speaker == speaker]

        def clip() -> tuple[np.ndarray, str]:
            path = str(rng.choice(files))
            return read_clip(path).mean(axis=0), path

        wave, used = _sequence(samples, clip, rng, (0.05, 0.7) if kind == "klettres" else (0.1, 0.9))
        return wave, speaker, used
    if kind == "tts":
        voice = (f"flite:{rng.choice(FLITE_VOICES)}" if rng.random() < 0.6 else
                 f"festival:{rng.choice(FESTIVAL_VOICES)}")
        speak: Callable[[str], np.ndarray] = lambda text: _tts(text, voice)  # noqa: E731
    else:
        voice = str(rng.choice(VOICES))
        rate, pitch = int(rng.integers(110, 210)), int(rng.integers(20, 80))
        speak = lambda text: espeak_voice(text, voice, rate, pitch)  # noqa: E731
    wave, _ = _sequence(samples, lambda: (speak(" ".join(rng.choice(WORDS, int(rng.integers(3, 9))))), ""), rng,
                        (0.1, 0.9))
    return wave, voice, []


def music_excerpt(pool: list[src.Source], seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, src.Source,
                                                                                                  float]:
    """``seconds`` of a random file of ``pool`` at a random offset, stereo 44.1 kHz; near-silent excerpts are
    drawn again (up to 8 times)."""
    for _ in range(8):
        chosen = pool[int(rng.integers(len(pool)))]
        length = sf.info(chosen.path).duration
        start = float(rng.uniform(0, max(length - seconds, 0.0)))
        wave = read_clip(chosen.path, start, seconds)
        wave = np.repeat(wave, 2, axis=0) if wave.shape[0] == 1 else wave[:2]
        wave = np.pad(wave, ((0, 0), (0, max(0, int(seconds * SR) - wave.shape[1]))))[:, : int(seconds * SR)]
        if float(np.sqrt(np.mean(wave**2))) > 0.01:
            return wave.astype(np.float32), chosen, start
    return wave.astype(np.float32), chosen, start


def make_real_stemset(folder: str | Path, tracks: int, seed: int, split: src.Split, seconds: float = 12.0,
                      ratios_db: tuple[float, ...] = (-5.0, 0.0, 5.0),
                      progress: Callable[[int, int], None] | None = None, catalogue: src.Catalogue = src.DEBIAN,
                      voice_kinds: dict[str, float] | None = None) -> list[dict[str, str]]:
    """``tracks`` tracks under ``folder`` from ``split``'s sources, plus ``stemset.csv`` and ``sources.json``.
    Track ``n`` gets the ratio ``ratios_db[n % len]``; keys are ``r{seed}-{n}``. ``voice_kinds`` (shares of
    klettres, fillets, tts, espeak) replaces the split's default mix of voices."""
    check_size(tracks, seconds)
    folder = Path(folder)
    voices, music = catalogue.voices(split), catalogue.music(split)
    missing = catalogue.missing_packages(split)
    if missing:
        raise SynthError(f"the {split} sources need packages that are not installed: {', '.join(missing)} "
                         f"(Debian: apt-get install {' '.join(missing)})")
    rng = np.random.default_rng(seed)
    kinds = voice_kinds or (TRAIN_VOICES if split == "train" else {"klettres": 1.0})
    samples = int(seconds * SR)
    rows, packages = [], set()
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(tracks):
        kind = str(rng.choice(list(kinds), p=list(kinds.values())))
        voice, speaker, used = voice_track(kind, samples, voices, rng)
        voice, applied = augment_voice(voice, SR, rng) if split == "train" else (voice, [])
        voice = np.pad(voice, (0, max(0, samples - voice.size)))[:samples]
        recorded = split == "heldout" or rng.random() < TRAIN_RECORDED_MUSIC
        excerpt, chosen, start = music_excerpt(music, seconds, rng) if recorded else (None, None, 0.0)
        key, ratio = f"r{seed}-{n:04d}", ratios_db[n % len(ratios_db)]
        make_track(folder, key, seconds, ratio, rng, music=excerpt, voice=(voice, speaker))
        names = {s.package for s in voices if s.path in set(used)} | ({chosen.package} if chosen else set())
        packages |= names
        rows.append({"track": key, "instruments": f"{key}/instruments.wav", "vocals": f"{key}/vocals.wav",
                     "voice": speaker, "ratio_db": str(ratio), "voice_files": json.dumps(sorted(set(used))),
                     "music_file": json.dumps([chosen.path] if chosen else []), "music_offset_s": f"{start:.2f}",
                     "augment": "; ".join(applied), "packages": "; ".join(sorted(names))})
        if progress is not None:
            progress(n + 1, tracks)
    with (folder / "stemset.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    licences = {p: catalogue.licence(p).__dict__ for p in sorted(packages)}
    (folder / "sources.json").write_text(json.dumps({"split": split, "seed": seed, "tracks": tracks,
                                                     "packages": licences}, indent=1) + "\n")
    return rows
