"""A saved run's DataFrames as bytes for a database: Arrow IPC, through ``pyarrow``.

``encode_frame`` writes one Arrow IPC stream (the format any Arrow reader opens: pyarrow's
``ipc.open_stream``, polars' ``read_ipc_stream``, DuckDB, R's arrow) with zstd-compressed
buffers and pandas' schema metadata, so the round trip is exact: dtypes (int64, int32,
float64, float32, bool, pandas 3's ``str``, ``object`` holding text), NaN, +-inf, -0.0 and
subnormals bit for bit, missing text, and the index (a RangeIndex as metadata, any other as
a column). Nothing is pickled: Arrow buffers are typed arrays, and ``decode_frame`` refuses
any column type outside the list above before pandas sees it, so a tampered database row can
at worst raise ValueError. MAX_FRAME_BYTES bounds what is read and what it decodes to (the
decoded size is known only after reading: this database is the server's own file, not input
from a browser).

Rows written before Arrow hold the GLF1 format; ``decode_frame`` reads them through
``legacy.decode_glf1`` (old databases still open; nothing writes GLF1 any more).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from dashboard.runs.legacy import decode_glf1

ARROW_STREAM = b"\xff\xff\xff\xff"  # an Arrow IPC stream's first message starts so
ARROW_FILE = b"ARROW1"  # an Arrow IPC file's magic (read too; the stream is smaller)
MAX_FRAME_BYTES = 256 * 1024 * 1024  # refuse a stored frame larger than this, read or decoded
COMPRESSION = "zstd"
STORABLE = ("int64", "int32", "float64", "float32", "bool", "str", "object")
_ARROW_TYPES = (  # what a stored column may be in Arrow (null: an all-missing text column)
    pa.int64(),
    pa.int32(),
    pa.float64(),
    pa.float32(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.null(),
)


def encode_frame(frame: pd.DataFrame) -> bytes:
    """A DataFrame -> Arrow IPC stream bytes (ValueError for a column name, dtype or cell it cannot
    keep exactly: names are strings, dtypes in STORABLE, an object column holds text)."""
    for name in frame.columns:
        if not isinstance(name, str):
            raise ValueError(f"column names must be strings; got {name!r}")
        dtype = str(frame[name].dtype)
        if dtype not in STORABLE:
            raise ValueError(f"column {name!r} has dtype {dtype}; storable: {', '.join(STORABLE)}")
        if dtype == "object":
            _check_text(name, frame[name])
    try:
        table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise ValueError(f"frame cannot be stored: {err}") from err
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=COMPRESSION)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_frame(blob: bytes) -> pd.DataFrame:
    """Bytes from encode_frame (or the old GLF1 encoder) -> the DataFrame; ValueError if
    they are neither."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ValueError(f"stored frame is not bytes but {type(blob).__name__}")
    if len(blob) > MAX_FRAME_BYTES:
        raise ValueError(f"stored frame is larger than {MAX_FRAME_BYTES:,} bytes")
    data = bytes(blob)
    if data.startswith(ARROW_FILE):
        open_ipc = pa.ipc.open_file
    elif data.startswith(ARROW_STREAM):
        open_ipc = pa.ipc.open_stream
    else:
        return decode_glf1(data)
    try:
        table = open_ipc(pa.py_buffer(data)).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"stored frame is damaged: {err}") from err
    for field in table.schema:
        if field.type not in _ARROW_TYPES:
            raise ValueError(f"stored column {field.name!r} has an unstorable type {field.type}")
    if table.nbytes > MAX_FRAME_BYTES:
        raise ValueError(f"stored frame inflates beyond {MAX_FRAME_BYTES:,} bytes")
    try:
        frame = table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError, KeyError) as err:
        raise ValueError(f"stored frame has damaged pandas metadata: {err}") from err
    texts = _object_columns(table.schema)
    for name in frame.columns:
        dtype = str(frame[name].dtype)
        if dtype not in STORABLE:
            raise ValueError(f"stored column {name!r} decodes to dtype {dtype}")
        if name in texts:  # pandas 3 reads Arrow text as 'str'; the frame held objects
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _object_columns(schema: pa.Schema) -> set[str]:
    """Columns that were ``object`` in the encoded frame (pandas' schema metadata)."""
    try:
        columns = (schema.pandas_metadata or {}).get("columns", [])
        return {c["name"] for c in columns if c.get("numpy_type") == "object"}
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"stored frame has damaged pandas metadata: {err}") from err


def _check_text(name: str, series: pd.Series) -> None:
    """An object column is stored as Arrow text: every cell a str or None."""
    for value in series.tolist():
        if value is None or isinstance(value, str):
            continue
        raise ValueError(f"column {name!r} holds a {type(value).__name__}; storable: str")
