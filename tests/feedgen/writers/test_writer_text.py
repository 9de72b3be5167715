"""CSV and TSV details: quoting, line ends, flattening of tabs and line breaks, random round trips."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from writer_samples import platform_frame, render


def test_csv_header_is_bare_and_lines_end_with_lf() -> None:
    data = render("meta-csv", [platform_frame("meta").iloc[:1]])
    header, _, rest = data.partition(b"\n")
    assert header.startswith(b"id,title,description,")
    assert b"\r\n" not in rest


def test_tiktok_csv_is_keyed_by_sku_id() -> None:
    data = render("tiktok-csv", [platform_frame("tiktok")])
    assert data.startswith(b"sku_id,title,")


def test_additional_images_stay_one_csv_field() -> None:
    rows = list(csv.reader(io.StringIO(render("meta-csv", [platform_frame("meta")]).decode(), newline="")))
    col = rows[0].index("additional_image_link")
    assert rows[1][col].count(",") == 2
    assert len({len(r) for r in rows}) == 1


def test_tsv_turns_each_break_into_one_space() -> None:
    frame = platform_frame("google")
    frame.loc[0, "description"] = "a\r\nb\rc\nd\te"
    first_row = render("google-tsv", [frame]).decode().split("\n")[1].split("\t")
    assert first_row[list(frame.columns).index("description")] == "a b c d e"


def test_tsv_has_one_line_per_row_and_no_quotes_added() -> None:
    frame = platform_frame("google")
    lines = render("google-tsv", [frame]).decode().split("\n")
    assert lines[-1] == ""
    assert len(lines) == len(frame) + 2
    assert all(line.count("\t") == len(frame.columns) - 1 for line in lines[:-1])
    assert '"Quoted" start' in lines[2]


# Any text the cleaning step lets through: XML-legal characters, weighted towards the awkward ones.
_AWKWARD = st.sampled_from([*",\"'\t\r\n&<>;]= 緑茶é", "\r\n", "]]>", "&amp;"])
_TEXT = st.lists(
    st.one_of(
        _AWKWARD, st.characters(blacklist_categories=("Cs", "Cc")), st.sampled_from(["\t", "\n", "\r"])
    ),
    max_size=12,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=5))
def test_random_text_round_trips_through_csv(values: list[tuple[str, str]]) -> None:
    frame = platform_frame("meta").iloc[: len(values)].reset_index(drop=True)
    frame["title"] = pd.Series([v[0] for v in values], dtype="str")
    frame["description"] = pd.Series([v[1] for v in values], dtype="str")
    rows = list(csv.reader(io.StringIO(render("meta-csv", [frame]).decode(), newline="")))
    assert rows[1:] == frame.to_numpy().tolist()


@pytest.mark.parametrize("fmt", ["meta-csv", "google-tsv"])
def test_japanese_is_written_as_utf8(fmt: str) -> None:
    platform = fmt.split("-")[0]
    assert "緑茶 ティーバッグ".encode() in render(fmt, [platform_frame(platform)])
