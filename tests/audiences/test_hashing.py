"""SHA-256 column hashing: blanks stay blank, digests pass through, output is always 64 lowercase hex."""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from audiences import hashing
from audiences.hashing import sha256_column

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_hashes_utf8_of_each_value_and_keeps_the_index() -> None:
    s = pd.Series(["john.doe@example.com", "josé", "山田"], index=[7, 3, 9])
    out = sha256_column(s)
    assert out.tolist() == [_sha("john.doe@example.com"), _sha("josé"), _sha("山田")]
    assert out.index.tolist() == [7, 3, 9]


def test_blank_values_stay_blank_and_are_never_hashed() -> None:
    out = sha256_column(pd.Series(["", None, "   ", "\u3000", "x"], dtype="str"))
    assert out.tolist() == ["", "", "", "", _sha("x")]
    assert EMPTY_SHA256 not in out.tolist()


def test_digests_pass_through_lowercased_not_hashed_twice() -> None:
    digest = _sha("john.doe@example.com")
    out = sha256_column(pd.Series([digest.upper(), digest, digest[:63]]))
    assert out.tolist() == [digest, digest, _sha(digest[:63])]


def test_repetitive_columns_hash_the_same_as_distinct_ones() -> None:
    repetitive = pd.Series(["us", "gb", "jp", ""] * 3000)
    distinct = pd.Series([f"user{i}@example.com" for i in range(5000)])
    assert sha256_column(repetitive).tolist() == [_sha(v) if v else "" for v in repetitive]
    assert sha256_column(distinct).tolist() == [_sha(v) for v in distinct]


@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=50))
def test_every_cell_is_blank_or_64_lowercase_hex_and_deterministic(values: list[str | None]) -> None:
    s = pd.Series(values, dtype="str")
    out = sha256_column(s).tolist()
    assert all(cell == "" or (len(cell) == 64 and set(cell) <= set("0123456789abcdef")) for cell in out)
    assert EMPTY_SHA256 not in out
    assert sha256_column(s).tolist() == out


def test_duckdb_digests_equal_hashlib_in_order() -> None:
    """Above the small-column cut-off DuckDB hashes; it must give hashlib's digests, row for row."""
    values = pa.array([f"{i}-é-山田-{i % 97}" for i in range(300_000)])  # past DuckDB's row groups
    assert hashing._digests(values).equals(hashing.hashlib_digests(values))
    small = values.slice(0, hashing._SMALL - 1)
    assert hashing._digests(small).equals(hashing.hashlib_digests(small))


def test_threads_hash_at_once_on_their_own_cursors() -> None:
    """Each thread hashes on its own cursor of the process's one database; all at once, still exact."""
    from concurrent.futures import ThreadPoolExecutor

    columns = [pa.array([f"{t}-{i}" for i in range(20_000)]) for t in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(hashing._digests, columns))
    assert all(got.equals(hashing.hashlib_digests(col)) for got, col in zip(results, columns, strict=True))
