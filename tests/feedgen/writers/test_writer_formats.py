"""One suite run against every feed format: golden bytes, parse-back, chunking, empty feeds."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest
from lxml import etree
from writer_samples import CHANNEL, assert_golden, render, split_rows

from feedgen.platforms import PLATFORMS
from feedgen.writers import filename_of, platform_of
from feedgen.writers._xml import G_NS, MAX_LINE_BYTES, REPEATED

G = f"{{{G_NS}}}"


def parse_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Header and rows as Python's csv module reads them (newline="" keeps CR inside fields)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return rows[0], rows[1:]


def parse_tsv(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Header and rows split on LF and tabs, as an unquoted TSV reader does."""
    text = data.decode("utf-8")
    assert text.endswith("\n")
    lines = [line.split("\t") for line in text[:-1].split("\n")]
    return lines[0], lines[1:]


def parse_rss(data: bytes, fields: tuple[str, ...]) -> tuple[dict[str, str], list[list[str]]]:
    """Channel texts and, per item, every field's value (repeated elements re-joined with commas)."""
    root = etree.fromstring(data)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    assert root.nsmap.get("g") == G_NS
    (channel,) = root
    assert channel.tag == "channel"
    head = {tag: channel.findtext(tag) or "" for tag in ("title", "link", "description")}
    rows = []
    for item in channel.findall("item"):
        tags = [child.tag for child in item]
        known = [G + f for f in fields]
        assert set(tags) <= set(known), f"unexpected elements {set(tags) - set(known)}"
        assert tags == sorted(tags, key=known.index), "elements out of field order"
        row = []
        for field in fields:
            elements = item.findall(G + field)
            if field in REPEATED:
                assert all(e.text for e in elements), "an empty repeated element"
                row.append(",".join(e.text or "" for e in elements))
            else:
                assert len(elements) <= 1
                text = elements[0].text if elements else ""
                assert text != "" or not elements, f"empty <g:{field}> written"
                row.append(text or "")
        rows.append(row)
    assert len(channel) == 3 + len(rows)
    return head, rows


def flatten(value: str) -> str:
    """What the TSV writer promises: each tab, CR, LF or CRLF becomes one space."""
    return re.sub(r"\r\n|[\t\r\n]", " ", value)


def test_golden(fmt: str, frame: pd.DataFrame) -> None:
    assert_golden(filename_of(fmt), render(fmt, [frame]))


def test_parses_back_field_by_field(fmt: str, frame: pd.DataFrame) -> None:
    data = render(fmt, [frame])
    fields = PLATFORMS[platform_of(fmt)].fields
    expected = frame.to_numpy().tolist()
    if fmt.endswith("-csv"):
        header, rows = parse_csv(data)
    elif fmt.endswith("-tsv"):
        header, rows = parse_tsv(data)
        expected = [[flatten(v) for v in row] for row in expected]
    else:
        head, rows = parse_rss(data, fields)
        assert head == {"title": CHANNEL.title, "link": CHANNEL.link, "description": CHANNEL.description}
        header = list(fields)
    assert header == list(frame.columns)
    assert len(rows) == len(expected)
    for i, (got, want) in enumerate(zip(rows, expected, strict=True)):
        for field, g, w in zip(header, got, want, strict=True):
            assert g == w, f"row {i} field {field}: {g!r} != {w!r}"


@pytest.mark.parametrize("n_chunks", [2, 3, 6])
def test_chunking_does_not_change_bytes(fmt: str, frame: pd.DataFrame, n_chunks: int) -> None:
    assert render(fmt, split_rows(frame, n_chunks)) == render(fmt, [frame])


def test_empty_chunks_write_nothing(fmt: str, frame: pd.DataFrame) -> None:
    empty = frame.iloc[0:0]
    assert render(fmt, [empty, frame.iloc[:3], empty, frame.iloc[3:], empty]) == render(fmt, [frame])


def test_no_rows_is_header_and_footer_only(fmt: str, frame: pd.DataFrame) -> None:
    data = render(fmt, [])
    if fmt.endswith("-csv"):
        assert parse_csv(data) == (list(frame.columns), [])
    elif fmt.endswith("-tsv"):
        assert parse_tsv(data) == (list(frame.columns), [])
    else:
        assert parse_rss(data, tuple(frame.columns))[1] == []


def test_object_dtype_frame_writes_the_same(fmt: str, frame: pd.DataFrame) -> None:
    assert render(fmt, [frame.astype(object)]) == render(fmt, [frame])


def test_no_line_over_the_limit(fmt: str, frame: pd.DataFrame) -> None:
    data = render(fmt, [frame])
    assert max(len(line) for line in data.split(b"\n")) <= MAX_LINE_BYTES
    if fmt.endswith("-xml"):
        assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        # one item per line: every item opens at the start of a line
        assert data.count(b"<item>") == data.count(b"\n<item>") == len(frame)
