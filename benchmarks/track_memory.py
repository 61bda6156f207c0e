"""Peak memory of `stemforge run` against track length: it should not grow with the track.

Runs the CLI in a subprocess on one generated track of each length (tiny random-weight model,
n_fft 512) and samples the process's anonymous resident memory (RssAnon: heap and arrays, not
the page cache behind memory-mapped scratch files) every 20 ms.

    .venv/bin/python benchmarks/track_memory.py --minutes 1 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from model import CascadedNet, save_checkpoint

CONFIG = {
    "model": {"n_fft": 512, "hop_length": 256, "cropsize": 256, "batch_size": 8, "device": "cpu"},
    "output": {"segment_frames": 256},
    "run": {"chunk_seconds": 30},
}


def rss_anon_kib(pid: int) -> int:
    """Anonymous resident memory of a process in KiB (0 once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def write_track(path: Path, minutes: float, sr: int = 44100) -> None:
    """A long stereo track written block by block (never held whole)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, subtype="PCM_16") as handle:
        for _ in range(int(minutes * 60)):
            t = np.arange(sr) / sr
            tone = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t)
            handle.write(np.stack([tone, tone], axis=1) + 0.02 * rng.standard_normal((sr, 2)))


def peak_memory(folder: Path, track: Path, ckpt: Path) -> tuple[float, float]:
    """(peak RssAnon in MiB, wall seconds) of one `stemforge run` over `track`."""
    config = folder / "bench.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    command = [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--input", str(track),
               "--output", str(folder / f"out-{track.stem}"), "--checkpoint", str(ckpt)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, rss_anon_kib(process.pid))
        time.sleep(0.02)
    if process.returncode:
        raise RuntimeError(f"stemforge run failed on {track}")
    return peak / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 8.0])
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        ckpt = folder / "tiny.pth"
        save_checkpoint(CascadedNet(512, 8, 16), str(ckpt))
        print(f"{'track':>10s} {'peak RssAnon':>14s} {'wall':>8s}")
        for minutes in args.minutes:
            track = folder / f"track_{minutes:g}min.wav"
            write_track(track, minutes)
            peak, wall = peak_memory(folder, track, ckpt)
            print(f"{minutes:8.1f} min {peak:11.0f} MiB {wall:7.1f} s")


if __name__ == "__main__":
    main()
