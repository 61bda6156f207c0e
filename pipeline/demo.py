"""`make demo`: a small generated corpus separated with configs/demo.yaml, start to finish."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.config import load_config
from pipeline.launch import print_summary, run_job
from pipeline.report import write_report

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def _tone_with_beat(sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    chord = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    clicks = np.zeros_like(t)
    clicks[:: sr // 2] = 1.0
    beat = np.convolve(clicks, np.exp(-np.arange(2000) / 200.0) * rng.standard_normal(2000) * 0.3)[: t.size]
    return np.stack([chord + beat, 0.8 * chord + beat])


def make_corpus(folder: Path, seed: int = 0) -> list[Path]:
    """Writes a handful of synthetic tracks (and speech, when espeak-ng is installed)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    sr = 44100
    paths.append(folder / "band" / "chord_and_beat.flac")
    paths[-1].parent.mkdir(exist_ok=True)
    sf.write(paths[-1], _tone_with_beat(sr, 6.0, rng).T, sr, subtype="PCM_24")
    t = np.arange(int(22050 * 4.0)) / 22050
    chirp = 0.4 * np.sin(2 * np.pi * (100 * t + 900 * t**2))
    paths.append(folder / "chirp_mono_22k.wav")
    sf.write(paths[-1], chirp, 22050, subtype="PCM_16")
    paths.append(folder / "noise_bursts.ogg")
    noise = rng.standard_normal((int(48000 * 3.0), 2)) * 0.1 * (np.arange(int(48000 * 3.0))[:, None] // 12000 % 2)
    sf.write(paths[-1], noise, 48000, format="OGG", subtype="VORBIS")
    espeak = shutil.which("espeak-ng")
    if espeak:
        speech = folder / "speech.wav"
        subprocess.run([espeak, "-w", str(speech), "stemforge turns audio corpora into training data"],
                       check=True, capture_output=True)
        paths.append(speech)
    (folder / "not_audio.wav").write_text("this is not audio\n")
    paths.append(folder / "not_audio.wav")
    return paths


def run_demo(workdir: str, progress: str = "off", progress_interval: float | None = None) -> int:
    """Makes demo_corpus/, runs configs/demo.yaml into demo_output/, prints a summary and writes the
    run's HTML report."""
    root = Path(workdir).resolve()
    corpus, output = root / "demo_corpus", root / "demo_output"
    files = make_corpus(corpus)
    print(f"demo corpus: {len(files)} files in {corpus} (one is deliberately not audio)")
    config = load_config(DEMO_CONFIG, [f"input.uri={corpus}", f"output.uri={output}"])
    code, manifest = run_job(config, [], progress, progress_interval)
    if manifest is not None:
        print_summary(manifest, config)
    if code == 0:
        print(f"  report:       {write_report(str(output))}   (open it in a browser)")
    return code
