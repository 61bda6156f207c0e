"""The shipped voice/music model on recorded music: espeak-ng voices over excerpts of recorded (instrumental)
music from Debian packages, for evaluation only (the model never trained on them).

    apt-get download drascula-music asc-music && for f in *.deb; do dpkg-deb -x $f debs; done
    .venv/bin/python benchmarks/recorded_music_eval.py debs/usr/share/scummvm/drascula/audio \\
        debs/usr/share/games/asc/music --out /tmp/recorded

Each music file gives one 12 s excerpt (from 20 s in, or its start when shorter), downmixed/resampled to
44.1 kHz stereo, with a voice at −5, 0 or +5 dB (cycled); then `stemforge evaluate` scores the shipped model.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemforge.model.shipped import VOICE_MUSIC
from stemforge.training.evaluate import evaluate, render
from stemforge.training.synth import SR, make_track
from stemforge.transforms import AudioError, load_audio, resample, to_model_channels

SECONDS = 12.0


def excerpt(path: Path) -> np.ndarray:
    """12 s of the file as 44.1 kHz stereo float32, from 20 s in (or the start)."""
    wave, rate = load_audio(str(path))
    wave = to_model_channels(wave, "downmix")
    wave = resample(wave, rate, SR) if rate != SR else wave
    need = int(SECONDS * SR)
    start = int(20 * SR) if wave.shape[1] >= int(20 * SR) + need else 0
    part = wave[:, start : start + need]
    return np.pad(part, ((0, 0), (0, need - part.shape[1]))).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=31337)
    args = parser.parse_args(argv)
    files = sorted(p for folder in args.folders for p in folder.iterdir() if p.suffix in (".ogg", ".mp3", ".flac"))
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "stemset.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["track", "instruments", "vocals"])
        for number, path in enumerate(files):
            try:
                music = excerpt(path)
            except AudioError as exc:  # stemforge refuses damaged files; so does this evaluation
                print(f"skipped: {exc}")
                continue
            key = f"{path.stem}-{number:02d}"
            make_track(args.out, key, SECONDS, (-5.0, 0.0, 5.0)[number % 3], rng, music=music)
            writer.writerow([key, f"{key}/instruments.wav", f"{key}/vocals.wav"])
    rows = evaluate(str(VOICE_MUSIC.path), str(args.out / "stemset.csv"), n_fft=VOICE_MUSIC.n_fft,
                    hop_length=VOICE_MUSIC.hop_length, device="cpu")
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
