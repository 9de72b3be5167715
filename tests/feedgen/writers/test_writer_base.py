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
    kept_rows,
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


def test_kept_rows_gather_runs_of_rows() -> None:
    data = pa.py_buffer(b"aaBcccDDe")
    lengths = np.array([2, 1, 3, 2, 1])
    assert kept_rows(data, lengths, np.array([True, False, True, False, True])).to_pybytes() == b"aaccce"
    assert kept_rows(data, lengths, np.array([False, True, True, True, False])).to_pybytes() == b"BcccDD"
    assert kept_rows(data, lengths, np.zeros(5, dtype=bool)).to_pybytes() == b""
    own = pa.allocate_buffer(9)
    np.frombuffer(own, dtype=np.uint8)[:] = np.frombuffer(b"aaBcccDDe", dtype=np.uint8)
    compacted = kept_rows(own, lengths, np.array([False, True, True, False, True]), in_place=True)
    assert compacted.to_pybytes() == b"Bccce"
    assert compacted.address == own.address  # the same memory, no copy


def test_gather_refuses_rows_that_do_not_fit() -> None:
    data = np.frombuffer(b"abcd", dtype=np.uint8)
    out = np.empty(8, dtype=np.uint8)
    keep = np.ones(2, dtype=bool)
    with pytest.raises(ValueError, match="rows of 5 bytes in 4"):
        _speedups.gather(data, np.array([2, 3], dtype=np.int64), keep, out)
    with pytest.raises(ValueError, match="kept into 1"):
        _speedups.gather(data, np.array([2, 2], dtype=np.int64), keep, out[:1])
    with pytest.raises(ValueError, match="negative"):
        _speedups.gather(data, np.array([2, -1], dtype=np.int64), keep, out)
    with pytest.raises(ValueError, match="fewer flags"):
        _speedups.gather(data, np.array([2, 2], dtype=np.int64), keep[:1], out)


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
