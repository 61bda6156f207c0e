"""Real shards for the reader tests, written by the real pipeline (tiny model, float16 rows of 16 frames, 1 MiB
row groups and shards, so tracks continue across row groups and shards), plus what must never be read: a stray
copy of a shard that no manifest lists and a manifest that is not committed. Expected values come from pyarrow."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from stemforge_testing import SR, music, read_manifest, write_config

from stemforge import shards

CHAIN = [{"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 3000.0, "q": 0.7071, "jitter": [0.8, 1.2], "p": 1.0}]
TRACKS = {"a": 3.0, "b": 2.2, "c": 1.4, "d": 0.5}  # seconds; d goes to the second root


def _run(work: Path, name: str, tracks: list[str], ckpt: Path) -> Path:
    from stemforge.pipeline.cli import main

    corpus = work / f"{name}-in"
    corpus.mkdir()
    for number, track in enumerate(tracks):
        sf.write(corpus / f"{track}.wav", music(int(SR * TRACKS[track]), seed=number).T, SR, subtype="FLOAT")
    config = write_config(work / f"{name}.yaml", augment={"variants": 2, "seed": 5, "keep_clean": True, "chain": CHAIN},
                          output={"segment_frames": 16, "spectrogram_dtype": "float16", "row_group_bytes": 1 << 20,
                                  "max_shard_bytes": 1 << 20, "write_stems": False})
    out = work / name
    assert main(["run", "--config", str(config), "--input", str(corpus), "--output", str(out), "--checkpoint",
                 str(ckpt), "--direct_num_workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def roots(tmp_path_factory, tiny_checkpoint) -> list[str]:
    """Two output roots of committed runs; the first also holds a stray shard and an uncommitted manifest."""
    work = tmp_path_factory.mktemp("reader")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first, second = _run(work, "one", ["a", "b", "c"], tiny_checkpoint), _run(work, "two", ["d"], tiny_checkpoint)
    finally:
        torch.set_num_threads(before)
    [manifest] = [read_manifest(p) for p in (first / "runs").glob("*.json")]
    shard = first / manifest["shards"][0]
    shutil.copy(shard, shard.with_name("part-stray.parquet"))
    (first / "spectrograms" / "killed").mkdir()
    shutil.copy(shard, first / "spectrograms" / "killed" / "part-0.parquet")
    (first / "runs" / "killed.json").write_text(json.dumps({"run_id": "killed", "status": "running",
                                                            "shards": ["spectrograms/killed/part-0.parquet"]}))
    return [str(first), str(second)]


def committed_table(roots: list[str]) -> pa.Table:
    """Every committed row, read with pyarrow from the shards the committed manifests list."""
    paths = []
    for root in roots:
        for path in sorted(Path(root, "runs").glob("*.json")):
            manifest = read_manifest(path)
            if manifest["status"] == "committed":
                paths += [Path(root, shard) for shard in manifest["shards"]]
    return pa.concat_tables([pq.read_table(path) for path in paths])


@pytest.fixture(scope="session")
def expected(roots) -> dict:
    """pyarrow's view: rows keyed (track_key, variant, segment) with their tensors, and each track variant's
    frames concatenated (padding dropped) per tensor column."""
    table = committed_table(roots)
    keys = list(zip(*(table.column(c).to_pylist() for c in ("track_key", "variant", "segment"))))
    tensors = {c: shards.tensor_to_numpy(table.column(c)) for c in ("mixture", "instruments", "vocals", "clean")}
    frames = table.column("num_frames").to_pylist()
    tracks = {}
    for track in sorted({(k, v) for k, v, _ in keys}):
        rows = sorted((s, i) for i, (k, v, s) in enumerate(keys) if (k, v) == track)
        tracks[track] = {c: np.concatenate([t[i][..., :frames[i]] for _, i in rows], -1) for c, t in tensors.items()}
    rows = {key: {c: t[i] for c, t in tensors.items()} for i, key in enumerate(keys)}
    return {"table": table, "keys": keys, "rows": rows, "tracks": tracks}


@pytest.fixture
def moto_s3(tmp_path):
    """reliability_support.moto_s3 (a real moto S3 server on 127.0.0.1): its folder is not on sys.path here."""
    path = Path(__file__).resolve().parents[1] / "reliability" / "reliability_support.py"
    spec = importlib.util.spec_from_file_location("reliability_support", path)
    support = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(support)
    with support.moto_s3(tmp_path) as endpoint:
        yield endpoint
