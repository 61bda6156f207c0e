"""Which source holds which key, and what a rerun skips: the committed history decides (pipeline.keys), batch
by batch, and the same as a Beam join spread by key over buckets (pipeline.keyjoin)."""

import hashlib
import json
import random

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to

from stemforge.config.run import build_config
from stemforge.pipeline.engine.inference import resolved_model
from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.keyjoin import DecideKeys, pack, unpack
from stemforge.pipeline.keys import annotate, assign_keys, one_per_source, refs_table
from stemforge.pipeline.listing import TrackRef
from stemforge.shards.key_index import (BUCKETS, KEY_INDEX, buckets_of, is_bucketed, key_index_bytes,
                                        manifest_key_index, read_key_bucket, read_key_index)

FINGERPRINT = "f" * 16


def _suffixed(key: str, source: str) -> str:
    return f"{key}~{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def _manifest(run_id: str, sources: list[dict] | None, fingerprint: str = FINGERPRINT, tracks=None) -> dict:
    manifest = {"run_id": run_id, "started_at": f"2026-12-0{run_id[-1]}T00:00:00Z", "fingerprint": fingerprint,
                "status": "committed", "tracks": tracks if tracks is not None else [s["track_key"] for s in sources]}
    if sources is not None:
        manifest["sources"] = sources
    return manifest


def _decide(refs: list[TrackRef], *manifests: dict, fingerprint: str = FINGERPRINT) -> list[tuple]:
    """(source, key, size, version, committed) of every source, sorted: the three steps on one batch."""
    held = [((m["started_at"], m["run_id"], m["fingerprint"] == fingerprint), manifest_key_index(m)[1])
            for m in manifests]
    decided = assign_keys(one_per_source(annotate(refs_table(refs), held)))
    return sorted(zip(*(decided[c].to_pylist() for c in ("source", "track_key", "size", "version", "committed"))))


def _keys(refs: list[TrackRef], *manifests: dict) -> dict[str, str]:
    return {source: key for source, key, *_ in _decide(refs, *manifests)}


def _committed(ref: TrackRef, *manifests: dict) -> bool:
    [(*_, committed)] = _decide([ref], *manifests)
    return committed


WAV, FLAC = TrackRef("/d/a.wav", "a", 10, "mtime:1.0"), TrackRef("/d/a.flac", "a", 20, "mtime:2.0")
RECORD = {"track_key": "a", "source": "/d/a.wav", "size": 10, "version": "mtime:1.0"}


def test_without_history_the_first_source_sorted_keeps_the_key_in_any_order():
    expected = {"/d/a.flac": "a", "/d/a.wav": _suffixed("a", "/d/a.wav")}
    assert _keys([WAV, FLAC]) == expected and _keys([FLAC, WAV]) == expected


def test_a_committed_holder_keeps_its_key_and_a_newcomer_gets_the_suffix():
    run1 = _manifest("run1", [RECORD])
    assert _keys([FLAC, WAV], run1) == {"/d/a.flac": _suffixed("a", "/d/a.flac"), "/d/a.wav": "a"}
    assert _keys([FLAC], run1) == {"/d/a.flac": _suffixed("a", "/d/a.flac")}  # the holder gone: still its key


def test_the_earliest_run_decides_the_holder_whatever_the_reading_order():
    early = _manifest("run1", [RECORD])
    late = _manifest("run2", [{"track_key": "a", "source": "/d/a.flac", "size": 20, "version": "mtime:2.0"}])
    assert _keys([FLAC, WAV], late, early)["/d/a.wav"] == "a"
    assert _keys([FLAC, WAV], early, late)["/d/a.wav"] == "a"


def test_a_source_listed_under_two_keys_keeps_the_one_it_holds():
    inner, outer = TrackRef("/d/sub/x.wav", "x"), TrackRef("/d/sub/x.wav", "sub/x")
    assert _keys([inner, outer]) == {"/d/sub/x.wav": "sub/x"}  # no history: the smallest key
    run1 = _manifest("run1", [{"track_key": "x", "source": "/d/sub/x.wav", "size": 1, "version": None}])
    assert _keys([outer, inner], run1) == {"/d/sub/x.wav": "x"}


def test_a_rerun_skips_the_same_source_with_the_same_content_and_this_fingerprint_only():
    run1 = _manifest("run1", [RECORD])
    assert _committed(WAV, run1)
    assert not _committed(TrackRef("/d/a.wav", "a", 11, "mtime:1.0"), run1)  # size changed
    assert not _committed(TrackRef("/d/a.wav", "a", 10, "mtime:3.0"), run1)  # rewritten
    assert not _committed(TrackRef("/d/a.flac", "a", 10, "mtime:1.0"), run1)  # another source
    assert _committed(TrackRef("/d/a.wav", "a"), run1)  # content unknown (an unreadable entry): by source
    assert not _committed(WAV, _manifest("run1", [RECORD], fingerprint="other"))


def test_a_manifest_that_records_only_keys_still_skips_by_key():
    run1 = _manifest("run1", None, tracks=["a"])
    assert _committed(FLAC, run1) and _committed(WAV, run1)
    assert _keys([WAV, FLAC], run1)["/d/a.flac"] == "a"  # it names no holder: the rule without history


def _reference(refs: list[TrackRef], manifests: list[dict]) -> list[tuple]:
    """The rules (docs/cluster.md) one source at a time, as stemforge applied them before the join."""
    held = sorted(((m["started_at"], m["run_id"], r["source"] or "", m["fingerprint"] == FINGERPRINT, r)
                   for m in manifests
                   for r in m.get("sources") or [{"track_key": k, "source": None} for k in m["tracks"]]),
                  key=lambda h: h[:3])

    def holder(key: str) -> str | None:
        return next((r["source"] for *_, r in held if r["track_key"] == key and r["source"]), None)

    def committed(ref: TrackRef) -> bool:
        return any(reusable and (r["source"] is None or (r["source"] == ref.source and all(
            old is None or new is None or old == new
            for old, new in ((r.get("size"), ref.size), (r.get("version"), ref.version)))))
            for *_, reusable, r in held if r["track_key"] == ref.track_key)

    chosen: dict[str, TrackRef] = {}
    for source in {r.source for r in refs}:
        mine = sorted((r for r in refs if r.source == source), key=lambda r: r.track_key)
        chosen[source] = next((r for r in mine if source in (holder(r.track_key),
                                                             holder(_suffixed(r.track_key, source)))), mine[0])
    out = []
    for key in {r.track_key for r in chosen.values()}:
        sources = sorted(s for s, r in chosen.items() if r.track_key == key)
        owner = holder(key) or sources[0]
        for source in sources:
            ref = chosen[source]
            final = key if source == owner else _suffixed(key, source)
            mine = TrackRef(source, final, ref.size, ref.version)
            out.append((source, final, ref.size, ref.version, committed(mine)))
    return sorted(out)


def _random_case(rng: random.Random, refs: int, colliding: int = 8) -> tuple[list[TrackRef], list[dict]]:
    """Refs and committed runs that collide often: few names, suffixed keys, duplicates, old layouts."""
    sources = [f"/d/{n}.{e}" for n in "abcq" for e in ("wav", "flac")]
    keys = ["a", "b", "x", "sub/a", _suffixed("a", "/d/a.wav"), _suffixed("x", "/d/q.wav")]

    content = {s: (rng.choice([None, 1, 2]), rng.choice([None, "v1"])) for s in sources}  # a source's own

    def ref() -> TrackRef:
        source = rng.choice(sources)
        return TrackRef(source, rng.choice(keys), *content[source])

    def changed(ref: TrackRef) -> tuple:
        return (ref.size, ref.version) if rng.random() < 0.6 else (rng.choice([None, 1, 2]), rng.choice([None, "v2"]))

    listed = [TrackRef(f"/e/{i}.wav", f"e/{i}", 1, "v1") for i in range(refs)] + [ref() for _ in range(colliding)]
    manifests = []
    for number in range(rng.randint(0, 4)):
        drawn = [ref() for _ in range(rng.randint(0, colliding // 2))]
        records = [{"track_key": rng.choice([r.track_key, _suffixed(r.track_key, r.source)]), "source": r.source,
                    **dict(zip(("size", "version"), changed(r)))} for r in drawn]
        records += [{"track_key": r.track_key, "source": r.source, "size": r.size, "version": r.version}
                    for r in listed[:refs] if rng.random() < 0.5]
        manifest = _manifest(f"run{number}", records, rng.choice([FINGERPRINT, "other"]))
        manifest["started_at"] = f"2026-12-0{rng.randint(1, 3)}T00:00:00Z"
        if rng.random() < 0.3:  # the oldest layout: keys only
            del manifest["sources"]
        manifests.append(manifest)
    return listed, manifests


def test_the_batched_decision_equals_the_rules_one_source_at_a_time():
    rng = random.Random(23)
    for _ in range(300):
        refs, manifests = _random_case(rng, refs=0)
        assert _decide(refs, *manifests) == _reference(refs, manifests)


def _unbucketed_index(records: list[dict], meta: dict) -> bytes:
    """A key index as written before buckets: one table sorted by key, the run's identity in its metadata."""
    table = pa.Table.from_pylist(records, schema=KEY_INDEX).sort_by([("track_key", "ascending")])
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata({f"stemforge.{k}": meta[k] for k in
                                                  ("run_id", "started_at", "fingerprint")}), sink)
    return sink.getvalue().to_pybytes()


def _write_runs(output, manifests: list[dict]) -> None:
    """The runs under an output root: the first two with a key index (``runs/<id>.keys.parquet``; bucketed, and
    as written before buckets), the others in the old layouts, and two that never committed (a failed
    manifest; a key index without its manifest)."""
    runs = output / "runs"
    runs.mkdir(parents=True)
    for number, manifest in enumerate(manifests):
        if number < 2 and "sources" in manifest:  # what the key index holds is not read from the manifest
            index = key_index_bytes(manifest["sources"], manifest["run_id"], manifest["started_at"],
                                    manifest["fingerprint"]) if number == 0 else _unbucketed_index(
                manifest["sources"], manifest)
            (runs / f"{manifest['run_id']}.keys.parquet").write_bytes(index)
            manifest = {k: v for k, v in manifest.items() if k not in ("sources", "tracks", "fingerprint")}
            manifest["keys"] = f"{manifest['run_id']}.keys.parquet"
        (runs / f"{manifest['run_id']}.json").write_text(json.dumps(manifest))
    dead = _manifest("run9", [{"track_key": "a", "source": "/d/a.wav", "size": None, "version": None}])
    (runs / "run9.json").write_text(json.dumps({**dead, "status": "failed"}))
    dead = _manifest("run8", [{"track_key": "a", "source": "/d/a.wav", "size": None, "version": None}])
    (runs / "run8.keys.parquet").write_bytes(key_index_bytes(dead["sources"], "run8", "2026-12-01", FINGERPRINT))


def test_the_beam_join_over_buckets_decides_as_the_rules(tmp_path):
    rng = random.Random(5)
    for case in range(3):
        refs, manifests = _random_case(rng, refs=400, colliding=40)
        output = tmp_path / f"out{case}"
        config = build_config({"input": {"uri": str(tmp_path)}, "output": {"uri": str(output)}})
        job = Job(config, "now", "2026-12-05T00:00:00Z", "sha", False, resolved_model(config, None), progress=False)
        for manifest in manifests:
            manifest["fingerprint"] = job.fingerprint if manifest["fingerprint"] == FINGERPRINT else "other"
        _write_runs(output, manifests)
        expected = _reference(refs, [{**m, "fingerprint": FINGERPRINT if m["fingerprint"] == job.fingerprint
                                      else "other"} for m in manifests])
        assert len(set(buckets_of(r.track_key for r in refs))) > BUCKETS // 2  # the join is spread
        batches = [pack(refs_table(refs[i:i + 50])) for i in range(0, len(refs), 50)]
        with beam.Pipeline("DirectRunner") as p:
            decided = (p | beam.Create(batches) | DecideKeys(job)
                       | beam.FlatMap(lambda b: zip(*(unpack(b)[c].to_pylist() for c in
                                                     ("source", "track_key", "size", "version", "committed")))))
            assert_that(decided, equal_to(expected))


def test_a_batch_of_refs_survives_the_round_trip():
    refs = [WAV, TrackRef("s3://b/x y.wav", "x y")]
    assert unpack(pack(refs_table(refs))) == pa.Table.from_batches(refs_table(refs).to_batches())


def _sorted_rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table[c].to_pylist() for c in KEY_INDEX.names)), key=repr)


def test_a_bucketed_key_index_reads_whole_and_by_bucket_as_its_records():
    """Whole: every record once, sorted by key. By bucket: the records of that bucket's keys, and of each
    suffixed key whose base key is in that bucket (crc32 of the UTF-8, as the join buckets refs)."""
    rng = random.Random(7)
    records = []
    for i in range(600):
        base = f"k{rng.randrange(300)}"
        key = base if rng.random() < 0.6 else _suffixed(base, f"/s/{i}")
        records.append({"track_key": key, "source": f"/s/{i}.wav", "size": rng.choice([None, i]),
                        "version": rng.choice([None, f"v{i}"])})
    data = key_index_bytes(records, "r1", "2026-12-01T00:00:00Z", FINGERPRINT)
    meta, whole = read_key_index(pa.BufferReader(data))
    assert meta == {"run_id": "r1", "started_at": "2026-12-01T00:00:00Z", "fingerprint": FINGERPRINT}
    assert _sorted_rows(whole) == _sorted_rows(pa.Table.from_pylist(records, schema=KEY_INDEX))
    assert whole["track_key"].to_pylist() == sorted(r["track_key"] for r in records)
    assert is_bucketed(pa.BufferReader(data)) and not is_bucketed(pa.BufferReader(_unbucketed_index(records, meta)))
    for bucket in range(BUCKETS):
        expected = [r for r in records
                    if buckets_of([r["track_key"]])[0] == bucket or buckets_of([r["track_key"][:-9]])[0] == bucket
                    and r["track_key"][-9:-8] == "~"]
        got_meta, got = read_key_bucket(pa.BufferReader(data), bucket)
        assert got_meta == meta and got.schema == KEY_INDEX
        assert _sorted_rows(got) == _sorted_rows(pa.Table.from_pylist(expected, schema=KEY_INDEX))


def test_an_empty_key_index_reads_empty():
    data = key_index_bytes([], "r1", "2026-12-01T00:00:00Z", FINGERPRINT)
    assert read_key_index(pa.BufferReader(data))[1].num_rows == 0
    assert read_key_bucket(pa.BufferReader(data), 3)[1].num_rows == 0
