"""The Parquet shard format that the pipeline writes and the training side reads, with no Beam: tensor
columns as nested fixed-size lists (their shape survives in pyarrow, Hugging Face `datasets`, DuckDB, Polars
and pandas), and the committed shards of an output root, found from its run manifests."""

from stemforge.shards.discovery import committed_manifests, committed_shards
from stemforge.shards.manifest import RunDetail, RunManifest, committed_runs, read_run
from stemforge.shards.files import open_shard, open_shard_url, reading, threads_for
from stemforge.shards.paths import PathEscape
from stemforge.shards.tensors import is_tensor, tensor_from_numpy, tensor_shape, tensor_to_numpy, tensor_type, value_type

__all__ = [
    "PathEscape",
    "RunDetail",
    "RunManifest",
    "committed_manifests",
    "committed_runs",
    "committed_shards",
    "is_tensor",
    "open_shard",
    "open_shard_url",
    "read_run",
    "reading",
    "tensor_from_numpy",
    "tensor_shape",
    "tensor_to_numpy",
    "tensor_type",
    "threads_for",
    "value_type",
]
