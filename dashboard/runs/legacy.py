"""Reading saved runs written before Arrow: the GLF1 frame format (decode only).

Databases written before ``codec.py`` switched to Arrow IPC hold their frames as GLF1;
``codec.decode_frame`` hands such bytes here, so old rows still open (nothing writes GLF1
any more; ``tests/data/runs_glf1.sqlite3`` is a database the old encoder wrote).

Layout, then zlib-compressed::

    b"GLF1" | header length (uint32, little-endian) | header (UTF-8 JSON) | number buffers

The header is ``{"rows": n, "columns": [[name, dtype, cells], ...]}`` in column order. A text
column (``object``, or pandas 3's ``str``) carries its cells there as a JSON list; a numeric
column (int64, int32, float64, float32, bool) carries ``null``, and its values follow the
header as little-endian bytes, column after column. Numbers are kept as their raw bytes, so
NaN, +-inf, -0.0 and 1e300 come back bit for bit, and quickly (a long run has ~200,000 floats).

Decoding only parses JSON and copies bytes into arrays: nothing is unpickled or evaluated,
so a tampered database row can at worst raise ValueError. The index was not stored: a decoded
frame has a fresh RangeIndex, as the telemetry frames do.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np
import pandas as pd

MAGIC = b"GLF1"
MAX_FRAME_BYTES = 256 * 1024 * 1024  # refuse to inflate a stored frame beyond this
NUMERIC = {"int64": "<i8", "int32": "<i4", "float64": "<f8", "float32": "<f4", "bool": "|u1"}
TEXT_DTYPES = ("object", "str")  # 'str': pandas 3's default string dtype (missing = NaN)
DTYPES = (*NUMERIC, *TEXT_DTYPES)
_SCALARS = (str, bool, int, float)  # what an object column's cells may be (or None)


def decode_glf1(blob: bytes) -> pd.DataFrame:
    """GLF1 bytes -> the DataFrame (ValueError if they are not such bytes)."""
    raw = _inflate(blob)
    if len(raw) < 8 or raw[:4] != MAGIC:
        raise ValueError("stored frame is not in the GLF1 format")
    (size,) = struct.unpack_from("<I", raw, 4)
    header = _parse(raw[8 : 8 + size])
    rows, columns = header.get("rows"), header.get("columns")
    if not isinstance(rows, int) or rows < 0 or not isinstance(columns, list):
        raise ValueError("stored frame has no valid 'rows' and 'columns'")
    offset = 8 + size
    names: list[str] = []
    series: list[pd.Series] = []
    for entry in columns:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise ValueError("stored frame column is not a [name, dtype, cells] triple")
        name, dtype, cells = entry
        if dtype not in DTYPES:
            raise ValueError(f"stored column {name!r} has an unknown dtype {dtype!r}")
        if dtype in NUMERIC:
            width = rows * np.dtype(NUMERIC[dtype]).itemsize
            chunk = raw[offset : offset + width]
            if cells is not None or len(chunk) != width:
                raise ValueError(f"stored column {name!r} is truncated or misplaced")
            offset += width
            series.append(_numbers(name, dtype, chunk))
        else:
            series.append(_texts(name, dtype, cells, rows))
        names.append(name)
    if offset != len(raw):
        raise ValueError("stored frame has bytes left over after its columns")
    if not series:
        return pd.DataFrame(index=pd.RangeIndex(rows))
    frame = pd.concat(series, axis=1, ignore_index=True)
    frame.columns = pd.Index(names)
    return frame


def _numbers(name: str, dtype: str, chunk: bytes) -> pd.Series:
    """A numeric column from its little-endian bytes (a writable, native-order copy)."""
    values = np.frombuffer(chunk, dtype=NUMERIC[dtype])
    if dtype == "bool" and values.size and values.max() > 1:
        raise ValueError(f"stored column {name!r} holds bytes that are not booleans")
    return pd.Series(values.astype(dtype), dtype=dtype)


def _texts(name: str, dtype: str, cells: Any, rows: int) -> pd.Series:
    """A text column from its JSON cells, each checked against the dtype."""
    allowed = (str,) if dtype == "str" else _SCALARS
    if not isinstance(cells, list) or len(cells) != rows:
        raise ValueError(f"stored column {name!r} has the wrong number of cells")
    if not all(v is None or isinstance(v, allowed) for v in cells):
        raise ValueError(f"stored column {name!r} holds cells that are not {dtype}")
    return pd.Series(cells, dtype=dtype)


def _inflate(blob: bytes) -> bytes:
    """zlib-decompress at most MAX_FRAME_BYTES; any damage becomes ValueError."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ValueError(f"stored frame is not bytes but {type(blob).__name__}")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob, MAX_FRAME_BYTES)
    except zlib.error as err:
        raise ValueError(f"stored frame is damaged: {err}") from err
    if inflater.unconsumed_tail:
        raise ValueError(f"stored frame inflates beyond {MAX_FRAME_BYTES:,} bytes")
    return raw


def _parse(head: bytes) -> dict[str, Any]:
    """The JSON header as a dict; any damage becomes ValueError."""
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"stored frame header is damaged: {err}") from err
    if not isinstance(header, dict):
        raise ValueError("stored frame header is not a JSON object")
    return header
