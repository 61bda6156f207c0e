"""End-to-end throughput: `stemforge run` (configs/separate.yaml) against vocal-remover's own loop.

Both sides separate the same generated music with the same random-weight checkpoint on the CPU:
  baseline  per file: decode, librosa STFT, batch-4 windows through the plain network, ISTFT, write;
  pipeline  `stemforge run` on the DirectRunner, writing stems and Parquet shards;
  model     the pipeline's InferenceModel alone on the same number of windows (the ceiling), run just
            before and just after the pipeline and averaged, so a drift in machine speed cancels.
Prints seconds of audio per wall-second for each, the pipeline/baseline ratio (target ≥ 1.3) and
pipeline/model-only (target ≥ 0.9, i.e. Beam, I/O and STFT overhead ≤ 10 %).

    .venv/bin/python benchmarks/pipeline_throughput.py --seconds 30 --files 4
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from stemforge.model import CascadedNet, InferenceModel, WindowGrid, save_checkpoint
from stemforge.pipeline.cli import main as stemforge

REPO = Path(__file__).resolve().parent.parent
N_FFT, HOP, CROPSIZE, BATCH = 2048, 1024, 256, 4


def make_music(folder: Path, files: int, seconds: float, sr: int = 44100) -> list[Path]:
    """Chords, a bass line and noisy percussion: spectrally busy like music, reproducible."""
    rng = np.random.default_rng(0)
    paths = []
    for n in range(files):
        t = np.arange(int(sr * seconds)) / sr
        notes = 110 * 2 ** (rng.integers(0, 24, size=int(seconds * 2) + 1) / 12)
        bass = 0.2 * np.sin(2 * np.pi * notes[(t * 2).astype(int)] * t)
        chord = sum(0.08 * np.sin(2 * np.pi * f * (n + 1) * t) for f in (261.6, 329.6, 392.0))
        hits = np.zeros_like(t)
        hits[:: sr // 4] = 1.0
        drums = np.convolve(hits, rng.standard_normal(3000) * np.exp(-np.arange(3000) / 300), "same") * 0.2
        wave = np.stack([bass + chord + drums, bass + 0.7 * chord + drums]).astype(np.float32)
        paths.append(folder / f"track{n}.flac")
        sf.write(paths[-1], wave.T, sr, subtype="PCM_24")
    return paths


def baseline(paths: list[Path], net: CascadedNet, out: Path) -> float:
    """vocal-remover's inference.py, as it is: numpy padding, batch-4 loop, no optimisation."""
    start = time.perf_counter()
    net.eval()
    for path in paths:
        wave, sr = sf.read(path, dtype="float32", always_2d=True)
        wave = wave.T
        spec = np.stack([librosa.stft(c, n_fft=N_FFT, hop_length=HOP) for c in wave])
        grid = WindowGrid(spec.shape[2], CROPSIZE, net.offset)
        padded = np.pad(spec, ((0, 0), (0, 0), (grid.pad_left, grid.pad_right)))
        padded /= np.abs(spec).max()
        windows = np.asarray([padded[:, :, i * grid.roi : i * grid.roi + CROPSIZE] for i in range(grid.num_windows)])
        masks = []
        with torch.no_grad():
            for i in range(0, len(windows), BATCH):
                batch = torch.from_numpy(np.abs(windows[i : i + BATCH]))
                masks.append(np.concatenate(net.predict_mask(batch).numpy(), axis=2))
        mask = np.concatenate(masks, axis=2)[:, :, : spec.shape[2]]
        first = spec * mask
        for name, part in (("instruments", first), ("vocals", spec - first)):
            audio = np.stack([librosa.istft(c, hop_length=HOP, n_fft=N_FFT, length=wave.shape[1]) for c in part])
            sf.write(out / f"{path.stem}_{name}.flac", audio.T, sr, subtype="PCM_24")
    return time.perf_counter() - start


def model_only(net: CascadedNet, windows: int) -> float:
    """The pipeline's InferenceModel on `windows` windows at the pipeline's batch size."""
    model = InferenceModel(net, device="cpu")
    batch = np.random.default_rng(0).random((BATCH, 2, N_FFT // 2 + 1, CROPSIZE), dtype=np.float32)
    model(batch)
    start = time.perf_counter()
    for first in range(0, windows, BATCH):
        model(batch[: min(BATCH, windows - first)])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each generated file")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = CascadedNet(N_FFT, 32, 128).eval()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "music").mkdir()
        (root / "baseline").mkdir()
        paths = make_music(root / "music", args.files, args.seconds)
        save_checkpoint(net, str(root / "ckpt.pth"))
        audio = args.files * args.seconds
        frames = 1 + int(args.seconds * 44100) // HOP
        windows = len(paths) * len(WindowGrid(frames, CROPSIZE, net.offset).contributing())
        t_base = baseline(paths, net, root / "baseline")
        t_model_before = model_only(net, windows)
        start = time.perf_counter()
        code = stemforge(["run", "--config", str(REPO / "configs" / "separate.yaml"), "--input", str(root / "music"),
                          "--output", str(root / "out"), "--checkpoint", str(root / "ckpt.pth"),
                          "--set", "model.device=cpu", "--set", f"model.batch_size={BATCH}"])
        t_pipe = time.perf_counter() - start
        assert code == 0, "stemforge run failed"
        t_model_after = model_only(net, windows)
    # model-only runs just before and just after the pipeline: their mean cancels a drift in machine speed
    t_model = (t_model_before + t_model_after) / 2
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads")
    print(f"audio: {args.files} files x {args.seconds:.0f} s = {audio:.0f} s, {windows} windows of {CROPSIZE} frames")
    print(f"model only before / after the pipeline: {t_model_before:.1f} s / {t_model_after:.1f} s")
    for name, seconds in (("baseline (vocal-remover loop)", t_base), ("stemforge run", t_pipe),
                          ("model only (InferenceModel)", t_model)):
        print(f"{name:32s} {seconds:8.1f} s wall  {audio / seconds:6.2f} s audio/s  {windows / seconds:6.2f} windows/s")
    print(f"pipeline / baseline:   {t_base / t_pipe:.2f}x  (target >= 1.3)")
    print(f"pipeline / model only: {t_model / t_pipe:.2f}   (target >= 0.9)")


if __name__ == "__main__":
    main()
