"""The CPU side of a separation run: seconds of audio per CPU-second, net of the run's fixed start-up.

`stemforge run --config configs/separate.yaml` (FLAC stems plus float16 shards) with a near-free
CascadedNet (2048 / nout 4 / nout_lstm 8, random weights), so that what is measured is everything around
the network: decode, resample, peak pass, STFTs, batching, masks, ISTFTs, FLAC and Parquet encoding,
Beam and the commit. Each run is a fresh process; its CPU time (user + sys, all threads and children) comes
from the kernel's rusage. Even this network is not free on a CPU (about 0.35 s per batch of 4 windows here),
so the runs use one torch thread (`model.cpu_threads=1`, as one SDK process per vCPU would) and the harness
below adds up the CPU time of the model's forward passes on their thread, which is taken out:

    CPU side = rusage CPU - model CPU;   audio s per CPU-s = (audio_long - audio_short) / (side_long - side_short)

A run on 1 s of audio gives the fixed cost. The runs alternate (short, long, short, long, ...).

    .venv/bin/python benchmarks/cpu_side.py --files 3 --seconds 180 --repeat 3
    git worktree add /tmp/before 8710f4c && .venv/bin/python benchmarks/cpu_side.py --repo /tmp/before --repo .

A tree with its own interpreter (``TREE/.venv/bin/python``, as docs/pipeline.md's comparison recipe makes one)
runs with it; any other tree runs with this interpreter and ``PYTHONPATH=TREE``, which imports a tree from
before the ``stemforge`` namespace (top-level ``model`` and ``pipeline``) from its own folders.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from pipeline_throughput import make_music

from stemforge.model import CascadedNet, save_checkpoint

REPO = Path(__file__).resolve().parent.parent

# Runs `stemforge run` with each forward pass timed on its calling thread's CPU clock (with one torch thread
# the network computes on that thread: the batcher's).
HARNESS = """
import json, sys, time
try:
    from stemforge.model.inference import InferenceModel
    from stemforge.pipeline.cli import main
except ImportError:  # a tree from before the stemforge namespace
    from model.inference import InferenceModel
    from pipeline.cli import main
spent = [0.0]
forward = InferenceModel.__call__
def timed(self, windows):
    start = time.thread_time()
    try:
        return forward(self, windows)
    finally:
        spent[0] += time.thread_time() - start
InferenceModel.__call__ = timed
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as handle:
    json.dump({"model_cpu": spent[0]}, handle)
sys.exit(code)
"""


def timed_run(repo: Path, music: Path, out: Path, checkpoint: Path, extra: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, of which in the model) of one `stemforge run` process of the tree ``repo``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    report = out.with_suffix(".json")
    own = repo / ".venv" / "bin" / "python"
    python, env = str(own), dict(os.environ)
    if not own.exists():
        python, env["PYTHONPATH"] = sys.executable, str(repo)
    subprocess.run([python, "-c", HARNESS, str(report), "run",
                    "--config", str(repo / "configs" / "separate.yaml"), "--input", str(music), "--output", str(out),
                    "--checkpoint", str(checkpoint), "--set", "model.device=cpu", "--set", "model.cpu_threads=1",
                    "--quiet", *extra], check=True, cwd=repo, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(report.read_text())["model_cpu"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each generated file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides, key=value")
    parser.add_argument("--repo", type=Path, action="append",
                        help="a stemforge tree to run (default: this one); give several, e.g. a `git worktree` of an "
                             "older commit, and their runs interleave, so a drift in the machine's speed touches all")
    args = parser.parse_args()
    repos = args.repo or [REPO]
    extra = [item for value in args.set for item in ("--set", value)]
    torch.manual_seed(0)
    runs: dict[Path, tuple[list, list]] = {repo: ([], []) for repo in repos}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        long_dir, short_dir = root / "long", root / "short"
        long_dir.mkdir()
        short_dir.mkdir()
        make_music(long_dir, args.files, args.seconds)
        make_music(short_dir, 1, 1.0)
        checkpoint = root / "near-free.pth"
        save_checkpoint(CascadedNet(2048, 4, 8).eval(), str(checkpoint))
        for n in range(args.repeat):
            for k, repo in enumerate(repos):
                short, long = runs[repo]
                short.append(timed_run(repo, short_dir, root / f"out-{k}-short-{n}", checkpoint, extra))
                long.append(timed_run(repo, long_dir, root / f"out-{k}-long-{n}", checkpoint, extra))
    audio = args.files * args.seconds
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"runs: {args.repeat} x (1 s, {args.files} x {args.seconds:.0f} s) per tree; overrides: {args.set or 'none'}")
    for repo, (short, long) in runs.items():
        print(f"tree: {repo}")
        for name, results in (("1 s (fixed cost)", short), (f"{audio:.0f} s", long)):
            walls, cpus, models = ([r[k] for r in results] for k in range(3))
            sides = [c - m for c, m in zip(cpus, models)]
            print(f"  {name:18s} wall {statistics.median(walls):6.2f} s  CPU {statistics.median(cpus):6.2f} s"
                  f"  model {statistics.median(models):5.2f} s  CPU side {statistics.median(sides):6.2f} s"
                  f"  (each: {', '.join(f'{v:.2f}' for v in sides)})")
        net = [(audio - 1.0) / ((cl - ml) - (cs - ms)) for (_, cs, ms), (_, cl, ml) in zip(short, long)]
        print(f"  CPU side, net of the fixed cost: median {statistics.median(net):.1f} s of audio per CPU-s"
              f"  (each: {', '.join(f'{v:.1f}' for v in net)})")


if __name__ == "__main__":
    main()
