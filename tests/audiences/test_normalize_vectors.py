"""Known-answer vectors written from specs/audiences.md: normalized value, status and hashed cell."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from audiences import normalize as nz
from audiences.exports import HASHED_COLUMNS, TEMPLATES, export_frame

VECTORS = Path(__file__).parent / "vectors" / "normalize_vectors.csv"
HEX64 = re.compile(r"[0-9a-f]{64}")
# vector key → (input column, output column per platform)
OUTPUT = {
    "first_initial": ("first_name", {"meta": "fi"}),
    "doby": ("birth_date", {"meta": "doby"}),
    "dobm": ("birth_date", {"meta": "dobm"}),
    "dobd": ("birth_date", {"meta": "dobd"}),
}


class Vector(NamedTuple):
    platform: str
    key: str
    country: str | None
    input: str | None
    expected: str
    status: str
    rule: str


def _decode(text: str) -> str:
    """``\\uXXXX``, ``\\t`` and ``\\n`` escapes make invisible characters readable in the file."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\\t", "\t").replace("\\n", "\n")


def _load() -> list[Vector]:
    with VECTORS.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        Vector(
            platform=row["platform"],
            key=row["key"],
            country=row["country"] or None,
            input=None if row["input"] == "<null>" else _decode(row["input"]),
            expected=row["expected"],
            status=row["status"],
            rule=row["rule"],
        )
        for row in rows
    ]


ALL = _load()


def _normalize(v: Vector) -> nz.Normalized:
    s = pd.Series([v.input], dtype="str")
    p, c = v.platform, v.country
    if v.key in ("doby", "dobm", "dobd"):
        return nz.birth_parts(s, c)[("doby", "dobm", "dobd").index(v.key)]
    call = {
        "email": lambda: nz.normalize_email(s, p),
        "phone": lambda: nz.normalize_phone(s, c, p),
        "first_name": lambda: nz.normalize_name(s, p),
        "last_name": lambda: nz.normalize_name(s, p),
        "first_initial": lambda: nz.first_initial(nz.normalize_name(s, p)),
        "city": lambda: nz.normalize_city(s, p),
        "state": lambda: nz.normalize_state(s, c, p),
        "zip": lambda: nz.normalize_zip(s, c, p),
        "country": lambda: nz.normalize_country(s, None, p),  # as export_frame calls it
        "gender": lambda: nz.normalize_gender(s, p),
        "madid": lambda: nz.normalize_madid(s),
        "extern_id": lambda: nz.normalize_extern_id(s),
    }
    return call[v.key]()


def _output_column(v: Vector) -> tuple[str, str]:
    if v.key in OUTPUT:
        source, columns = OUTPUT[v.key]
        return source, columns[v.platform]
    return v.key, next(col for col, key in TEMPLATES[v.platform] if key == v.key)


def test_there_are_enough_vectors_for_every_key() -> None:
    assert len(ALL) >= 150
    for key in (*nz.KEYS, "first_initial", "doby", "dobm", "dobd"):
        if key != "birth_date":
            assert any(v.key == key for v in ALL), key
    for country in ("US", "GB", "JP", "DE", "FR", "BR", "CA"):
        assert sum(v.key == "phone" and v.country == country for v in ALL) >= 2, country


@pytest.mark.parametrize("v", ALL, ids=[f"{v.platform}-{v.key}-{v.rule}" for v in ALL])
def test_normalized_value_and_status(v: Vector) -> None:
    result = _normalize(v)
    assert result.values.tolist() == [v.expected]
    assert result.status.tolist() == [v.status]


@pytest.mark.parametrize("v", ALL, ids=[f"{v.platform}-{v.key}-{v.rule}" for v in ALL])
def test_export_cell(v: Vector) -> None:
    source, column = _output_column(v)
    result = export_frame(pd.DataFrame({source: [v.input]}, dtype="str"), v.platform, v.country)
    cell = result.frame[column].iloc[0]
    if column not in HASHED_COLUMNS[v.platform] or v.expected == "" or HEX64.fullmatch(v.expected):
        assert cell == v.expected
    else:
        assert cell == hashlib.sha256(v.expected.encode("utf-8")).hexdigest()
    assert result.counts[column][v.status] == 1
