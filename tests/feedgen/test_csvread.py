"""feedgen.csvread: the compiled CSV reader reads what Arrow's reader reads, or hands over to it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedgen import _csvscan, csvread
from feedgen.config import SourceConfig
from feedgen.errors import SourceError
from feedgen.sources import read_chunks

NAMES = ["a", "b", "c"]


def _arrow(path: Path, names: list[str], delimiter: str = ",") -> list[tuple[str, ...]]:
    """The rows after the header as Arrow's reader reads them with feedgen's options."""
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.large_string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    )
    return list(zip(*(table.column(name).to_pylist() for name in names), strict=True))


def _fast(
    path: Path, names: list[str], chunk_size: int = 2, delimiter: str = ","
) -> tuple[list[tuple[str, ...]], int | None, list[int]]:
    """The compiled reader's rows, where it handed over (None: it read the whole file) and its
    chunks' sizes; each chunk is checked against Arrow's reading of the file up to the chunk's end."""
    skipped: list[int] = []

    def handover(skip: int) -> Iterator[pa.Table]:
        skipped.append(skip)
        return iter(())

    rows: list[tuple[str, ...]] = []
    sizes = []
    consumed = []
    real = csvread._Reader
    with pytest.MonkeyPatch.context() as mp:

        class Reader(real):  # type: ignore[misc,valid-type]
            def next_chunk(self) -> pa.Table | None:
                table = super().next_chunk()
                consumed.append(self.consumed)
                return table

        mp.setattr(csvread, "_Reader", Reader)
        for table in csvread.chunks(path, names, delimiter, chunk_size, handover):
            assert table.column_names == names
            assert all(column.type == pa.large_string() for column in table.columns)
            assert all(column.num_chunks == 1 for column in table.columns)  # one contiguous chunk
            sizes.append(table.num_rows)
            rows += zip(*(table.column(name).to_pylist() for name in names), strict=True)
            # the rows given are what Arrow reads from the bytes they came from
            prefix = path.with_suffix(".prefix")
            prefix.write_bytes(path.read_bytes()[: consumed[-1]])
            assert _arrow(prefix, names, delimiter) == rows
    return rows, (skipped[0] if skipped else None), sizes


def _write(tmp_path: Path, data: bytes, header: bytes = b"a,b,c\n") -> Path:
    path = tmp_path / "t.csv"
    path.write_bytes(header + data)
    return path


# ---- the same rows as Arrow ----------------------------------------------------------------------

REGULAR = [
    b"1,2,3\n4,5,6\n",
    b"1,2,3\r\n4,5,6\r\n",
    b"1,2,3\r4,5,6\r",  # a lone CR ends a line too
    b"1,2,3\n4,5,6",  # no line end after the last row
    b'1,"2",3\n',
    b'"",,""\n',
    b'"x ""quoted"" y","a,b","two\nlines"\n',
    b'"CR\r\nLF inside",2,"end with quote"""\n',
    b'1,2,"last without line end"',
    b'1,2,""',
    b"1,2,\n",
    b",,\n,,",
    b"\n\n1,2,3\n\r\n\r\r\n4,5,6\n\n",  # empty lines are skipped
    "é,日本語,ｘ\n".encode(),
    "\ufeffstarts with a BOM,2,3\n".encode(),
    b" spaced , kept ,\t\n",
]


@pytest.mark.parametrize("data", REGULAR)
def test_regular_rows_are_read_as_arrow_reads_them(tmp_path: Path, data: bytes) -> None:
    path = _write(tmp_path, data)
    rows, handover, _ = _fast(path, NAMES)
    assert handover is None
    assert rows == _arrow(path, NAMES)


IRREGULAR = [
    (b'1,2"x",3\n', 0),  # a quote inside an unquoted value
    (b'1,"2"x,3\n', 0),  # bytes after a closing quote
    (b"1,2\n", 0),  # too few columns
    (b"1,2,3,4\n", 0),  # too many
    (b'1,2,"never closed\n', 0),
    (b"1,2,\xff\n", 0),  # not UTF-8
    (b"1,2,\xc0\xaf\n", 0),  # overlong forms
    (b"1,2,\xe0\x80\xaf\n", 0),
    (b"1,2,\xf0\x80\x80\xaf\n", 0),
    (b"1,2,\xf5\x80\x80\x80\n", 0),  # no character starts with F5
    (b"1,2,\xed\xa0\x80\n", 0),  # a surrogate
    (b"1,2,\xf4\x90\x80\x80\n", 0),  # past U+10FFFF
    (b"1,2,\xe6\x97\n", 0),  # a character cut short
    (b"1,2,\xe6\x97", 0),  # at the end of the file
    (b"1,2,3\n4,5,6\n7,8\n", 2),  # after a whole chunk: that chunk is given, the next is not
    (b"1,2,3\n4,5,6\n7,8,9\n1,2\n", 2),  # inside a chunk: its rows are the fallback's
    (b"1,2,3\n ", 0),  # a lone space is a row of one column
    (b'1,2,3"x"\n', 0),  # the same in the last column (Arrow reads 3x)
    (b'1,2,"3"x\n', 0),
]


@pytest.mark.parametrize(("data", "given"), IRREGULAR)
def test_an_irregular_row_hands_over_after_the_whole_chunks_before_it(
    tmp_path: Path, data: bytes, given: int
) -> None:
    rows, handover, _ = _fast(_write(tmp_path, data), NAMES)
    assert handover == given
    assert len(rows) == given


def test_a_header_with_a_line_break_inside_is_left_to_arrow(tmp_path: Path) -> None:
    path = _write(tmp_path, b"1,2,3\n", header=b'a,"b\nB",c\n')
    assert _fast(path, NAMES) == ([], 0, [])


def test_a_bom_before_a_quoted_header_is_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, b'"1",2,3\n', header=b'\xef\xbb\xbf"a","b","c"\n')
    assert _fast(path, NAMES) == ([("1", "2", "3")], None, [1])


def test_a_header_of_another_width_is_left_to_arrow(tmp_path: Path) -> None:
    assert _fast(_write(tmp_path, b"1,2,3\n", header=b"a,b\n"), NAMES) == ([], 0, [])


def test_chunks_are_chunk_size_rows_and_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path, b"".join(b"%d,x,y\n" % k for k in range(7)))
    rows, handover, sizes = _fast(path, NAMES, chunk_size=3)
    assert (handover, sizes) == (None, [3, 3, 1])
    assert [r[0] for r in rows] == [str(k) for k in range(7)]


def test_the_buffer_starts_as_large_as_the_file_within_limits() -> None:
    assert csvread.first_capacity(0) == csvread.first_capacity(100) == csvread.READ
    assert csvread.first_capacity(3 * csvread.READ) == 3 * csvread.READ + 1
    assert csvread.first_capacity(10 * csvread.RESERVE) == csvread.RESERVE


def test_rows_longer_than_a_read_grow_the_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvread, "READ", 5)
    monkeypatch.setattr(csvread, "RESERVE", 5)  # the buffer starts at 5 bytes
    data = b'"%s",%s,"x""y"\n' % (b"long " * 40, b"z" * 30)
    path = _write(tmp_path, data * 3)
    rows, handover, sizes = _fast(path, NAMES, chunk_size=2)
    assert (handover, sizes) == (None, [2, 1])
    assert rows == _arrow(path, NAMES) == [("long " * 40, "z" * 30, 'x"y')] * 3


def test_other_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b'a\tb\tc\n1\t"2\t2"\t3,3\n')
    rows, handover, _ = _fast(path, NAMES, delimiter="\t")
    assert handover is None
    assert rows == _arrow(path, NAMES, "\t") == [("1", "2\t2", "3,3")]


@pytest.mark.parametrize(
    ("encoding", "delimiter", "supported"),
    [
        ("utf-8", ",", True),
        ("UTF8", ";", True),
        ("utf_8", "\t", True),
        ("utf-8-sig", ",", False),  # Arrow decodes these
        ("latin-1", ",", False),
        ("no-such-codec", ",", False),
        ("utf-8", '"', False),
        ("utf-8", "\n", False),
        ("utf-8", "§", False),
        ("utf-8", ";;", False),
    ],
)
def test_supports(encoding: str, delimiter: str, supported: bool) -> None:
    assert csvread.supports(encoding, delimiter) is supported


# ---- property: never a row Arrow reads otherwise --------------------------------------------------

#: bytes to string together at random
PIECES = [b"a", b"1", b",", b",", b'"', b'""', b"\n", b"\r", b"\r\n", b" ", b"\t"]
PIECES += [b"\xc3\xa9", b"\xff", b"\xe6\x97"]


def _quoted_csv(rows: list[list[str]], terminator: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=terminator, quoting=csv.QUOTE_MINIMAL).writerows(rows)
    return out.getvalue().encode()


field = st.text(st.sampled_from(["a", " ", ",", '"', "\n", "\r", "é", "日"]), max_size=6)


#: values as a file may hold them, regular or not
VALUES = [
    *(b"", b"a", b'"a"', b'""', b'"a""b"', b'"a,b"', b'"a\nb"', b"\xc3\xa9"),  # regular
    *(b'a"b', b'"a"b', b'a"', b'"a', b"\xff"),  # not
]


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["written", "values", "pieces"]))
    if kind == "written":  # well-formed files, some rows of another width
        rows = draw(st.lists(st.lists(field, min_size=2, max_size=4), max_size=6))
        return _quoted_csv(rows, draw(st.sampled_from(["\n", "\r\n", "\r"])))
    if kind == "values":  # rows of values, regular and not, in any column
        rows = draw(st.lists(st.lists(st.sampled_from(VALUES), min_size=2, max_size=4), max_size=6))
        ends = st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n"])
        return b"".join(b",".join(row) + draw(ends) for row in rows)
    return b"".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_bytes(), chunk_size=st.integers(1, 4), read=st.sampled_from([1, 3, 64]))
@example(data=b'"a",b,"c"\r\n', chunk_size=1, read=1)
def test_the_compiled_reader_gives_only_rows_arrow_gives_the_same(
    tmp_path: Path, data: bytes, chunk_size: int, read: int
) -> None:
    (csvread.READ, csvread.RESERVE), before = (read, read), (csvread.READ, csvread.RESERVE)
    try:
        path = _write(tmp_path, data)
        rows, handover, sizes = _fast(path, NAMES, chunk_size)
    finally:
        csvread.READ, csvread.RESERVE = before
    assert all(size == chunk_size for size in sizes[:-1])
    try:
        expected = _arrow(path, NAMES)
    except pa.ArrowInvalid:
        assert handover is not None  # Arrow rejects the file: so must the compiled reader, somewhere
        return
    assert rows == expected[: len(rows)]
    if handover is None:
        assert len(rows) == len(expected)
    else:
        assert handover == len(rows)


# ---- through feedgen.sources: the hand-over reads the rest ---------------------------------------


def test_read_chunks_after_a_hand_over_gives_every_row_once(tmp_path: Path) -> None:
    data = b"".join(b"%d,x,y\n" % k for k in range(5)) + b'5,"odd"quote,y\n' + b"6,x,y\n"
    path = _write(tmp_path, data, header=b"id,title,brand\n")
    chunks = list(read_chunks(SourceConfig(path=path, chunk_size=2), ["id", "title"]))
    assert [len(c) for c in chunks] == [2, 2, 2, 1]
    frame = [row for chunk in chunks for row in chunk.itertuples(index=False)]
    assert [r.id for r in frame] == [str(k) for k in range(7)]
    assert [r._0 for r in frame] == list(range(1, 8))  # _row numbers run on
    assert frame[5].title == "oddquote"  # as Arrow reads it: quotes open and close anywhere


def test_a_row_arrow_rejects_is_still_a_source_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b"1,2,3\n4,5\n", header=b"id,title,brand\n")
    with pytest.raises(SourceError, match="cannot parse CSV"):
        list(read_chunks(SourceConfig(path=path, chunk_size=1), ["id"]))


# ---- the compiled functions refuse what they cannot use --------------------------------------------


def test_scan_and_fill_refuse_buffers_that_do_not_fit() -> None:
    spans, sizes = np.zeros(6, dtype=np.int64), np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="out of range"):
        _csvscan.scan(b"1,2,3\n", 0, True, ord(","), 3, spans, 0, 2, sizes)  # room for one row only
    with pytest.raises(ValueError, match="out of range"):
        _csvscan.scan(b"1,2,3\n", 0, True, ord('"'), 3, spans, 0, 1, sizes)
    assert _csvscan.scan(b"1,2,3\n", 0, True, ord(","), 3, spans, 0, 1, sizes) == (1, 6, False)
    # a character cut short by the end of the data: the bytes after it in memory are not read
    cut = memoryview(b"1,2,\xe6\x97\x80")[:6]
    assert _csvscan.scan(cut, 0, True, ord(","), 3, spans.copy(), 0, 1, sizes.copy())[2]
    small = [(bytearray(1), bytearray(16)) for _ in range(3)]
    _csvscan.fill(b"1,2,3\n", spans, 1, small)
    assert [bytes(data) for data, _ in small] == [b"1", b"2", b"3"]
    with pytest.raises(ValueError, match="too small"):
        _csvscan.fill(b"1,2,3\n", spans, 1, [(bytearray(0), bytearray(16))] * 3)
    spans[1] = 99
    with pytest.raises(ValueError, match="outside"):
        _csvscan.fill(b"1,2,3\n", spans, 1, small)
