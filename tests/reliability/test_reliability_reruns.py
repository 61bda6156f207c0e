"""Claim 3: reruns and increments, on S3 (moto, started here). With run.skip_existing (the default) a
rerun commits no new rows and leaves every committed object byte-identical; added inputs are exactly
what the next run processes; settings outside the fingerprint (batch size, device, run id) change
nothing; another checkpoint or an output-shaping setting means "not existing"."""


import pytest
from reliability_support import committed_manifests, committed_rows, moto_s3, row_keys, run_args
from stemforge_testing import read_manifest, write_config

from stemforge.pipeline.cli import main

s3fs = pytest.importorskip("s3fs")


def test_reruns_and_increments_on_s3(good_corpus, tiny_checkpoint, other_ckpt, tmp_path):
    folder, files = good_corpus
    with moto_s3(tmp_path) as endpoint:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="k", secret="s", skip_instance_cache=True)
        fs.mkdir("data")
        for name in ("a.wav", "c.wav"):
            fs.put_file(str(folder / name), f"data/in/{name}")
        fs.put_file(str(tiny_checkpoint), "data/tiny.pth")
        fs.put_file(str(other_ckpt), "data/other.pth")
        config = write_config(tmp_path / "c.yaml", storage_options={
            "s3": {"endpoint_url": endpoint, "key": "k", "secret": "s"}})

        def run(run_id: str, checkpoint: str = "s3://data/tiny.pth", *extra: str) -> dict:
            assert main(run_args(config, "s3://data/in", "s3://data/out", checkpoint,
                                 "--set", f"run.run_id={run_id}", *extra)) == 0
            fs.invalidate_cache()
            return read_manifest(f"s3://data/out/runs/{run_id}.json", fs.storage_options)

        def objects() -> dict[str, bytes]:
            fs.invalidate_cache()
            return {p: fs.cat_file(p) for p in fs.find("data/out")}

        first = run("first")
        assert first["tracks"] == ["a", "c"] and first["counts"]["rows"] > 0
        before = objects()

        rerun = run("rerun", "s3://data/tiny.pth", "--set", "model.batch_size=2")
        assert rerun["counts"]["skipped"] == 2 and rerun["counts"]["rows"] == 0 and rerun["shards"] == []
        assert rerun["fingerprint"] == first["fingerprint"]
        after = objects()
        assert {k: after[k] for k in before} == before  # byte-identical
        written = {f"data/out/runs/rerun.{name}" for name in ("json", "keys.parquet", "tracks.parquet")}
        assert set(after) - set(before) == written

        fs.put_file(str(files["sub/b"]), "data/in/sub/b.flac")
        more = run("more")
        assert more["tracks"] == ["sub/b"] and more["counts"]["skipped"] == 2 and more["counts"]["inputs"] == 1
        rows = committed_rows(fs, "data/out")
        assert sorted({r["track_key"] for r in rows}) == ["a", "c", "sub/b"]
        assert row_keys(rows) == sorted(set(row_keys(rows)))  # nothing twice

        other = run("other-checkpoint", "s3://data/other.pth")
        assert other["tracks"] == ["a", "c", "sub/b"] and other["counts"]["skipped"] == 0
        assert other["fingerprint"] != first["fingerprint"]

        shaped = run("other-segments", "s3://data/tiny.pth", "--set", "output.segment_frames=50")
        assert shaped["tracks"] == ["a", "c", "sub/b"] and shaped["fingerprint"] not in (
            first["fingerprint"], other["fingerprint"])
        fingerprints = {m["run_id"]: m["fingerprint"] for m in committed_manifests(fs, "data/out")}
        assert len(set(fingerprints.values())) == 3
