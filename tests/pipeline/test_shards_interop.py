"""A run's shards open with their tensor shape, and their values, in Hugging Face `datasets`, DuckDB, Polars and
pandas without custom code (the recipes of docs/datasets.md), and pyarrow's access stays zero-copy."""

import json

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from stemforge_testing import write_config

from stemforge.pipeline.cli import main
from stemforge.shards import committed_shards, tensor_to_numpy

COLUMNS = ("mixture", "instruments", "vocals")


@pytest.fixture(scope="module")
def shards(corpus, tiny_checkpoint, tmp_path_factory):
    """A float16 run (as configs/separate.yaml writes) and its committed rows read by pyarrow."""
    folder, _ = corpus
    out = tmp_path_factory.mktemp("interop")
    config = write_config(out.parent / "f16.yaml", output={"spectrogram_dtype": "float16", "segment_frames": 40})
    assert main(["run", "--config", str(config), "--input", str(folder), "--output", str(out),
                 "--checkpoint", str(tiny_checkpoint), "--quiet"]) == 0
    paths = committed_shards(str(out))
    table = pq.read_table(paths)
    expected = {name: tensor_to_numpy(table.column(name)) for name in COLUMNS}
    return paths, table, expected


def test_pyarrow_reads_the_tensors_zero_copy(shards):
    paths, _, expected = shards
    column = pq.read_table(paths[0], columns=["mixture"]).column("mixture").combine_chunks()
    values = tensor_to_numpy(column)
    flat = column.flatten().flatten().flatten().to_numpy()  # the recipe without stemforge installed
    assert np.shares_memory(values, flat) and values.dtype == np.float16
    assert values.shape[1:] == expected["mixture"].shape[1:] == (2, 257, 40)


def test_hugging_face_datasets_loads_them_with_their_shape(shards, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    paths, table, expected = shards
    data = datasets.load_dataset("parquet", data_files=paths, split="train", cache_dir=str(tmp_path / "hf"))
    assert data.num_rows == table.num_rows
    feature = data.features["vocals"]  # nested fixed-length lists of float16
    assert (feature.length, feature.feature.length, feature.feature.feature.length) == (2, 257, 40)
    rows = data.with_format("numpy")[:]
    for name in COLUMNS:
        values = rows[name]
        assert values.shape == expected[name].shape
        assert np.array_equal(values, expected[name].astype(values.dtype))
    first = data.with_format("torch")[0]["mixture"]
    assert tuple(first.shape) == (2, 257, 40)


def test_duckdb_reads_them_as_nested_arrays(shards):
    paths, table, expected = shards
    result = duckdb.sql(f"SELECT track_key, segment, vocals FROM read_parquet({json.dumps(paths)})")
    assert str(result.types[2]) == "FLOAT[][][]"
    rows = result.fetchall()
    assert len(rows) == table.num_rows
    got = np.array([row[2] for row in rows], dtype=np.float32)
    assert got.shape == expected["vocals"].shape
    assert np.array_equal(got, expected["vocals"].astype(np.float32))


def test_polars_reads_them_as_shaped_arrays(shards):
    paths, table, expected = shards
    frame = pl.read_parquet(paths)
    assert frame.schema["mixture"] == pl.Array(pl.Float16, shape=(2, 257, 40))
    assert np.array_equal(frame["mixture"].to_numpy(), expected["mixture"])
    assert frame["track_key"].to_list() == table.column("track_key").to_pylist()


def test_pandas_keeps_the_shape_in_its_arrow_dtype(shards):
    paths, _, expected = shards
    frame = pd.concat([pd.read_parquet(path, dtype_backend="pyarrow") for path in paths], ignore_index=True)
    assert "[40]" in str(frame["instruments"].dtype) and "[257]" in str(frame["instruments"].dtype)
    assert np.array(frame["instruments"][0], dtype=np.float32).shape == (2, 257, 40)
    values = np.array(frame["instruments"].tolist(), dtype=np.float32)
    assert np.array_equal(values, expected["instruments"].astype(np.float32))
