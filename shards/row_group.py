"""A Parquet row group of shard rows being filled in place: the writer's buffer (``pipeline.sinks.ShardWriter``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from stemforge.shards.tensors import is_tensor, tensor_from_numpy, tensor_shape, value_type

_NUMPY = {pa.float16(): np.float16, pa.float32(): np.float32}


class RowGroup:
    """One Parquet row group being filled: each row's tensors are copied into preallocated column
    buffers as the row arrives, so the group's spectrograms exist once (no list of rows, no stack),
    and the table handed to Arrow views those buffers without a copy."""

    def __init__(self, schema: pa.Schema, capacity: int) -> None:
        self._schema = schema
        self._tensors = {f.name: np.empty((capacity, *tensor_shape(f.type)), _NUMPY[value_type(f.type)])
                         for f in schema if is_tensor(f.type)}
        self._scalars: dict[str, list[Any]] = {field.name: [] for field in schema if field.name not in self._tensors}
        self.rows = 0

    @property
    def full(self) -> bool:
        return self.rows == len(next(iter(self._tensors.values())))

    def add(self, row: dict[str, Any]) -> None:
        """Copy one row in (tensors ``[2, bins, frames]`` already in the column dtype)."""
        for name, buffer in self._tensors.items():
            buffer[self.rows] = row[name]
        for name, values in self._scalars.items():
            values.append(row[name])
        self.rows += 1

    def table(self) -> pa.Table:
        """The rows so far as a table of the shard schema (tensor columns are views of the buffers)."""
        arrays = []
        for field in self._schema:
            if field.name in self._tensors:
                arrays.append(tensor_from_numpy(self._tensors[field.name][: self.rows]))
            else:
                arrays.append(pa.array(self._scalars[field.name], type=field.type))
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def clear(self) -> None:
        """Empty the group; its buffers are reused by the next one."""
        for values in self._scalars.values():
            values.clear()
        self.rows = 0


def rows_per_group(schema: pa.Schema, group_bytes: int) -> int:
    """How many rows fit ``group_bytes`` of uncompressed tensor data (at least one)."""
    row_bytes = sum(int(np.prod(tensor_shape(f.type))) * value_type(f.type).bit_width // 8
                    for f in schema if is_tensor(f.type))
    return max(1, group_bytes // max(row_bytes, 1))
