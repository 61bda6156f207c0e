"""Spectrogram tensors in Arrow: ``[2, bins, frames]`` per row as fixed-size lists nested three deep.

Arrow's ``arrow.fixed_shape_tensor`` extension keeps the shape only for readers that know the extension:
in Parquet it is a flat list, and `datasets` refuses it, DuckDB and pandas see flat vectors, Polars warns.
Nested fixed-size lists are plain Arrow and plain Parquet: every one of them keeps the shape (Polars as
``Array(Float16, shape=(2, bins, frames))``, `datasets` as nested ``List(..., length=n)``, DuckDB as
``FLOAT[][][]``, pandas as nested arrays). The values are one contiguous buffer either way, so converting
to and from numpy is zero-copy. Shards written before the change (the extension type) still read.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def tensor_type(value_type: pa.DataType, shape: tuple[int, ...] | list[int]) -> pa.DataType:
    """The nested fixed-size list type of one row of ``shape`` (outermost dimension first)."""
    kind = value_type
    for size in reversed(list(shape)):
        kind = pa.list_(kind, int(size))
    return kind


def is_tensor(kind: pa.DataType) -> bool:
    """Whether a column type is a tensor column (nested fixed-size lists, or the older extension type)."""
    return isinstance(kind, (pa.FixedShapeTensorType, pa.FixedSizeListType))


def tensor_shape(kind: pa.DataType) -> tuple[int, ...] | None:
    """One row's shape, or None for a column that is not a tensor."""
    if isinstance(kind, pa.FixedShapeTensorType):
        return tuple(kind.shape)
    shape = []
    while isinstance(kind, pa.FixedSizeListType):
        shape.append(kind.list_size)
        kind = kind.value_type
    return tuple(shape) or None


def value_type(kind: pa.DataType) -> pa.DataType:
    """The element type of a tensor column (float16 or float32)."""
    if isinstance(kind, pa.FixedShapeTensorType):
        return kind.value_type
    while isinstance(kind, pa.FixedSizeListType):
        kind = kind.value_type
    return kind


def tensor_from_numpy(values: np.ndarray) -> pa.Array:
    """``[rows, *shape]`` as a nested fixed-size list array (the buffer is shared, not copied)."""
    array: pa.Array = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(values.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, int(size))
    return array


def tensor_to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A tensor column as ``[rows, *shape]`` numpy; zero-copy for one chunk without nulls or offset."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column.type, pa.FixedShapeTensorType):
        return column.to_numpy_ndarray()
    shape = tensor_shape(column.type)
    if shape is None:
        raise TypeError(f"not a tensor column: {column.type}")
    values = column
    for _ in shape:
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False).reshape(len(column), *shape)
