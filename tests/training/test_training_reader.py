"""ShardDataset on shards the real pipeline wrote, against pyarrow's reading of the committed shards: every row once
across ranks and DataLoader workers, crops equal to the tracks' frames, filters, shuffling, exact resume, S3."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from stemforge_testing import fresh_python
from torch.utils.data import DataLoader

from stemforge.training import ShardDataset

KEYS = ("track_key", "variant", "segment")
REPO = Path(__file__).resolve().parents[2]


def _samples(dataset: ShardDataset, workers: int = 0, batch_size: int = 3) -> list[dict]:
    """Samples in delivery order, through a DataLoader (batches split back into samples)."""
    out = []
    for batch in DataLoader(dataset, batch_size=batch_size, num_workers=workers):
        for i in range(len(batch["track_key"])):
            out.append({k: v[i] if isinstance(v, list) else v[i].item() if v.dim() == 1 else v[i]
                        for k, v in batch.items()})
    return out


def _keys(samples: list[dict], names=KEYS) -> list[tuple]:
    return [tuple(s[n] for n in names) for s in samples]


def test_importing_training_imports_no_beam():
    """Every training module, its config loader included, in a fresh interpreter: no Beam, no Beam graph, and no
    log filter put on the root logger (the pipeline package's import used to install one)."""
    code = ("import logging, sys, stemforge.training, stemforge.training.config, stemforge.training.data, "
            "stemforge.training.reader, stemforge.training.trainer, stemforge.training.evaluate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam' "
            "or m in ('stemforge.pipeline.graph', 'stemforge.pipeline.logs')), logging.getLogger().filters)")
    assert fresh_python(code) == "[] []\n"


def test_every_committed_row_exactly_once_across_two_ranks_of_two_workers(roots, expected):
    got = []
    for rank in (0, 1):
        dataset = ShardDataset(roots, scalars=KEYS, rank=rank, world_size=2, equal_ranks=False, seed=3)
        samples = _samples(dataset, workers=2)
        assert len(samples) == len(dataset)
        got += samples
    assert Counter(_keys(got)) == Counter(expected["keys"])  # the stray shard and the killed run are never read
    assert len(set(expected["keys"])) == len(expected["keys"])
    assert not any("stray" in f or "killed" in f for f in dataset.index.files)
    for sample in got:
        for column, values in expected["rows"][tuple(sample[n] for n in KEYS)].items():
            assert sample[column].dtype == torch.float32 and sample[column].shape == values.shape
            np.testing.assert_array_equal(sample[column].numpy(), values.astype(np.float32))


def test_equal_ranks_yield_equal_counts_and_drop_fewer_than_world_size(roots, expected):
    per_rank = [_keys(list(ShardDataset(roots, scalars=KEYS, rank=r, world_size=3))) for r in range(3)]
    assert len({len(keys) for keys in per_rank}) == 1 and len(per_rank[0]) == len(expected["keys"]) // 3
    union = [key for keys in per_rank for key in keys]
    assert len(set(union)) == len(union) and len(expected["keys"]) - len(union) < 3


DISTRIBUTED = """
import json, sys, torch.distributed as dist
from stemforge.training import ShardDataset
dist.init_process_group("gloo", init_method=sys.argv[2], rank=int(sys.argv[1]), world_size=2)
dataset = ShardDataset(json.loads(sys.argv[3]), columns=["clean"], scalars=("track_key", "variant", "segment"))
keys = [[s["track_key"], s["variant"], s["segment"]] for s in dataset]
print(json.dumps({"rank": dataset.rank, "world": dataset.world_size, "len": len(dataset), "keys": keys}))
dist.destroy_process_group()
"""


def test_rank_and_world_size_come_from_torch_distributed(roots, expected, tmp_path):
    argv = [sys.executable, "-c", DISTRIBUTED]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([*argv, str(rank), f"file://{tmp_path}/store", json.dumps(roots)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, text=True) for rank in (0, 1)]
    results = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    assert results[0]["len"] == results[1]["len"] == len(results[0]["keys"]) == len(results[1]["keys"])
    union = [tuple(key) for r in results for key in r["keys"]]
    assert len(set(union)) == len(union) == len(expected["keys"]) // 2 * 2 and set(union) <= set(expected["keys"])


@pytest.mark.parametrize("shuffle", [True, False])
def test_crops_are_the_tracks_frames_and_cross_segment_rows(roots, expected, shuffle):
    scalars = ("track_key", "variant", "start_frame", "num_frames")
    samples = list(ShardDataset(roots, cropsize=40, shuffle=shuffle, seed=1, scalars=scalars))
    crossing = 0
    covered = Counter()
    for sample in samples:
        track = expected["tracks"][sample["track_key"], sample["variant"]]
        start, frames = sample["start_frame"], sample["num_frames"]
        for column, values in track.items():
            assert sample[column].shape == (2, 257, 40)
            np.testing.assert_array_equal(sample[column][..., :frames].numpy(), values[..., start:start + frames])
            assert not sample[column][..., frames:].any()  # a run shorter than the crop is zero-padded at its end
        crossing += start // 16 != (start + frames - 1) // 16
        covered.update((sample["track_key"], sample["variant"], f) for f in range(start, start + frames))
    assert crossing > len(samples) // 2
    if not shuffle:  # crops tile each run: every frame of every track exactly once
        every = {(k, v, f) for (k, v), track in expected["tracks"].items() for f in range(track["mixture"].shape[-1])}
        assert set(covered) == every and set(covered.values()) == {1}
        assert any(s["num_frames"] < 40 for s in samples)


@pytest.mark.parametrize("filters, keep", [
    ({"variant": 1}, lambda t: pc.equal(t["variant"], 1)),
    ({"lowpass_cutoff_hz": {"min": 2500, "max": 3100}},
     lambda t: pc.and_(pc.greater_equal(t["lowpass_cutoff_hz"], 2500), pc.less_equal(t["lowpass_cutoff_hz"], 3100))),
    ({"track_key": ["a", "d"], "segment": {"max": 5}},
     lambda t: pc.and_(pc.is_in(t["track_key"], value_set=pc.cast(["a", "d"], "string")),
                       pc.less_equal(t["segment"], 5))),
])
def test_filters_keep_what_pyarrow_keeps(roots, expected, filters, keep):
    table = expected["table"].filter(keep(expected["table"]))
    wanted = list(zip(*(table.column(c).to_pylist() for c in KEYS)))
    assert 0 < len(wanted) < len(expected["keys"])
    assert Counter(_keys(list(ShardDataset(roots, columns=["vocals"], filters=filters, scalars=KEYS)))) == Counter(wanted)


def test_shuffle_is_seeded_and_differs_between_epochs(roots):
    def order(seed: int, epoch: int) -> list[tuple]:
        dataset = ShardDataset(roots, columns=["mixture"], cropsize=24, seed=seed, scalars=("track_key", "start_frame"))
        dataset.set_epoch(epoch)
        return _keys(list(dataset), ("track_key", "start_frame"))

    first = order(0, 0)
    assert order(0, 0) == first
    assert order(0, 1) != first and order(1, 0) != first
    assert len(order(0, 1)) == len(first)


@pytest.mark.parametrize("done", [7, -2])
def test_resume_yields_exactly_what_an_uninterrupted_epoch_yields_next(roots, done):
    """After an odd number of batches (worker 1's turn next) and in the tail, where a worker is done."""
    def loader(**resume) -> list[dict]:
        dataset = ShardDataset(roots, cropsize=24, seed=7, buffer_size=8, scalars=("track_key", "start_frame"))
        dataset.set_epoch(2)
        if resume:
            dataset.resume(2, **resume)
        return list(DataLoader(dataset, batch_size=4, num_workers=2))

    whole = loader()
    done %= len(whole)
    step = sum(len(batch["track_key"]) for batch in whole[:done])
    rest = loader(step=step, batch_size=4)
    assert len(rest) == len(whole) - done
    for got, want in zip(rest, whole[done:]):
        assert got["track_key"] == want["track_key"] and torch.equal(got["start_frame"], want["start_frame"])
        assert all(torch.equal(got[c], want[c]) for c in ("mixture", "instruments", "vocals", "clean"))


def test_bad_arguments_are_refused_with_what_is_wrong(roots, tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        ShardDataset([roots[0], str(tmp_path)])
    with pytest.raises(ValueError, match="'cutoff'.*scalar columns: track_key, source, variant"):
        ShardDataset(roots, filters={"cutoff": 1})
    with pytest.raises(ValueError, match="'bass'.*tensor columns: mixture, instruments, vocals, clean"):
        ShardDataset(roots, columns=["bass"])
    for cropsize in (0, -3, 2.5, True, "256"):
        with pytest.raises(ValueError, match="cropsize must be a positive int"):
            ShardDataset(roots, cropsize=cropsize)
    with pytest.raises(ValueError, match="min"):
        ShardDataset(roots, filters={"variant": {"low": 1}})
    with pytest.raises(ValueError, match="rank 2"):
        ShardDataset(roots, rank=2, world_size=2)
    dataset = ShardDataset(roots)
    with pytest.raises(ValueError, match="inside a batch"):
        dataset.resume(0, 5, batch_size=4)
        list(dataset)


def test_reading_from_s3_gives_the_local_samples(roots, moto_s3):
    s3fs = pytest.importorskip("s3fs")
    options = {"endpoint_url": moto_s3, "key": "testing-key-id", "secret": "testing-secret-key"}
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    fs.mkdir("corpus")
    fs.put(f"{roots[0]}/", "corpus/one/", recursive=True)
    args = {"cropsize": 40, "seed": 4, "scalars": ("track_key", "variant", "start_frame"), "world_size": 2, "rank": 1}
    local = list(DataLoader(ShardDataset(roots[0], **args), batch_size=2, num_workers=2))
    remote = list(DataLoader(ShardDataset("s3://corpus/one", storage_options=options, **args), batch_size=2,
                             num_workers=2))
    assert len(remote) == len(local) > 0
    for got, want in zip(remote, local):
        assert got["track_key"] == want["track_key"] and torch.equal(got["start_frame"], want["start_frame"])
        assert torch.equal(got["vocals"], want["vocals"]) and torch.equal(got["clean"], want["clean"])


def test_float16_samples_are_the_stored_values(roots):
    """``dtype=torch.float16`` yields the stored values themselves (the shards hold float16), at half the size."""
    wide = list(ShardDataset(roots, columns=["mixture"], shuffle=False))
    narrow = list(ShardDataset(roots, columns=["mixture"], shuffle=False, dtype=torch.float16))
    assert narrow[0]["mixture"].dtype == torch.float16 and len(narrow) == len(wide) > 0
    assert all(torch.equal(a["mixture"], b["mixture"].float()) for a, b in zip(wide, narrow))
