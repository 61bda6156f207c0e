"""The ``skip`` and ``listing`` modes of benchmarks/scale.py: the per-run decisions that grow with a corpus.

``skip``: N listed inputs against K committed keys (R runs of K/R), every input already committed (a rerun
of an unchanged corpus), timed through the key join (``pipeline.keyjoin.DecideKeys`` on Beam's FnApiRunner,
in a fresh process: reading every run's key index, the join, the decision). The committed runs are made with
the writer commit uses (``shards.key_index.key_index_bytes``) and a manifest naming the index. ``--old`` also
times the procedure stemforge used before (git revision ``OLD``: every manifest read whole on one worker, one
side input, per-input set look-ups) over old-layout manifests of the same runs.

``listing``: N manifest entries (``.parquet`` and ``.txt``) listed by the run's listing stages (plan, parts,
batches with content fingerprints; the entries name no file, so each costs one failed ``stat``) on the
FnApiRunner in a fresh process.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OLD = "97197cc"  # main before the key join
ROOT = Path(__file__).resolve().parent.parent


def _job(output: str, inputs: str = "unused"):
    from stemforge.config.run import build_config
    from stemforge.pipeline.engine.inference import resolved_model
    from stemforge.pipeline.engine.job import Job

    config = build_config({"input": {"uri": inputs}, "output": {"uri": output}})
    return Job(config, "bench", "2026-12-05T00:00:00Z", "sha", False, resolved_model(config, None), progress=False)


def _source(i: int) -> str:
    return f"/corpus/album-{i % 997:03d}/track-{i:08d}.wav"


def make_history(root: Path, runs: int, per_run: int, old: bool) -> None:
    """R committed runs of ``per_run`` keys each (with old-layout manifests too when ``old``)."""
    from stemforge.shards.key_index import key_index_bytes, key_index_name

    fingerprint = _job(str(root / "out")).fingerprint
    for layout in (["new", "old"] if old else ["new"]):
        folder = root / layout / "runs"
        folder.mkdir(parents=True)
        for run in range(runs):
            run_id, started = f"run-{run:04d}", f"2026-11-{1 + run // 24:02d}T{run % 24:02d}:00:00Z"
            ids = range(run * per_run, (run + 1) * per_run)
            records = [{"track_key": _source(i)[1:-4], "source": _source(i), "size": 1000 + i % 7,
                        "version": f"mtime:{1.7e9 + i!r}"} for i in ids]
            manifest = {"run_id": run_id, "started_at": started, "status": "committed", "fingerprint": fingerprint}
            if layout == "new":
                (folder / key_index_name(run_id)).write_bytes(key_index_bytes(records, run_id, started, fingerprint))
                manifest["keys"] = key_index_name(run_id)
            else:
                manifest.update(tracks=[r["track_key"] for r in records], sources=records)
            (folder / f"{run_id}.json").write_text(json.dumps(manifest))


def _input_refs(inputs: int, committed: int):
    """N refs spread over the committed keys, each with the content its run recorded."""
    from stemforge.pipeline.listing import TrackRef

    step = max(committed // inputs, 1)
    return [TrackRef(_source(i), _source(i)[1:-4], 1000 + i % 7, f"mtime:{1.7e9 + i!r}")
            for i in range(0, step * inputs, step)]


def timed_skip(root: Path, inputs: int, committed: int, old: bool) -> dict:
    """One timed decision in this process: the new join, or the old procedure (``old``)."""
    import apache_beam as beam

    from stemforge.pipeline.graph import BATCH
    from stemforge.pipeline.keyjoin import DecideKeys, pack
    from stemforge.pipeline.keys import refs_table

    refs = _input_refs(inputs, committed)
    listed = root / "listed.parquet"  # the refs as listing gives them, read in batches by a DoFn (not Create)
    pq.write_table(refs_table(refs), listed, row_group_size=BATCH)
    del refs

    def batches(path: str):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
            yield pack(pa.Table.from_batches([batch]))

    start = time.perf_counter()
    with beam.Pipeline("DirectRunner") as p:
        if old:
            counts = _old_graph(p, _job(str(root / "old")), str(listed)) | beam.Map(lambda committed: (committed, 1))
        else:
            counts = (p | beam.Create([str(listed)]) | beam.FlatMap(batches) | DecideKeys(_job(str(root / "new")))
                      | beam.FlatMap(_committed_counts))  # per batch, as the run's Decided counts skipped refs
        summary = counts | beam.CombinePerKey(sum) | beam.combiners.ToDict()
        summary | beam.Map(lambda s: print(json.dumps({"decided": {str(k): v for k, v in s.items()}}), flush=True))
    return {"wall_s": round(time.perf_counter() - start, 2),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def _committed_counts(packed: bytes) -> list[tuple[bool, int]]:
    """How many refs of a decided batch were committed and how many not."""
    from stemforge.pipeline.keyjoin import unpack

    committed = unpack(packed)["committed"].to_numpy(zero_copy_only=False)
    return [(bool(value), int((committed == value).sum())) for value in (True, False) if (committed == value).any()]


def _old_graph(p, job, listed: str):
    """The skip decision as stemforge made it before the key join (git revision OLD), on the same refs."""
    import importlib.util

    import apache_beam as beam

    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD}:pipeline/keys.py"], check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("old_keys", loader=None)
    old = sys.modules["old_keys"] = importlib.util.module_from_spec(spec)
    exec(compile(source, "old_keys.py", "exec"), old.__dict__)  # noqa: S102 - the benchmark's own history

    def holdings(uri):
        for path in sorted(Path(uri, "runs").glob("*.json")):
            yield from old.holdings(json.loads(path.read_text()), job.fingerprint)

    index = beam.pvalue.AsSingleton(p | "Root" >> beam.Create([job.config.output.uri]) | beam.FlatMap(holdings)
                                    | beam.combiners.ToList() | beam.Map(old.key_index))
    from stemforge.pipeline.keys import table_refs

    return (p | "Refs" >> beam.Create([listed]) | beam.FlatMap(lambda path: table_refs(pq.read_table(path)))
            | beam.Map(lambda r: (r.source, r)) | "BySource" >> beam.GroupByKey()
            | beam.Map(lambda kv, ix: old.one_per_source(kv[1], ix), index)
            | beam.Map(lambda r: (r.track_key, r)) | "ByKey" >> beam.GroupByKey()
            | beam.FlatMap(lambda kv, ix: old.assign_keys(kv[1], ix), index)
            | beam.Map(lambda r, ix: old.is_committed(r, ix), index))


def make_manifests(root: Path, entries: int) -> list[Path]:
    """A ``.parquet`` (row groups of 64k) and a ``.txt`` manifest of N entries."""
    paths = [f"album-{i % 997:03d}/track-{i:08d}.wav" for i in range(entries)]
    pq.write_table(pa.table({"path": paths}), root / "list.parquet", row_group_size=65536)
    (root / "list.txt").write_text("\n".join(paths) + "\n")
    return [root / "list.parquet", root / "list.txt"]


def timed_listing(manifest: Path) -> dict:
    """The run's listing stages over one manifest in this process."""
    import apache_beam as beam

    from stemforge.pipeline.graph import IGNORED, ListInputs, PlanListing
    from stemforge.pipeline.keyjoin import unpack
    from stemforge.pipeline.stages import ERRORS

    job = _job(str(manifest.parent / "out"), str(manifest))
    start = time.perf_counter()
    with beam.Pipeline("DirectRunner") as p:
        listed = (p | beam.Create([str(manifest)]) | beam.ParDo(PlanListing(job)) | beam.Reshuffle()
                  | beam.ParDo(ListInputs(job)).with_outputs(ERRORS, IGNORED, main="refs"))
        (listed.refs | beam.Map(lambda b: unpack(b).num_rows) | beam.CombineGlobally(sum)
         | beam.Map(lambda n: print(json.dumps({"listed": n}), flush=True)))
    return {"wall_s": round(time.perf_counter() - start, 2),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def in_child(*args: str) -> dict:
    """Runs ``scale.py child ...`` in a fresh process (its own peak RSS); returns its last JSON lines merged."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("scale.py")), "child", *args],
                          check=True, capture_output=True, text=True)
    result: dict = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    return result


def child(args: list[str]) -> None:
    """The timed part, in the child process."""
    kind, root, *rest = args
    out = timed_listing(Path(root)) if kind == "listing" else timed_skip(Path(root), int(rest[0]), int(rest[1]),
                                                                         kind == "old")
    print(json.dumps(out), flush=True)


def skip(inputs: list[int], runs: list[int], per_run: list[int], old: bool) -> None:
    """Prints one row per (N, R, K/R): wall and peak RSS of the decision (and of the old procedure)."""
    print(f"{'N':>9} {'runs':>5} {'K':>10} {'new s':>7} {'new MiB':>8} {'old s':>7} {'old MiB':>8} {'ratio':>6}")
    for n, r, k in zip(inputs, runs, per_run):
        with tempfile.TemporaryDirectory() as folder:
            make_history(Path(folder), r, k, old)
            new = in_child("skip", folder, str(n), str(r * k))
            assert new["decided"] == {"True": n}, new
            was = in_child("old", folder, str(n), str(r * k)) if old else {}
            if old:
                assert was["decided"] == {"True": n}, was
            ratio = f"{was['wall_s'] / new['wall_s']:.1f}" if old else "-"
            print(f"{n:>9} {r:>5} {r * k:>10} {new['wall_s']:>7} {new['peak_rss_mib']:>8} "
                  f"{was.get('wall_s', '-'):>7} {was.get('peak_rss_mib', '-'):>8} {ratio:>6}", flush=True)


def listing(entries: int) -> None:
    """Prints one row per manifest kind: entries, parts, wall and peak RSS."""
    from stemforge.pipeline.entries import manifest_parts

    with tempfile.TemporaryDirectory() as folder:
        for manifest in make_manifests(Path(folder), entries):
            got = in_child("listing", str(manifest))
            assert got["listed"] == entries, got
            parts = len(manifest_parts(str(manifest), {}))
            print(f"{manifest.suffix:>8} {entries:>9} entries {parts:>3} parts {got['wall_s']:>7} s "
                  f"{got['peak_rss_mib']:>6} MiB peak", flush=True)
