"""The Parquet writer: row groups bounded by bytes at full size, values and order kept, and the rows' frame
layout recorded for their readers."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from stemforge.config.run import build_config
from stemforge.pipeline.engine.multi_band import MultiBandLayout
from stemforge.pipeline.engine.single_band import SingleBandLayout
from stemforge.pipeline.engine.layout import recorded_layout
from stemforge.pipeline.sinks import ShardWriter
from stemforge.shards import tensor_to_numpy
from stemforge.transforms import load_band_params

BINS, FRAMES = 1025, 256  # separate.yaml's rows: n_fft 2048, segment_frames 256


def _row(segment: int, rng: np.random.Generator) -> dict:
    row = {"track_key": "k", "source": "s.flac", "variant": 0, "segment": segment, "start_frame": segment * FRAMES,
           "num_frames": FRAMES, "sample_rate": 44100, "n_fft": 2048, "hop_length": 1024, "seed": 1,
           "lowpass_cutoff_hz": None, "lowpass_q": None, "gain_db": None, "augment_params": "[]", "stem_gain": 1.0}
    for name in ("mixture", "instruments", "vocals"):
        row[name] = rng.random((2, BINS, FRAMES), dtype=np.float32).astype(np.float16)
    return row


@pytest.mark.parametrize("group_mib", [32, 8])
def test_row_groups_hold_at_most_row_group_bytes_of_spectrograms(tmp_path, group_mib):
    config = build_config({"model": {"stems": ["instruments", "vocals"]},
                           "output": {"uri": str(tmp_path), "row_group_bytes": group_mib * 2**20}})
    writer = ShardWriter(config, "0" * 64, SingleBandLayout(config.model), "run", {})
    rng = np.random.default_rng(0)
    rows = [_row(i, rng) for i in range(23)]
    shards = [path for row in rows for path in writer.add(row)] + writer.close()
    [shard] = shards
    parquet = pq.ParquetFile(tmp_path / shard)
    row_bytes = 3 * 2 * BINS * FRAMES * 2
    per_group = group_mib * 2**20 // row_bytes
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
    assert sizes == [per_group] * (23 // per_group) + ([23 % per_group] if 23 % per_group else [])
    table = parquet.read()
    assert table.column("segment").to_pylist() == list(range(23))
    vocals = tensor_to_numpy(table.column("vocals"))
    np.testing.assert_array_equal(vocals, np.stack([r["vocals"] for r in rows]))


def test_scalar_columns_carry_statistics_and_spectrogram_columns_none(tmp_path):
    config = build_config({"model": {"stems": ["instruments", "vocals"]}, "output": {"uri": str(tmp_path)}})
    writer = ShardWriter(config, "0" * 64, SingleBandLayout(config.model), "run", {})
    rng = np.random.default_rng(1)
    [shard] = [path for row in (_row(i, rng) for i in range(3)) for path in writer.add(row)] + writer.close()
    group = pq.ParquetFile(tmp_path / shard).metadata.row_group(0)
    stats = {group.column(i).path_in_schema.split(".")[0]: group.column(i) for i in range(group.num_columns)}
    assert {name for name, column in stats.items() if not column.is_stats_set} == {"mixture", "instruments", "vocals"}
    assert (stats["segment"].statistics.min, stats["segment"].statistics.max) == (0, 2)
    assert stats["track_key"].statistics.max == "k"


def test_shards_record_what_their_rows_bins_are(tmp_path):
    config = build_config({"model": {"stems": ["instruments", "vocals"], "n_fft": 2048, "hop_length": 1024},
                           "output": {"uri": str(tmp_path)}})
    table = load_band_params("4band_v2")
    recorded = []
    for layout in (SingleBandLayout(config.model), MultiBandLayout(config.model, table, True)):
        writer = ShardWriter(config, "0" * 64, layout, f"run-{len(recorded)}", {})
        [shard] = writer.add(_row(0, np.random.default_rng(2))) + writer.close()
        recorded.append(recorded_layout(pq.ParquetFile(tmp_path / shard).schema_arrow.metadata, config.model))
    single, multi = recorded
    assert single.bins == multi.bins == BINS
    assert single.bin_hz(44100) == 44100 / 2048 and multi.bin_hz(44100) is None
    assert multi.bands == table
