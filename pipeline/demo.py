"""`make demo`: the whole loop on a small generated corpus, start to finish.

1. voice-over-music stems are synthesised (`stemforge synth`: espeak-ng voices, our own music) and mixed by a
   mix run (configs/mix.yaml: gains, remixes, EBEN's low-pass), which also writes each mixture's true stems;
2. those mixtures, plus a few odd files (mono 22 kHz, Ogg, one that is not audio), are separated by the shipped
   voice/music model (configs/demo.yaml, ``model.shipped.VOICE_MUSIC``);
3. the separated vocals are scored against the true ones (SI-SDR, and its improvement over the mixture), and
   the run's HTML report is written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from stemforge.model.shipped import VOICE_MUSIC
from stemforge.config.run import load_config
from stemforge.pipeline.launch import print_summary, run_job
from stemforge.pipeline.report import write_report
from stemforge.pipeline.sinks import run_detail
from stemforge.text import count

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEMO_CONFIG, MIX_CONFIG = CONFIGS / "demo.yaml", CONFIGS / "mix.yaml"
VOICE_SEED = 424242  # never a seed of the shipped model's training or held-out data


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


def make_voice_mixes(root: Path, progress: str = "off") -> Path | None:
    """Synthesised stems mixed by a mix run into ROOT/demo_mixes (None without espeak-ng)."""
    from stemforge.training.synth import SynthError, make_stemset

    try:
        made = make_stemset(root / "demo_stems", 3, VOICE_SEED, seconds=8.0)
    except SynthError as exc:
        print(f"demo: no voice-over-music mixtures ({exc}); the model runs on the other files only")
        return None
    mixes = root / "demo_mixes"
    shutil.rmtree(mixes, ignore_errors=True)
    model = VOICE_MUSIC
    config = load_config(MIX_CONFIG, [f"input.uri={root / 'demo_stems' / 'stemset.csv'}", f"output.uri={mixes}",
                                      f"model.n_fft={model.n_fft}", f"model.hop_length={model.hop_length}",
                                      "output.write_spectrograms=false", "augment.seed=7"])
    code, manifest = run_job(config, [], progress)
    if code != 0 or manifest is None:
        raise RuntimeError("demo: the mix run failed")
    print(f"mixed {count(len(made), 'synthesised voice-over-music track')} into "
          f"{count(manifest['counts']['variants'], 'mixture')} "
          f"with their true stems: {mixes}/stems/")
    return mixes


def score_vocals(mixes: Path, output: Path, tracks: list[str]) -> list[tuple[str, float, float]]:
    """(track, SI-SDR of the separated vocals, SI-SDR of the unprocessed mixture), against the true vocals."""
    from stemforge.training.metrics import si_sdr

    scores = []
    for key in tracks:
        if not key.endswith("/mixture"):
            continue
        truth = mixes / "stems" / key.rsplit("/", 1)[0]
        reference = sf.read(truth / "vocals.flac", dtype="float64")[0]
        estimate = sf.read(output / "stems" / key / "vocals.flac", dtype="float64")[0]
        mixture = sf.read(truth / "mixture.flac", dtype="float64")[0]
        scores.append((key.rsplit("/", 1)[0], si_sdr(reference, estimate), si_sdr(reference, mixture)))
    return scores


def run_demo(workdir: str, progress: str = "off", progress_interval: float | None = None) -> int:
    """Makes the corpora, runs the mix run and configs/demo.yaml with the shipped model into demo_output/,
    prints a summary and the vocals' SI-SDR improvement, and writes the run's HTML report."""
    root = Path(workdir).resolve()
    corpus, output = root / "demo_corpus", root / "demo_output"
    files = make_corpus(corpus)
    print(f"demo corpus: {count(len(files), 'file')} in {corpus} (one is deliberately not audio)")
    mixes = make_voice_mixes(root, progress)
    inputs = [str(corpus)] + ([f"{mixes}/stems/**/mixture.flac"] if mixes else [])
    overrides = [f"input.uri={json.dumps(inputs)}", f"output.uri={output}"]
    overrides += [f"model.{key}={json.dumps(value)}" for key, value in VOICE_MUSIC.config_overrides().items()]
    config = load_config(DEMO_CONFIG, overrides)
    code, manifest = run_job(config, [], progress, progress_interval)
    if manifest is not None:
        print_summary(manifest, config)
    if code == 0 and mixes is not None:
        scores = score_vocals(mixes, output, run_detail(manifest, config).tracks)
        print("vocals of the voice-over-music mixtures, against their true stems (SI-SDR, dB):")
        for key, separated, mixture in scores:
            print(f"  {key:<24} separated {separated:6.2f}   mixture {mixture:6.2f}   "
                  f"improvement {separated - mixture:6.2f}")
        mean = sum(s - m for _, s, m in scores) / max(len(scores), 1)
        print(f"  mean SI-SDR improvement: {mean:.2f} dB (model {VOICE_MUSIC.name}; model/weights/README.md)")
    if code == 0:
        print(f"  report:       {write_report(str(output))}   (open it in a browser)")
    return code
