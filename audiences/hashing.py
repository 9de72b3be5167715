"""SHA-256 of normalized values over whole columns: blanks stay blank, digests pass through.

Digests come from DuckDB's ``sha256`` (vectorised C++ over an Arrow column, about 3x a
``hashlib.sha256(v).hexdigest()`` loop, which keeps the GIL for short inputs so threads do not help);
columns under ``_SMALL`` values use ``hashlib``, where the query's fixed cost would dominate. Both give
the lowercase hex SHA-256 of the value's UTF-8 bytes, and the tests hold them to each other.
Repetitive columns (country, gender, birth year) are dictionary-encoded first and hashed once per
distinct value; a small sample decides (``per_distinct``, which the normalizers use too).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedgen.text import replace_rows

SHA256_HEX = r"^[0-9a-fA-F]{64}$"
_SAMPLE = 2048
_SMALL = 2000  # fewer values than this are hashed with hashlib
_LOCAL = threading.local()
_OPEN = threading.Lock()
_DATABASE: tuple[int, duckdb.DuckDBPyConnection] | None = None


def arrow_text(values: pd.Series | list[str | None]) -> pa.Array:
    """One contiguous Arrow string array (pandas may hand over several chunks)."""
    array = pa.array(values, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def is_sha256_hex(values: pa.Array) -> np.ndarray:
    """Rows that already hold a 64-hex SHA-256 digest (either case)."""
    found = np.zeros(len(values), dtype=bool)
    sized = np.flatnonzero(
        pc.fill_null(pc.equal(pc.binary_length(values), 64), False).to_numpy(zero_copy_only=False)
    )
    if len(sized):  # the regex runs only on 64-byte values, which are rare outside digests
        hits = pc.fill_null(pc.match_substring_regex(values.take(sized), SHA256_HEX), False)
        found[sized] = hits.to_numpy(zero_copy_only=False)
    return found


def sha256_array(values: pa.Array) -> pa.Array:
    """Lowercase hex SHA-256 of each value's UTF-8 bytes; "" where blank; digests lowercased, not rehashed."""
    values = values.cast(pa.string())
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), True).to_numpy(zero_copy_only=False)
    digest = is_sha256_hex(values)
    todo = np.flatnonzero(~blank & ~digest)
    empty = pa.scalar("", pa.string())
    out = (
        pc.if_else(pa.array(digest), pc.utf8_lower(values), empty)
        if digest.any()
        else pa.repeat(empty, len(values))
    )
    if not len(todo):
        return out
    if len(todo) == len(values):
        return _hash(values)
    hashed = _hash(values.take(todo))
    return replace_rows(out, todo, hashed)


def sha256_column(s: pd.Series) -> pd.Series:
    """``sha256_array`` over a Series of str; the index is kept."""
    return pd.Series(sha256_array(arrow_text(s)), index=s.index, dtype="str")


def per_distinct(
    values: pa.Array, transform: Callable[[pa.Array], pa.Array], always: bool = False
) -> pa.Array:
    """``transform`` per distinct value if the column repeats itself (or ``always``), else on it whole."""
    sample = values.slice(0, _SAMPLE)
    if always or len(pc.unique(sample)) * 2 < len(sample):
        encoded = pc.dictionary_encode(values)
        return transform(encoded.dictionary).take(encoded.indices)
    return transform(values)


def _hash(values: pa.Array) -> pa.Array:
    """Hash non-blank values, once per distinct value when the column repeats itself."""
    return per_distinct(values, _digests)


def _digests(values: pa.Array) -> pa.Array:
    """Lowercase hex SHA-256 of each (non-null) value, in order."""
    if len(values) < _SMALL:
        return hashlib_digests(values)
    table = pa.table({"v": values.cast(pa.string())})
    result = _duckdb().from_arrow(table).project("sha256(v) AS h").to_arrow_table()
    return result.column("h").combine_chunks().cast(pa.string())


def hashlib_digests(values: pa.Array) -> pa.Array:
    """The same digests with ``hashlib``, one call per value."""
    sha256 = hashlib.sha256
    return pa.array([sha256(v).hexdigest() for v in values.cast(pa.binary()).to_pylist()], type=pa.string())


def _duckdb() -> duckdb.DuckDBPyConnection:
    """This thread's cursor on this process's in-memory DuckDB (a forked worker opens its own).

    Opening a database costs tens of milliseconds; a cursor on it, microseconds: the threads each
    export starts get a cursor, not a database of their own.
    """
    held = getattr(_LOCAL, "held", None)
    if held is None or held[0] != os.getpid():
        with _OPEN:
            global _DATABASE
            if _DATABASE is None or _DATABASE[0] != os.getpid():
                _DATABASE = (os.getpid(), duckdb.connect(config={"preserve_insertion_order": True}))
            held = (os.getpid(), _DATABASE[1].cursor())
        _LOCAL.held = held
    return held[1]
