"""Whole-track separation on a device: the device path (model.DeviceSeparator: STFT, masking and ISTFT in
torch on the device) against the host path (model.Separator: numpy STFT/ISTFT, the network on the device),
per precision, with each precision's stems compared to fp32's, and the network's share of the device's peak.

Ready to run unchanged on a GPU machine; on a CPU it runs too (a smoke run with a small model):

    .venv/bin/python benchmarks/gpu.py                                   # CUDA: 2048/32/128, fp32 fp16 bf16
    .venv/bin/python benchmarks/gpu.py --device cpu --seconds 10 --nout 8 --nout-lstm 16 --precisions fp32

With ``--pipeline-files N`` it then measures end to end: `stemforge run --config configs/separate.yaml` (FLAC
stems plus float16 shards) on N generated files, once with the spectrograms on the host (numpy) and once per
precision on the device (``model.spectra=device``), ``--workers`` SDK processes sharing one model on the device
(``model.share_across_processes``), each run in a fresh process; it prints × real time and each run's stems
against the fp32 host run's (mask agreement, as SNR):

    .venv/bin/python benchmarks/gpu.py --seconds 60 --pipeline-files 16 --pipeline-seconds 180 --workers 16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import soundfile as sf
from model_throughput import flops_per_window, machine_description, peak_tflops
from pipeline_throughput import make_music

from stemforge.model import CascadedNet, InferenceModel, Separator, resolve_device, save_checkpoint
from stemforge.model.device_separator import DeviceSeparator


def _music(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Chords over a noise floor, stereo float32: real-sounding enough for timing (the network's cost does
    not depend on the content)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, (2, 1))) for f in (110, 165, 220, 330, 440))
    return (0.8 * (wave + 0.02 * rng.standard_normal((2, t.size))) / 1.2).astype(np.float32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run, device: torch.device, repeats: int) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    times, out = [], None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        out = run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _snr(a: np.ndarray, b: np.ndarray) -> float:
    noise = float(np.sum((a.astype(np.float64) - b) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(b.astype(np.float64) ** 2) / noise))


def pipeline_runs(net: CascadedNet, device: torch.device, precisions: list[str], args: argparse.Namespace) -> list:
    """End to end: `stemforge run` with separate.yaml, spectrograms on the host, then on the device per precision."""
    repo = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "music").mkdir()
        make_music(root / "music", args.pipeline_files, args.pipeline_seconds)
        checkpoint = root / "model.pth"
        save_checkpoint(net, str(checkpoint))
        audio = args.pipeline_files * args.pipeline_seconds
        reference = None
        for spectra, precision in [("host", "fp32")] + [("device", p) for p in precisions]:
            out = root / f"out-{spectra}-{precision}"
            settings = {"model.device": device.type, "model.precision": precision, "model.spectra": spectra,
                        "model.batch_size": args.batch_size, "model.share_across_processes": args.workers > 1}
            command = [sys.executable, "-m", "stemforge", "run", "--config", str(repo / "configs" / "separate.yaml"),
                       "--input", str(root / "music"), "--output", str(out), "--checkpoint", str(checkpoint),
                       "--quiet", *(x for k, v in settings.items() for x in ("--set", f"{k}={str(v).lower()}")),
                       "--direct_num_workers", str(args.workers)]
            if args.workers > 1:
                command += ["--direct_running_mode", "multi_processing"]
            start = time.perf_counter()
            subprocess.run(command, check=True, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
            seconds = time.perf_counter() - start
            stems = {str(p.relative_to(out)): sf.read(p, dtype="float32")[0] for p in (out / "stems").rglob("*.flac")}
            reference = reference or stems
            row = {"pipeline": f"spectra={spectra}", "precision": precision, "workers": args.workers,
                   "seconds": round(seconds, 2), "x_real_time": round(audio / seconds, 1),
                   "stems_snr_vs_fp32_host_db": round(min(_snr(stems[k].T, reference[k].T) for k in reference), 1)}
            rows.append(row)
            print(json.dumps(row))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-fft", type=int, default=2048)
    parser.add_argument("--hop", type=int, default=1024)
    parser.add_argument("--nout", type=int, default=32)
    parser.add_argument("--nout-lstm", type=int, default=128)
    parser.add_argument("--cropsize", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=600.0, help="track length")
    parser.add_argument("--precisions", nargs="+", default=None, help="default: fp32 on cpu, all three on cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--pipeline-files", type=int, default=0, help="end to end on this many files (0: skip)")
    parser.add_argument("--pipeline-seconds", type=float, default=180.0, help="length of each generated file")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="SDK processes of the end-to-end runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    precisions = args.precisions or (["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32"])
    torch.manual_seed(0)
    net = CascadedNet(args.n_fft, nout=args.nout, nout_lstm=args.nout_lstm).eval()
    wave = _music(args.seconds, 44100)
    flops = flops_per_window(net.to(device), args.n_fft // 2 + 1, args.cropsize, device)
    print(f"machine: {machine_description(device, torch.get_num_threads())}")
    print(f"model {args.n_fft}/{args.nout}/{args.nout_lstm}, {args.seconds:.0f} s track, batch {args.batch_size}, "
          f"{flops / 1e9:.1f} GFLOP per window")
    results, reference = [], None
    for precision in precisions:
        model = InferenceModel(net, device=device, precision=precision)
        host = Separator(model, batch_size=args.batch_size, cropsize=args.cropsize)
        on_device = DeviceSeparator(model, batch_size=args.batch_size, cropsize=args.cropsize)
        on_device.separate_audio(wave[:, : 44100 * 5], args.hop)  # warm-up (cudnn autotuning)
        for name, separator in (("host path", host), ("device path", on_device)):
            seconds, stems = _timed(lambda s=separator: s.separate_audio(wave, args.hop), device, args.repeats)
            if reference is None:
                reference = stems
            windows = -(-(wave.shape[1] // args.hop + 1) // (args.cropsize - 2 * model.offset))
            peak = peak_tflops(device, precision, args.peak_tflops)
            achieved = flops * windows / seconds / 1e12
            row = {"path": name, "precision": precision, "seconds": round(seconds, 3),
                   "x_real_time": round(args.seconds / seconds, 1),
                   "snr_vs_fp32_host_db": round(min(_snr(a, b) for a, b in zip(stems, reference)), 1),
                   "model_tflops": round(achieved, 2),
                   "peak_fraction": round(achieved / peak, 4) if peak else None}
            results.append(row)
            print(json.dumps(row))
    if args.pipeline_files:
        results += pipeline_runs(net, device, precisions, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
