"""Throughput of training.ShardDataset against a bare pyarrow read of the same shards.

Writes ``--rows`` realistic rows with the pipeline's own ShardWriter (n_fft 2048: float16 ``[2, 1025, 256]``
tensors for mixture and the two stems, zstd, 32 MiB row groups, the real schema) plus a committed manifest, then
measures, best of ``--repeats`` passes (taken in turns) over files in the page cache:

* pyarrow: every row group's tensor columns read and converted to numpy, in one process (``use_threads`` on);
* pyarrow in two processes, each reading half of the row groups (what two DataLoader workers could at most do);
* ShardDataset through a DataLoader (batch 8) with 0, 1 and 2 workers, whole rows, float32 out;
* the same with 256-frame crops and 2 workers.

MB/s counts the stored (float16) tensor bytes of what was delivered; CPU ms/sample is the user + system time
of the process and its workers, which a busy machine inflates less than the wall time. Prints a Markdown table.

    .venv/bin/python benchmarks/reader_throughput.py [--rows 200] [--repeats 3] [--dir /tmp/reader-bench]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader

from stemforge import shards
from stemforge.config.run import Config
from stemforge.pipeline.engine.single_band import SingleBandLayout
from stemforge.pipeline.engine.rows import tensor_columns
from stemforge.pipeline.sinks import ShardWriter
from stemforge.training import ShardDataset

BINS, FRAMES, BATCH = 1025, 256, 8


def write_shards(root: Path, rows: int) -> tuple[list[str], int]:
    """Rows of 3-minute tracks (31 segments each) with log-normal magnitudes under a 1/f envelope; returns the
    shard paths and the stored tensor bytes of one row."""
    config = Config.model_validate({"model": {"stems": ["instruments", "vocals"]}, "output": {"uri": str(root)}})
    writer = ShardWriter(config, "0" * 64, SingleBandLayout(config.model), "bench", {})
    rng = np.random.default_rng(0)
    envelope = (1.0 / (1.0 + np.arange(BINS) / 20.0))[None, :, None]
    written = []
    for number in range(rows):
        track, segment = divmod(number, 31)
        mixture = (envelope * np.exp(rng.standard_normal((2, BINS, FRAMES), np.float32))).astype(np.float16)
        mask = rng.random((2, BINS, FRAMES), np.float32).astype(np.float16)
        row = {"track_key": f"track{track:04d}", "source": f"s3://corpus/track{track:04d}.flac", "variant": 0,
               "segment": segment, "start_frame": segment * FRAMES, "num_frames": FRAMES, "sample_rate": 44100,
               "n_fft": 2048, "hop_length": 1024, "seed": track, "lowpass_cutoff_hz": None, "lowpass_q": None,
               "gain_db": None, "augment_params": "{}", "stem_gain": 1.0,
               "mixture": mixture, "instruments": mixture * mask, "vocals": mixture - mixture * mask}
        written += writer.add(row)
    written += writer.close()
    manifest = {"run_id": "bench", "status": "committed", "started_at": "0", "shards": written}
    (root / "runs").mkdir()
    (root / "runs" / "bench.json").write_text(json.dumps(manifest))
    return [str(root / shard) for shard in written], 2 * BINS * FRAMES * 2 * len(tensor_columns(config))


def pyarrow_read(paths: list[str], part: int = 0, parts: int = 1) -> int:
    """Reads every ``parts``-th row group's tensor columns to numpy; returns the rows read."""
    rows, number = 0, 0
    for path in paths:
        parquet = pq.ParquetFile(path)
        columns = [f.name for f in parquet.schema_arrow if shards.is_tensor(f.type)]
        for group in range(parquet.num_row_groups):
            if number % parts == part:
                table = parquet.read_row_group(group, columns=columns)
                arrays = [shards.tensor_to_numpy(table.column(c)) for c in columns]
                rows += len(arrays[0])
            number += 1
    return rows


def pyarrow_two_processes(paths: list[str]) -> int:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        return sum(pool.starmap(pyarrow_read, [(paths, 0, 2), (paths, 1, 2)]))


def loader_read(root: str, workers: int, cropsize: int | None, dtype: torch.dtype = torch.float32) -> int:
    dataset = ShardDataset(root, cropsize=cropsize, seed=1, dtype=dtype)
    return sum(len(batch["track_key"]) for batch in DataLoader(dataset, batch_size=BATCH, num_workers=workers))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (DataLoader workers, pool processes), user + system."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def best_of(cases: list[tuple[str, Callable[[], int], int]], repeats: int) -> list[tuple[int, float, float]]:
    """(samples, best seconds, CPU seconds of that pass) per case; the repeats go round the cases, so a busy
    moment of the machine does not hit one case only."""
    results = [(0, float("inf"), 0.0)] * len(cases)
    for _ in range(repeats):
        for number, (_, run, _) in enumerate(cases):
            start, cpu = time.perf_counter(), cpu_seconds()
            count = run()
            seconds = time.perf_counter() - start
            if seconds < results[number][1]:
                results[number] = count, seconds, cpu_seconds() - cpu
    return results


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="rows to write (3.1 MB of float16 tensors each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write the shards (default: a temporary folder)")
    args = parser.parse_args()

    root = Path(args.dir or tempfile.mkdtemp(prefix="reader-bench-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    try:
        start = time.perf_counter()
        paths, row_bytes = write_shards(root, args.rows)
        written = time.perf_counter() - start
        on_disk = sum(os.path.getsize(p) for p in paths)
        groups = sum(pq.ParquetFile(p).num_row_groups for p in paths)
        pyarrow_read(paths)  # warm the page cache
        start = time.perf_counter()
        ShardDataset(str(root))
        indexed = time.perf_counter() - start
        crop_bytes = row_bytes * 256 // FRAMES
        cases: list[tuple[str, Callable[[], int], int]] = [
            ("pyarrow read_row_group + tensor_to_numpy, 1 process", lambda: pyarrow_read(paths), row_bytes),
            ("pyarrow, 2 processes (half the row groups each)", lambda: pyarrow_two_processes(paths), row_bytes),
            *[(f"ShardDataset rows, DataLoader num_workers={w}", lambda w=w: loader_read(str(root), w, None), row_bytes)
              for w in (0, 1, 2)],
            ("ShardDataset rows as float16, num_workers=2", lambda: loader_read(str(root), 2, None, torch.float16),
             row_bytes),
            ("ShardDataset cropsize 256, num_workers=2", lambda: loader_read(str(root), 2, 256), crop_bytes),
        ]
        print(f"{args.rows} rows of 3 x [2, {BINS}, {FRAMES}] float16 ({row_bytes / 1e6:.2f} MB/row) in {len(paths)} "
              f"shards, {groups} row groups, {on_disk / 1e6:.0f} MB zstd on disk; written in {written:.1f} s; "
              f"index (scalar columns) {indexed * 1e3:.0f} ms; DataLoader batch {BATCH}; best of {args.repeats}")
        print(f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.2f}, "
              f"Python {platform.python_version()}, pyarrow {pa.__version__}, torch {torch.__version__}")
        print()
        print("| reader | samples | seconds | samples/s | MB/s | vs pyarrow 1 process | CPU ms/sample |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        baseline = 0.0
        for (name, _, sample_bytes), (count, seconds, cpu) in zip(cases, best_of(cases, args.repeats)):
            rate = count * sample_bytes / seconds / 1e6
            baseline = baseline or rate
            print(f"| {name} | {count} | {seconds:.2f} | {count / seconds:.1f} | {rate:.0f} | {rate / baseline:.0%} "
                  f"| {cpu / count * 1e3:.1f} |")
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
