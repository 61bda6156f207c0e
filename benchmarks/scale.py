"""Costs that grow with a corpus rather than with one track, each as a subcommand.

``mix``: the per-variant cost of drawing a mix plan (transforms.mixing.draw_mix) against the stem-set
catalogue's size. A catalogue of C tracks with four stems (vocals, drums, bass, other) is indexed once as a
MixCatalog, as a mix run does; the draw of a variant is timed against the procedure stemforge used before
(the whole catalogue sorted, and scanned for partners, for every variant), in the same process, and the
draws of both are checked to be identical. The old procedure is timed on fewer variants (``--old-variants``)
because it costs O(C) each.

    .venv/bin/python benchmarks/scale.py mix --entries 1000 10000 100000 --variants 2000 --remix-p 0 0.5

``skip`` and ``listing`` (benchmarks/scale_keys.py): the skip decision against the committed history, and
listing a large manifest, each timed in a fresh process with its peak RSS.

    .venv/bin/python benchmarks/scale.py skip --inputs 10000 1000000 --runs 1 100 --per-run 10000 100000
    .venv/bin/python benchmarks/scale.py skip --inputs 10000 --runs 1 --per-run 10000 --old
    .venv/bin/python benchmarks/scale.py listing --entries 1000000

``commit``: one run of N tracks committed through ``pipeline.commit.commit`` (synthetic source, TrackDone and
timing records, a tiny config, a local output folder with ``--shards`` empty shard files); wall seconds, the
peak RSS of the process, and the bytes of the JSON manifest, the detail and the key index.

    .venv/bin/python benchmarks/scale.py commit --tracks 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

import scale_keys
from stemforge.transforms.mixing import MixCatalog, draw_mix
from stemforge.transforms.seeding import derive_seed

STEMS = ("vocals", "drums", "bass", "other")
TARGETS = {name: (name,) for name in STEMS}
GAIN_DB = (-6.0, 6.0)
DROP_P = 0.1


def old_draw(seed: int, track_key: str, variant: int, targets: Mapping[str, Sequence[str]],
             catalog: Mapping[str, Mapping[str, str]], remix_p: float) -> list[tuple[str, float, float, bool]]:
    """The draws of one variant as made before MixCatalog: sort and scan the whole catalogue per variant."""
    rng = np.random.default_rng([derive_seed(seed, track_key, variant), 0x6D6978])
    keys = sorted(catalog)
    draws = []
    for number, sources in enumerate(targets.values()):
        remix = number > 0 and rng.random() < remix_p
        partners = [k for k in keys if k != track_key and all(s in catalog[k] for s in sources)] if remix else []
        track = partners[int(rng.integers(len(partners)))] if partners else track_key
        offset = float(rng.random()) if track != track_key else 0.0
        gain = float(rng.uniform(*GAIN_DB))
        draws.append([track, offset, gain, bool(rng.random() < DROP_P)])
    if all(d[3] for d in draws):
        draws[0][3] = False
    return [tuple(d) for d in draws]


def _per_variant(draw, jobs: list[tuple[str, int]]) -> tuple[float, list]:
    start = time.perf_counter()
    out = [draw(key, variant) for key, variant in jobs]
    return (time.perf_counter() - start) / len(jobs), out


def mix(args: argparse.Namespace) -> None:
    """Prints one row per (entries, remix_p): index build time, per-variant draw times and their ratio."""
    print(f"{'entries':>8} {'remix_p':>7} {'index s':>8} {'old ms/variant':>15} {'new ms/variant':>15} {'ratio':>7}")
    for entries in args.entries:
        catalog = {f"track-{i:07d}": {s: f"s3://set/track-{i:07d}/{s}.flac" for s in STEMS} for i in range(entries)}
        keys = sorted(catalog)
        rng = np.random.default_rng(0)
        jobs = [(keys[int(rng.integers(entries))], v) for v in range(args.variants)]
        start = time.perf_counter()
        index = MixCatalog(catalog, TARGETS.values())
        built = time.perf_counter() - start
        for remix_p in args.remix_p:
            new, plans = _per_variant(
                lambda k, v: draw_mix(args.seed, k, v, TARGETS, index, GAIN_DB, remix_p, DROP_P), jobs)
            old_jobs = jobs[:args.old_variants]
            old, reference = _per_variant(lambda k, v: old_draw(args.seed, k, v, TARGETS, catalog, remix_p), old_jobs)
            drawn = [[(s.track, s.offset, s.gain_db, s.dropped) for s in p.stems] for p in plans[:len(old_jobs)]]
            if drawn != reference:
                raise SystemExit(f"draws differ from the old procedure at {entries} entries, remix_p {remix_p}")
            print(f"{entries:>8} {remix_p:>7g} {built:>8.3f} {old * 1e3:>15.3f} {new * 1e3:>15.4f} {old / new:>7.1f}")


def commit_records(tracks: int, shards: int, run_id: str) -> tuple[list, list, list[str], list]:
    """Synthetic sources, TrackDone and timing records of ``tracks`` one-variant tracks, and shard names."""
    from stemforge.pipeline.sinks import TrackDone

    keys = [f"corpus/album{i // 1000:04d}/track{i:07d}" for i in range(tracks)]
    sources = [{"track_key": k, "source": f"s3://bucket/{k}.flac", "size": 40_000_000 + i, "version": f"{i:016x}"}
               for i, k in enumerate(keys)]
    done = [TrackDone(k, 0, rows=7, audio_seconds=210.5 + i % 97, stem_gain=0.8 if i % 10 == 0 else 1.0,
                      clipped=None, seconds=1.25, decoded="ffmpeg:declared") for i, k in enumerate(keys)]
    timing = [(k, 0, 0.75) for k in keys]
    return sources, done, [f"spectrograms/{run_id}/part-{i:06d}.parquet" for i in range(shards)], timing


def commit_cost(args: argparse.Namespace) -> None:
    """Commits one synthetic run of ``--tracks`` tracks; prints wall seconds, peak RSS and file sizes."""
    from stemforge.pipeline.commit import commit
    from stemforge.config.run import build_config
    from stemforge.pipeline.engine.inference import resolved_model
    from stemforge.pipeline.engine.job import Job

    run_id = "bench"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        (out / "spectrograms" / run_id).mkdir(parents=True)
        sources, done, shards, timing = commit_records(args.tracks, args.shards, run_id)
        for shard in shards:
            (out / shard).touch()
        config = build_config({"input": {"uri": f"{folder}/in"}, "output": {"uri": str(out)},
                               "model": {"checkpoint": f"{folder}/tiny.pth"}})
        job = Job(config=config, run_id=run_id, checkpoint_sha256="0" * 64, random_init=False,
                  model=resolved_model(config, None),
                  started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), progress=False)
        start = time.perf_counter()
        commit(None, job, sources, [], shards, done, [], timing)
        wall = time.perf_counter() - start
        sizes = {p.name: p.stat().st_size for p in (out / "runs").iterdir()}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"tracks {args.tracks:,}, shards {args.shards:,}: commit {wall:.1f} s, peak RSS {peak:,.0f} MiB "
          f"(the records included); " + ", ".join(f"{name} {size:,} B" for name, size in sorted(sizes.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    mixing = commands.add_parser("mix", help="per-variant draw_mix cost against the catalogue's size")
    mixing.add_argument("--entries", type=int, nargs="+", default=[1000, 10000, 100000])
    mixing.add_argument("--variants", type=int, default=2000, help="variants drawn with the index")
    mixing.add_argument("--old-variants", type=int, default=100, help="variants drawn the old way (O(C) each)")
    mixing.add_argument("--remix-p", type=float, nargs="+", default=[0.0, 0.5])
    mixing.add_argument("--seed", type=int, default=0)
    mixing.set_defaults(run=mix)
    skipping = commands.add_parser("skip", help="the skip decision: N inputs against R runs of K/R keys")
    skipping.add_argument("--inputs", type=int, nargs="+", default=[10000])
    skipping.add_argument("--runs", type=int, nargs="+", default=[1])
    skipping.add_argument("--per-run", type=int, nargs="+", default=[10000])
    skipping.add_argument("--old", action="store_true", help="also time the procedure before the key join")
    skipping.set_defaults(run=lambda a: scale_keys.skip(a.inputs, a.runs, a.per_run, a.old))
    listed = commands.add_parser("listing", help="listing a .parquet and a .txt manifest of N entries")
    listed.add_argument("--entries", type=int, default=1_000_000)
    listed.set_defaults(run=lambda a: scale_keys.listing(a.entries))
    inner = commands.add_parser("child", help="(internal) one timed run in a fresh process")
    inner.add_argument("args", nargs="+")
    inner.set_defaults(run=lambda a: scale_keys.child(a.args))
    committing = commands.add_parser("commit", help="commit() of one run of N tracks: wall, peak RSS, file sizes")
    committing.add_argument("--tracks", type=int, default=1_000_000)
    committing.add_argument("--shards", type=int, default=5000)
    committing.set_defaults(run=commit_cost)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
