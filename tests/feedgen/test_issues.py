"""Issue rows: rejects.csv text equals what ``csv.writer`` writes."""

from __future__ import annotations

import csv
import io

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from feedgen import issues

cell = st.text(
    alphabet=st.sampled_from([",", '"', "\r", "\n", " ", "a", "é", "\u2028", "\t", ";"]), max_size=6
)


def frame(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.Series([r for r, _, _ in rows], dtype="int64"),
            "id": pd.Series([i for _, i, _ in rows], dtype="str"),
            "platform": pd.Series(["meta"] * len(rows), dtype="str"),
            "field": pd.Series(["title"] * len(rows), dtype="str"),
            "severity": pd.Series(["error"] * len(rows), dtype="str"),
            "reason": pd.Series(["too_long"] * len(rows), dtype="str"),
            "detail": pd.Series([d for _, _, d in rows], dtype="str"),
        }
    )


def written(found: pd.DataFrame) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(found.itertuples(index=False, name=None))
    return buffer.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 10**12), cell, cell), max_size=6))
def test_csv_text_equals_csv_writer(rows: list[tuple[int, str, str]]) -> None:
    found = frame(rows)
    assert issues.csv_text(found) == written(found)


def test_csv_text_of_no_issues_is_empty() -> None:
    assert issues.csv_text(issues.empty()) == ""
