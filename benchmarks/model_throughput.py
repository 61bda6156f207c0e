"""CascadedNet inference throughput: InferenceModel against vocal-remover's plain loop, same run.

The baseline is what vocal-remover's ``inference.py`` does: the float32 eval
model, batches of 4 windows, ``torch.no_grad()``, one ``predict_mask`` per
batch, results copied back to numpy. Every optimised configuration runs on
the same windows, interleaved with the baseline in each repeat (so drifting
load on a shared machine hits both alike), and is compared to the baseline's
masks. Throughput is reported as windows/s and as seconds of audio per
wall-second (each window yields ``cropsize - 2*offset`` frames of ``hop``
samples at ``sr``). On CUDA the achieved FLOP/s are also given as a fraction
of the device's peak for the precision used.

    .venv/bin/python benchmarks/model_throughput.py                   # cpu/auto, defaults
    .venv/bin/python benchmarks/model_throughput.py --device cuda --precisions fp32 fp16 bf16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemforge.model import CascadedNet, InferenceModel, load_checkpoint, resolve_device

# Dense tensor-core peaks (TFLOP/s) by device-name fragment, for the fraction-of-peak column. fp32
# convolutions run as TF32 by default (torch.backends.cudnn.allow_tf32), so "fp32" uses the TF32 peak.
GPU_PEAK_TFLOPS = {
    "H200": {"fp32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "H100": {"fp32": 494.7, "fp16": 989.4, "bf16": 989.4},
    "A100": {"fp32": 156.0, "fp16": 312.0, "bf16": 312.0},
    "L40S": {"fp32": 183.0, "fp16": 362.0, "bf16": 362.0},
    "L4": {"fp32": 60.0, "fp16": 121.0, "bf16": 121.0},
    "A10": {"fp32": 62.5, "fp16": 125.0, "bf16": 125.0},
    "V100": {"fp32": 15.7, "fp16": 125.0, "bf16": 15.7},
}


@dataclass
class Result:
    name: str
    precision: str
    batch_size: int
    seconds: float
    windows_per_s: float
    audio_s_per_s: float
    speedup: float
    max_mask_diff: float
    tflops: float
    peak_fraction: float | None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def baseline_loop(net: torch.nn.Module, windows: np.ndarray, device: torch.device, batch_size: int = 4) -> np.ndarray:
    """vocal-remover's loop: float32 eval model, no_grad, batch by batch, back to numpy."""
    masks = []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(windows[start : start + batch_size]).to(device)
            masks.append(net.predict_mask(batch).detach().cpu().numpy())
    return np.concatenate(masks)


def optimised_loop(model: InferenceModel, windows: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([model(windows[s : s + batch_size]) for s in range(0, len(windows), batch_size)])


def flops_per_window(net: torch.nn.Module, n_bins: int, cropsize: int, device: torch.device) -> float:
    """Counted, not estimated: one window through the eval net under FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net.predict_mask(torch.rand(1, 2, n_bins, cropsize, device=device))
    return float(counter.get_total_flops())


def machine_description(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} logical cores, {threads} torch threads, load avg {load:.2f} "
        f"(torch {torch.__version__}, {device.type})"
    )


def peak_tflops(device: torch.device, precision: str, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in GPU_PEAK_TFLOPS.items():
        if fragment in name:
            return peaks[precision]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", help="load real weights (otherwise random weights, same speed)")
    parser.add_argument("--n-fft", type=int, default=2048)
    parser.add_argument("--nout", type=int, default=32)
    parser.add_argument("--nout-lstm", type=int, default=128)
    parser.add_argument("--cropsize", type=int, default=256)
    parser.add_argument("--windows", type=int, default=8, help="windows per timed pass")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--precisions", nargs="+", default=None, help="default: fp32 on cpu, fp32 fp16 bf16 on cuda")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per configuration (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--sr", type=int, default=44100)
    parser.add_argument("--hop", type=int, default=1024)
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for the fraction column")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precisions = args.precisions or (["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32"])

    torch.manual_seed(0)
    if args.checkpoint:
        net = load_checkpoint(args.checkpoint, n_fft=args.n_fft, device=device)
    else:
        net = CascadedNet(args.n_fft, args.nout, args.nout_lstm)
        with torch.no_grad():  # trained-like BatchNorm statistics, so folding is really exercised
            for m in net.modules():
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        net = net.to(device).eval()
    n_bins = args.n_fft // 2 + 1
    roi = args.cropsize - 2 * net.offset
    audio_per_window = roi * args.hop / args.sr
    rng = np.random.default_rng(0)
    windows = (rng.random((args.windows, 2, n_bins, args.cropsize)) ** 4).astype(np.float32)

    print(f"machine: {machine_description(device, torch.get_num_threads())}")
    flops = flops_per_window(net, n_bins, args.cropsize, device)
    print(
        f"model: CascadedNet({args.n_fft}, {net.out.weight.shape[1]}, "
        f"{net.stg3_full_band_net.lstm_dec2.dense[0].in_features}), {flops / 1e9:.1f} GFLOP per "
        f"{args.cropsize}-frame window; {args.windows} windows per pass, {args.repeats} passes, median"
    )

    configs = [(p, b) for p in precisions for b in args.batch_sizes]
    models = {p: InferenceModel(net, device=device, precision=p, optimize=True) for p in precisions}
    # Warm-up (allocator, oneDNN primitive caches, cudnn.benchmark autotuning) outside the timings.
    reference = baseline_loop(net, windows, device)
    for precision, batch in configs:
        optimised_loop(models[precision], windows[:batch], batch)

    times: dict[tuple[str, int], list[float]] = {c: [] for c in [("baseline", 4), *configs]}
    outputs: dict[tuple[str, int], np.ndarray] = {}
    for _ in range(args.repeats):
        for key, samples in times.items():
            _sync(device)
            start = time.perf_counter()
            if key[0] == "baseline":
                outputs[key] = baseline_loop(net, windows, device)
            else:
                outputs[key] = optimised_loop(models[key[0]], windows, key[1])
            _sync(device)
            samples.append(time.perf_counter() - start)

    base_seconds = statistics.median(times[("baseline", 4)])
    results = []
    for (name, batch), samples in times.items():
        seconds = statistics.median(samples)
        rate = args.windows / seconds
        precision = "fp32" if name == "baseline" else name
        peak = peak_tflops(device, precision, args.peak_tflops)
        tflops = rate * flops / 1e12
        results.append(
            Result(
                name="baseline (vocal-remover loop)" if name == "baseline" else "InferenceModel",
                precision=precision,
                batch_size=batch,
                seconds=seconds,
                windows_per_s=rate,
                audio_s_per_s=rate * audio_per_window,
                speedup=base_seconds / seconds,
                max_mask_diff=float(np.abs(outputs[(name, batch)] - reference).max()),
                tflops=tflops,
                peak_fraction=None if peak is None else tflops / peak,
            )
        )

    print()
    print("| configuration | precision | batch | windows/s | audio s per s | vs baseline | max mask diff | TFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        peak_text = "n/a" if r.peak_fraction is None else f"{100 * r.peak_fraction:.1f} %"
        print(
            f"| {r.name} | {r.precision} | {r.batch_size} | {r.windows_per_s:.3f} | {r.audio_s_per_s:.2f} | "
            f"{r.speedup:.2f}x | {r.max_mask_diff:.1e} | {r.tflops:.3f} | {peak_text} |"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
