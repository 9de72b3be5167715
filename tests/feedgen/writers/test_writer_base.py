"""The writer contract: registry, column checks, closing, and the Arrow buffer helpers."""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from writer_samples import CHANNEL, platform_frame

from feedgen import _speedups
from feedgen.writers import FORMATS, platform_of, writer_class
from feedgen.writers._xml import escape_text
from feedgen.writers.base import (
    CSV_QUOTED,
    TSV_FLAT,
    XML_ELEMENT,
    Channel,
    FeedWriter,
    rows,
)


@pytest.mark.parametrize("fmt_name", list(FORMATS))
def test_registry_matches_class_attributes(fmt_name: str) -> None:
    cls = writer_class(fmt_name)
    assert issubclass(cls, FeedWriter)
    assert cls.format == fmt_name
    assert cls.platform == platform_of(fmt_name)


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        FeedWriter(io.BytesIO(), CHANNEL)  # type: ignore[abstract]


def test_channel_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CHANNEL.title = "other"  # type: ignore[misc]
    assert Channel("a", "b", "c") == Channel("a", "b", "c")


def _writer(fmt: str) -> tuple[FeedWriter, io.BytesIO]:
    fh = io.BytesIO()
    return writer_class(fmt)(fh, CHANNEL), fh


def test_wrong_columns_are_refused_before_anything_is_written(fmt: str, frame: pd.DataFrame) -> None:
    writer, fh = _writer(fmt)
    header = fh.getvalue()
    with pytest.raises(ValueError, match="missing"):
        writer.write(frame.drop(columns=["title"]))
    with pytest.raises(ValueError, match="in order"):
        writer.write(frame[list(reversed(frame.columns))])
    with pytest.raises(ValueError, match="unexpected"):
        writer.write(frame.assign(extra=""))
    assert fh.getvalue() == header


def test_missing_values_are_refused(fmt: str, frame: pd.DataFrame) -> None:
    writer, _ = _writer(fmt)
    bad = frame.copy()
    bad.loc[1, "title"] = pd.NA
    with pytest.raises(ValueError, match="'title' holds 1 missing"):
        writer.write(bad)


def test_non_string_columns_are_refused(fmt: str, frame: pd.DataFrame) -> None:
    writer, _ = _writer(fmt)
    bad = frame.copy()
    bad["price"] = np.arange(len(frame))
    with pytest.raises(ValueError, match="'price' is int64, not str"):
        writer.write(bad)


def test_close_writes_the_footer_once_and_leaves_the_file_open(fmt: str, frame: pd.DataFrame) -> None:
    writer, fh = _writer(fmt)
    writer.write(frame)
    writer.close()
    once = fh.getvalue()
    writer.close()
    assert fh.getvalue() == once
    assert not fh.closed
    with pytest.raises(ValueError, match="closed"):
        writer.write(frame)


def test_context_manager_closes_on_success_only(fmt: str, frame: pd.DataFrame) -> None:
    fh = io.BytesIO()
    with writer_class(fmt)(fh, CHANNEL) as writer:
        writer.write(frame)
    assert writer.rows == len(frame)
    complete = fh.getvalue()

    fh = io.BytesIO()
    with pytest.raises(RuntimeError), writer_class(fmt)(fh, CHANNEL) as writer:
        writer.write(frame)
        raise RuntimeError("source failed mid-run")
    if fmt.endswith("-xml"):
        # no closing tags: the truncated file cannot parse, so it cannot be published by mistake
        assert complete.endswith(b"</channel></rss>\n")
        assert not fh.getvalue().endswith(b"</channel></rss>\n")


def test_sample_frame_is_platform_ready() -> None:
    for platform in ("meta", "google", "tiktok"):
        df = platform_frame(platform)
        assert all(str(t) == "str" for t in df.dtypes)
        assert not df.isna().any().any()


def _joined(pieces: list[pa.Buffer | bytes]) -> bytes:
    return b"".join(memoryview(piece).tobytes() for piece in pieces)


@pytest.mark.parametrize("fmt", list(FORMATS))
@given(keep=st.lists(st.booleans(), min_size=6, max_size=6))
@settings(max_examples=40, deadline=None)
def test_encode_with_keep_writes_exactly_the_kept_rows(fmt: str, keep: list[bool]) -> None:
    """Rows serialised whole and then sliced must be the bytes of serialising only the kept rows."""
    frame = platform_frame(platform_of(fmt))
    frame.loc[1, "title"] = 'He said "hi", then\nleft\r\n'  # quotes, commas and line breaks change lengths
    frame.loc[2, "description"] = '"""'
    mask = np.array(keep)
    pieces, count = writer_class(fmt).encode(frame, mask)
    expected, expected_count = writer_class(fmt).encode(frame[mask].reset_index(drop=True))
    assert count == expected_count == mask.sum()
    assert _joined(pieces) == _joined(expected)


def test_encode_refuses_keep_of_another_length() -> None:
    frame = platform_frame("meta")
    with pytest.raises(ValueError, match=f"keep has 2 flags for {len(frame)} rows"):
        writer_class("meta-csv").encode(frame, np.array([True, False]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=6), st.booleans()), max_size=10))
def test_rows_with_keep_write_only_the_kept_rows(values: list[tuple[str, bool]]) -> None:
    """Rows left out by ``keep`` take no bytes and a length of 0; the kept ones are written as alone."""
    texts = [text for text, _ in values]
    keep = np.array([kept for _, kept in values], dtype=bool)
    table = pa.table({"a": pa.array(texts, pa.large_string())})
    layout = [(b'"', b'"', CSV_QUOTED, False)]
    data, lengths = rows(table, layout, b"<", b">\n", keep=keep)
    only = pa.table({"a": pa.array([t for t, k in values if k], pa.large_string())})
    expected, expected_lengths = rows(only, layout, b"<", b">\n")
    assert data.to_pybytes()[: lengths.sum()] == expected.to_pybytes()[: expected_lengths.sum()]
    assert lengths[keep].tolist() == expected_lengths.tolist()
    assert not lengths[~keep].any()


def test_rows_refuse_keep_of_another_length() -> None:
    lengths = np.empty(2, dtype=np.int64)
    field = (np.frombuffer(b"abc", dtype=np.uint8), np.array([0, 1, 3]), b"", b"", CSV_QUOTED, False)
    with pytest.raises(ValueError, match="keep holds 3 bytes for 2 rows"):
        _speedups.rows([field], b"", b"", lengths, pa.allocate_buffer, np.ones(3, dtype=bool))


_TEXT = st.text(st.sampled_from(["a", '"', ",", "\t", "\r", "\n", "&", "<", ">", "é", "茶", " "]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=8), st.integers(0, 2))
def test_rows_write_csv_and_tsv_as_plain_python_would(values: list[tuple[str, str]], start: int) -> None:
    """The compiled row writer against the csv module (every value quoted) and the TSV rule."""
    first = pa.chunked_array([pa.array([a for a, _ in values], pa.string())])
    second = pa.array(["x", *(b for _, b in values), "y"], pa.large_string()).slice(1, len(values))
    table = pa.table({"a": first, "b": pa.chunked_array([second.slice(0, start), second.slice(start)])})
    layout_csv = [(b'"', b'"', CSV_QUOTED, False), (b',"', b'"', CSV_QUOTED, False)]
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(values)
    data, lengths = rows(table, layout_csv, b"", b"\n")
    assert data.to_pybytes()[: lengths.sum()] == out.getvalue().encode()

    def flat(text: str) -> str:
        return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")

    layout_tsv = [(b"", b"", TSV_FLAT, False), (b"\t", b"", TSV_FLAT, False)]
    data, lengths = rows(table, layout_tsv, b"<", b">\n")
    expected = [f"<{flat(a)}\t{flat(b)}>\n".encode() for a, b in values]
    assert data.to_pybytes()[: lengths.sum()] == b"".join(expected)
    assert lengths.tolist() == [len(line) for line in expected]


def test_rows_refuse_what_does_not_fit() -> None:
    lengths = np.empty(2, dtype=np.int64)
    data = np.frombuffer(b"abc", dtype=np.uint8)
    for offsets in ([0, 1], [0, 2, 4], [1, 2, 3], [0, 2, 1]):
        field = (data, np.array(offsets, dtype=np.int64), b"<a>", b"</a>", XML_ELEMENT, False)
        with pytest.raises(ValueError, match="offsets"):
            _speedups.rows([field], b"<item>", b"</item>\n", lengths, pa.allocate_buffer)
    field = (data, np.array([0, 1, 3], dtype=np.int64), b"<a>", b"</a>", 7, False)
    with pytest.raises(ValueError, match="kind 7"):
        _speedups.rows([field], b"", b"", lengths, pa.allocate_buffer)
    field = (data, np.array([0, 1, 3], dtype=np.int64), b"<a>", b"</a>", XML_ELEMENT, False)
    with pytest.raises(ValueError, match="too small"):
        _speedups.rows([field], b"", b"", lengths, lambda size: pa.allocate_buffer(1))


def test_rows_find_every_special_byte_at_every_offset() -> None:
    """The row writer scans sixteen bytes at a time: each byte a kind changes, at every place of a block."""
    values = [
        "x" * offset + special * times + "y" * tail
        for special in ['"', "\t", "\r\n", "\r", "\n", "&", "<", ">", ","]
        for times in (1, 2)
        for offset in range(34)
        for tail in (0, 3, 20)  # at a value's end too, where the scan reads on into the next value
    ]
    table = pa.table({"v": pa.array(values, pa.large_string())})
    data, n = rows(table, [(b"[", b"]", CSV_QUOTED, False)], b"", b"\n")
    assert (
        data.to_pybytes()[: n.sum()]
        == "".join(f"[{v.replace(chr(34), chr(34) * 2)}]\n" for v in values).encode()
    )
    data, n = rows(table, [(b"", b"", TSV_FLAT, False)], b"", b"\n")
    flat = [v.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ") for v in values]
    assert data.to_pybytes()[: n.sum()] == "".join(f"{v}\n" for v in flat).encode()
    data, n = rows(table, [(b"<a>", b"</a>", XML_ELEMENT, True)], b"", b"\n")
    items = ["".join(f"<a>{escape_text(part)}</a>" for part in v.split(",")) for v in values]
    assert data.to_pybytes()[: n.sum()] == "".join(f"{item}\n" for item in items).encode()
