"""The Parquet shard format that the pipeline writes and the training side reads, with no Beam: tensor
columns as nested fixed-size lists (their shape survives in pyarrow, Hugging Face `datasets`, DuckDB, Polars
and pandas), and the committed shards of an output root, found from its run manifests."""

from shards.discovery import committed_manifests, committed_shards
from shards.tensors import is_tensor, tensor_from_numpy, tensor_shape, tensor_to_numpy, tensor_type, value_type

__all__ = [
    "committed_manifests",
    "committed_shards",
    "is_tensor",
    "tensor_from_numpy",
    "tensor_shape",
    "tensor_to_numpy",
    "tensor_type",
    "value_type",
]
