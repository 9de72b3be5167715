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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(1, 30), cell, cell), max_size=5), max_size=3),
    st.integers(0, 3),
)
def test_concat_gives_every_issue_in_row_order_on_a_fresh_index(
    parts: list[list[tuple[int, str, str]]], offset: int
) -> None:
    """One part or several, sorted or not, on any index: the rows in order (stable), indexed 0..n-1."""
    frames = [frame(rows).set_axis(range(offset, offset + len(rows))) for rows in parts]
    out = issues.concat(frames)
    everything = [row for rows in parts for row in rows]
    expected = [everything[i] for i in sorted(range(len(everything)), key=lambda i: everything[i][0])]
    assert list(out.itertuples(index=False, name=None)) == [
        (r, i, "meta", "title", "error", "too_long", d) for r, i, d in expected
    ]
    assert list(out.index) == list(range(len(expected))) and out["row"].dtype == "int64"


def test_concat_of_one_part_in_order_is_that_part() -> None:
    part = frame([(1, "a", ""), (1, "b", ""), (4, "c", "")])
    assert issues.concat([issues.empty(), part]) is part
