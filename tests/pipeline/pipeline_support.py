"""Helpers of the pipeline tests: the generated corpus."""

from pathlib import Path

import numpy as np
import soundfile as sf


def write_corpus(folder: Path) -> dict[str, Path]:
    """Sines, noise and a chirp at several rates and channel counts, plus one file that is not audio."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub").mkdir(exist_ok=True)
    sr = 44100
    t = np.arange(int(sr * 3.1)) / sr
    files = {
        "sines": folder / "sines.wav",
        "sub/noise": folder / "sub" / "noise.flac",
        "chirp22k": folder / "chirp22k.wav",
    }
    sines = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t + 0.5)])
    sf.write(files["sines"], sines.T, sr, subtype="FLOAT")
    sf.write(files["sub/noise"], 0.1 * rng.standard_normal((int(sr * 1.7), 2)), sr, subtype="PCM_24")
    t22 = np.arange(int(22050 * 2.3)) / 22050
    sf.write(files["chirp22k"], 0.4 * np.sin(2 * np.pi * (100 * t22 + 1500 * t22**2)), 22050, subtype="PCM_16")
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    return files
