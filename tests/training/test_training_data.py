"""Training data refused before the first step: shards whose STFT geometry cannot invert (issue 20, item 5)."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from stemforge.training.config import DataConfig
from stemforge.training.data import DataError, inspect_data
from stemforge_testing import read_manifest


def test_shards_whose_hop_cannot_invert_are_refused(roots, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(roots[1], out)
    [manifest] = [read_manifest(p) for p in (out / "runs").glob("*.json")]
    for shard in manifest["shards"]:  # a run written before the config refused this geometry
        table = pq.read_table(out / shard)
        metadata = dict(table.schema.metadata)
        config = json.loads(metadata[b"stemforge.config"])
        config["model"]["hop_length"] = config["model"]["n_fft"]
        metadata[b"stemforge.config"] = json.dumps(config).encode()
        pq.write_table(table.replace_schema_metadata(metadata), out / shard)
    n_fft = config["model"]["n_fft"]
    with pytest.raises(DataError) as caught:
        inspect_data(DataConfig(roots=(str(out),)))
    assert str(caught.value) == (f"{out / manifest['shards'][0]}: hop_length {n_fft} must be less than n_fft {n_fft}: "
                                 "frames that do not overlap cannot be inverted (use n_fft/2 or n_fft/4)")
