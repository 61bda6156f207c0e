"""Peak memory of `stemforge run` against track length: it should not grow with the track.

Runs the CLI in a subprocess with ``configs/separate.yaml`` (n_fft 2048, hop 1024, batch 4, FLAC stems,
float16 rows) and a random-weight 2048/8/32 checkpoint (separate.yaml's spectrogram sizes; fewer channels
only make the network cheaper, not the data around it larger or smaller) on one generated track of each
length, written block by block as a FLAC. Every 50 ms it samples the whole process tree's resident memory
from /proc: anonymous (RssAnon: heap, arrays, Arrow's pool), shared (RssShmem) and file-backed (RssFile:
mapped files and libraries, which the kernel can drop) — `top` shows their sum.

    .venv/bin/python benchmarks/track_memory.py --minutes 1 60
    .venv/bin/python benchmarks/track_memory.py --minutes 1 8 --tiny     # the old n_fft 512 check, quick
    .venv/bin/python benchmarks/track_memory.py --minutes 1 8 --uvr      # a UVR model on 4band_v2
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

from stemforge.model import CascadedASPPNet, CascadedNet, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = {"model": {"n_fft": 512, "hop_length": 256, "cropsize": 256, "batch_size": 8},
        "output": {"segment_frames": 256}, "run": {"chunk_seconds": 30}}
FIELDS = ("RssAnon", "RssShmem", "RssFile")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (SDK worker processes included)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            children = []
        queue.extend(int(c) for c in children)
    return found


def resident_kib(pids: list[int]) -> dict[str, int]:
    """RssAnon, RssShmem and RssFile in KiB summed over ``pids`` (exited ones count 0)."""
    total = dict.fromkeys(FIELDS, 0)
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key = line.split(":")[0]
                if key in total:
                    total[key] += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def write_track(path: Path, minutes: float, sr: int = 44100) -> None:
    """A long stereo track of chords, bass and noise bursts, written one second at a time."""
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    with sf.SoundFile(path, "w", samplerate=sr, channels=2, subtype="PCM_16") as handle:
        for _ in range(int(minutes * 60)):
            root = rng.uniform(100, 400)
            chord = sum(0.08 * np.sin(2 * np.pi * root * r * t) for r in (1, 1.25, 1.5, 2))
            bass = 0.15 * np.sin(2 * np.pi * root / 2 * t)
            hits = 0.05 * rng.standard_normal(sr) * (np.sin(2 * np.pi * 4 * t) > 0.9)
            handle.write(np.stack([chord + bass + hits, chord + bass - hits], axis=1))


def measure(folder: Path, track: Path, config: Path, ckpt: Path) -> tuple[dict[str, float], float]:
    """(peak MiB of each RSS kind and of anon+shmem, wall seconds) of one `stemforge run` over ``track``."""
    command = [sys.executable, "-m", "stemforge", "run", "--config", str(config), "--input", str(track),
               "--output", str(folder / f"out-{track.stem}"), "--checkpoint", str(ckpt)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks = dict.fromkeys((*FIELDS, "anon+shmem", "total"), 0)
    while process.poll() is None:
        now = resident_kib(tree(process.pid))
        now["anon+shmem"] = now["RssAnon"] + now["RssShmem"]
        now["total"] = now["anon+shmem"] + now["RssFile"]
        peaks = {k: max(v, now[k]) for k, v in peaks.items()}
        time.sleep(0.05)
    if process.returncode:
        raise RuntimeError(f"stemforge run failed on {track}")
    return {k: v / 1024 for k, v in peaks.items()}, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 60.0])
    parser.add_argument("--tiny", action="store_true", help="n_fft 512 model and rows (the quick old check)")
    parser.add_argument("--uvr", action="store_true",
                        help="UVR's multi-band path: a random CascadedASPPNet 31191 on the 4band_v2 table")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config_data = yaml.safe_load((ROOT / "configs" / "separate.yaml").read_text())
        n_fft = 2048
        if args.tiny:
            n_fft = 512
            for section, values in TINY.items():
                config_data[section].update(values)
        config = folder / "bench.yaml"
        ckpt = folder / "net.pth"
        if args.uvr:
            config_data["model"].update(band_params="4band_v2", aggression=5)
            save_checkpoint(CascadedASPPNet(1344, 31191), str(ckpt))
        else:
            save_checkpoint(CascadedNet(n_fft, 8, 32 if n_fft == 2048 else 16), str(ckpt))
        config.write_text(yaml.safe_dump(config_data))
        print(f"{'track':>10s} {'anon':>7s} {'shmem':>7s} {'file':>7s} {'anon+shmem':>11s} {'sum':>7s} {'wall':>8s}"
              "   (peak MiB of the process tree)")
        for minutes in args.minutes:
            track = folder / f"track_{minutes:g}min.flac"
            write_track(track, minutes)
            peak, wall = measure(folder, track, config, ckpt)
            print(f"{minutes:6.1f} min {peak['RssAnon']:7.0f} {peak['RssShmem']:7.0f} {peak['RssFile']:7.0f} "
                  f"{peak['anon+shmem']:11.0f} {peak['total']:7.0f} {wall:7.1f} s", flush=True)


if __name__ == "__main__":
    main()
