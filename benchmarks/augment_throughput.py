"""Throughput of the zero-phase biquad low-pass against scipy and audiomentations.

Filters the same float32 stereo signal (10 minutes at 44.1 kHz by default) with

* ``transforms.zero_phase_lowpass`` (EBEN's remove_hf: reflect pad, biquad forward + backward),
* ``transforms.StreamingZeroPhaseLowpass`` (same output, chunked, O(chunk) memory),
* ``scipy.signal.sosfiltfilt`` with the same RBJ biquad as one SOS section,
* ``audiomentations.LowPassFilter(zero_phase=True)`` (12 dB/oct Butterworth, sosfiltfilt inside),

and prints samples per second (frames × channels / wall time, best of ``--repeats``)
as a Markdown table for docs/performance.md.

    .venv/bin/python benchmarks/augment_throughput.py [--minutes 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import scipy
import scipy.signal
from audiomentations import LowPassFilter

from stemforge.transforms import StreamingZeroPhaseLowpass, lowpass_biquad_coefficients, zero_phase_lowpass

SR = 44100


def _best_seconds(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cutoff", type=float, default=4000.0)
    parser.add_argument("--chunk-frames", type=int, default=1 << 18)
    args = parser.parse_args()

    frames = int(args.minutes * 60 * SR)
    x = (np.random.default_rng(0).standard_normal((2, frames)) * 0.1).astype(np.float32)
    b, a = lowpass_biquad_coefficients(SR, args.cutoff, 0.7071)
    sos = np.concatenate([b, a])[None]
    audiomentations_lowpass = LowPassFilter(min_cutoff_freq=args.cutoff, max_cutoff_freq=args.cutoff,
                                            min_rolloff=12, max_rolloff=12, zero_phase=True, p=1.0)

    def streaming() -> None:
        stream = StreamingZeroPhaseLowpass(lambda s, e: x[:, s:e], frames, SR, args.cutoff,
                                           chunk_frames=args.chunk_frames)
        for start in range(0, frames, args.chunk_frames):
            stream.read(start, min(start + args.chunk_frames, frames))

    candidates: list[tuple[str, Callable[[], object]]] = [
        ("transforms.zero_phase_lowpass", lambda: zero_phase_lowpass(x, SR, args.cutoff)),
        (f"transforms.StreamingZeroPhaseLowpass (chunk {args.chunk_frames})", streaming),
        ("scipy.signal.sosfiltfilt (same biquad, float32 in)", lambda: scipy.signal.sosfiltfilt(sos, x, axis=-1)),
        ("audiomentations.LowPassFilter(zero_phase=True)", lambda: audiomentations_lowpass(x, SR)),
    ]
    print(f"{args.minutes:g} min stereo float32 at {SR} Hz = {2 * frames:,} samples; best of {args.repeats}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print()
    print("| implementation | seconds | Msamples/s | × real time |")
    print("| --- | ---: | ---: | ---: |")
    for name, run in candidates:
        seconds = _best_seconds(run, args.repeats)
        print(f"| {name} | {seconds:.3f} | {2 * frames / seconds / 1e6:.1f} | {frames / SR / seconds:.0f} |")


if __name__ == "__main__":
    main()
