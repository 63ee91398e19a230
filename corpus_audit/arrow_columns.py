"""Arrow arrays from Python lists, built from buffers.

``pyarrow.array`` imports pandas the first time it converts a Python sequence (about 0.3 s, more than a
scan task spends on ten thousand documents), and a scan worker has no other use for pandas. These
builders cover the types of the annotation schema, give the same arrays as ``pyarrow.array`` (the tests
compare them), and import nothing but numpy.

>>> import pyarrow as pa
>>> column(["a", None, "ç"], pa.string()).to_pylist()
['a', None, 'ç']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def column(values: list[Any], typ: pa.DataType) -> pa.Array:
    """``pa.array(values, type=typ)`` for string, int64, float64, bool and lists of structs of those."""
    if pa.types.is_string(typ):
        return _strings(values)
    if pa.types.is_int64(typ) or pa.types.is_float64(typ):
        return _numbers(values, typ)
    if pa.types.is_boolean(typ):
        return _booleans(values)
    if pa.types.is_list(typ) and pa.types.is_struct(typ.value_type):
        return _list_of_structs(values, typ)
    raise TypeError(f"no buffer builder for {typ}")


def _validity(values: list[Any]) -> tuple[pa.Buffer | None, int]:
    nulls = values.count(None)
    if not nulls:
        return None, 0
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def _strings(values: list[Any]) -> pa.Array:
    validity, nulls = _validity(values)
    encoded = [v.encode("utf-8", "surrogatepass") if v is not None else b"" for v in values]
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(offsets.astype(np.int32)),
                                                                pa.py_buffer(b"".join(encoded))], null_count=nulls)
    big = pa.Array.from_buffers(pa.large_string(), len(values), [validity, pa.py_buffer(offsets),
                                                                 pa.py_buffer(b"".join(encoded))], null_count=nulls)
    return big.cast(pa.string())  # raises as pa.array would when one array cannot hold the bytes


def _numbers(values: list[Any], typ: pa.DataType) -> pa.Array:
    validity, nulls = _validity(values)
    dtype = np.int64 if pa.types.is_int64(typ) else np.float64
    data = np.array([0 if v is None else v for v in values] if nulls else values, dtype=dtype)
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(data)], null_count=nulls)


def _booleans(values: list[Any]) -> pa.Array:
    validity, nulls = _validity(values)
    bits = np.packbits(np.array([bool(v) for v in values], dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [validity, pa.py_buffer(bits)], null_count=nulls)


def _list_of_structs(values: list[Any], typ: pa.DataType) -> pa.Array:
    validity, nulls = _validity(values)
    lengths = np.fromiter((0 if v is None else len(v) for v in values), dtype=np.int64, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    items = [item for v in values if v for item in v]
    struct = typ.value_type
    children = [column([item.get(f.name) for item in items], f.type) for f in struct]
    inner = pa.StructArray.from_arrays(children, fields=list(struct))
    return pa.Array.from_buffers(typ, len(values), [validity, pa.py_buffer(offsets)], null_count=nulls,
                                 children=[inner])
