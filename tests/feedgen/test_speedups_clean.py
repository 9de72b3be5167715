"""The compiled pass (``_speedups.c``) must clean every row exactly as the general path does."""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedgen import _speedups, text

#: what shop texts hold, and what trips cleaning up: entities common and not, "&" that starts nothing,
#: tags of every kind, comments, whitespace of every kind, controls, marks that compose, Hangul jamo
_PIECES = [
    *["&amp;", "&lt;", "&gt;", "&nbsp;", "&#8211;", "&hellip;", "&euro;", "&frac12;", "&lt;b&gt;"],
    *["&", "& ", "&&", "&;", "&#", "&copy", "&amp", "&#38;", "&eacute;", "&#x27;", "&#12;", "&#x81;"],
    *["&a\x01mp;", "&\x01", "&\x85amp;", "&amp;lt;", "&lt;!--", "&#776;", "&#x338;"],
    *["<p>", "</P>", "<br/>", "<BR />", "< br>", "</ p>", "<li class='x'>", "<h7>", "<h2>", "</table>"],
    *["<b>", "</b>", '<a href="x">', "<pre>", "<p<b>>", "<a<br>>", "<x\n>", "<1>", "<", ">", "/>"],
    *["<!--", "-->", "<!-- c -->", "<div\tid=1>", "</tr>", "</ul>", "</ol>", "<hr>", "<p/x>"],
    *[" ", "  ", "\n", "\n\n", "\n \n", " \n ", "\t", "\r", "\r\n", "\u00a0", "\u3000", "\u2000"],
    *["\u2001", "\u2028", "\u2029", "\u202f", "\u205f", "\u1680", "\u200b", "\ufeff", "\u180e"],
    *["\x00", "\x01", "\x0b", "\x0c", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\ufffe", "\uffff"],
    *["e", "\u0301", "\u0338", "\u00e9", "\u212b", "\u2126", "\u1100", "\u1161", "\u11a8", "\uac00"],
    *["\u304b", "\u3099", "\u30ac", "\u4e00", "\uf900", "\u0b47", "\u0b3e", "\U0001f642", "\U0001d15e"],
    *["a", "Zz", "Sakura & Co.", "1,5", '"q"', "\u00b0", "\u2013"],
    *["Lorem ipsum dolor sit amet", "consectetur-adipiscing-elit", "0123456789abcdef"],  # past 16 bytes
]
pieces = st.lists(st.sampled_from(_PIECES), max_size=14).map("".join)
rows = st.lists(st.one_of(pieces, pieces, st.none()), max_size=8)


def _both(values: pa.Array, html_allowed: bool, keep_lines: bool) -> tuple[list, list]:
    fast = text.clean_text(values, html_allowed, keep_lines)
    general = text.clean_text_general(values, html_allowed, keep_lines)
    assert fast.type == values.type
    fast.validate(full=True)
    return fast.to_pylist(), general.to_pylist()


@settings(max_examples=600, deadline=None)
@given(rows, st.integers(0, 3), st.booleans(), st.booleans(), st.booleans())
def test_compiled_pass_equals_general_path(
    values: list[str | None], start: int, html_allowed: bool, keep_lines: bool, large: bool
) -> None:
    arr = pa.array(values, type=pa.large_string() if large else pa.string()).slice(min(start, len(values)))
    fast, general = _both(arr, html_allowed, keep_lines)
    assert fast == general


#: mostly plain words, so that most rows are copied as they are (a run of rows with no work at once)
_PLAIN = ["a", "Zz", "word", "0123456789abcdef", "x-y", " ", " ", "  ", "\t", "\n", "\x1f", "\x7f", "\x85"]
_PLAIN += ["&", "& ", "&;", "&amp;", "&copy", "<b>", "\u00e9", "\u3000"]
plain_rows = st.lists(
    st.one_of(st.lists(st.sampled_from(_PLAIN), max_size=6).map("".join), st.none()), max_size=60
)


@settings(max_examples=400, deadline=None)
@given(plain_rows, st.integers(0, 3), st.booleans(), st.booleans())
def test_rows_with_no_work_are_copied_as_they_are(
    values: list[str | None], start: int, html_allowed: bool, keep_lines: bool
) -> None:
    """Short rows side by side: the scan for work runs over the column, across row ends, so a space
    at a row's end, a space before the next row's first byte or a row left alone between two that
    change must come out as the general path leaves them."""
    arr = pa.array(values, type=pa.large_string()).slice(min(start, len(values)))
    fast, general = _both(arr, html_allowed, keep_lines)
    assert fast == general


@settings(max_examples=300, deadline=None)
@given(plain_rows, st.integers(0, 3), st.booleans())
def test_rows_work_leaves_out_change_nothing(values: list[str | None], start: int, keep_lines: bool) -> None:
    """``text.clean_text`` without HTML cleans only the rows the work scan marks: every row it leaves
    out comes out of the full pass as it went in, and the result is the general path's."""
    arr = pa.array(values, type=pa.large_string()).slice(min(start, len(values)))
    marked = text._work(arr)
    full = text._clean_all(arr, False, keep_lines).to_pylist()
    assert all(full[i] == arr[i].as_py() for i in range(len(arr)) if not marked[i])
    fast, general = _both(arr, False, keep_lines)
    assert fast == general


@pytest.mark.parametrize("before", ["", "plain words before it, more than 16 bytes,"])
def test_every_ascii_byte_inside_a_row_that_is_otherwise_plain(before: str) -> None:
    """Each ASCII character between two letters, in the last row of a short column (scanned byte by
    byte) and of a longer one (scanned sixteen bytes at a time until its last 16)."""
    values = [before + f"a{chr(code)}b" for code in range(0x80)] + ["a\u00a0b", "a\u0301b"]
    for value in values:
        fast, general = _both(pa.array([value]), False, False)
        assert fast == general, repr(value)
    fast, general = _both(pa.array(values), True, True)
    assert fast == general


@pytest.mark.parametrize(("html_allowed", "keep_lines"), [(True, True), (False, False)])
@pytest.mark.parametrize("around", ["{}", "e{}", "\u304b{}\u3099", "\u1100{}", "{}\u0301", "<b>{}</b>\n"])
def test_every_bmp_character_alone_and_beside_others(
    html_allowed: bool, keep_lines: bool, around: str
) -> None:
    """Each code point of the BMP in a few neighbourhoods: the compiled pass leaves NFC to ``nfc``
    only where a character may change, so a wrong entry in its table shows up here."""
    codes = [c for c in range(0x10000) if not 0xD800 <= c < 0xE000]
    arr = pa.array([around.format(chr(c)) for c in codes])
    fast, general = _both(arr, html_allowed, keep_lines)
    differ = [f"U+{codes[i]:04X}" for i in np.flatnonzero(np.array(fast, dtype=object) != np.array(general))]
    assert not differ, differ[:20]


@pytest.mark.parametrize(("html_allowed", "keep_lines"), [(True, True), (False, False), (True, False)])
def test_every_piece_at_every_offset_of_a_long_row(html_allowed: bool, keep_lines: bool) -> None:
    """The compiled pass scans sixteen bytes at a time: each piece, alone and doubled, at every place
    of a 16-byte block and across two blocks, in plain text on both sides."""
    values = [
        "x" * offset + piece * times + " tail of plain text"
        for piece in _PIECES
        for times in (1, 2)
        for offset in range(34)
    ]
    fast, general = _both(pa.array(values), html_allowed, keep_lines)
    differ = [values[i] for i in range(len(values)) if fast[i] != general[i]]
    assert not differ, differ[:5]


def test_rows_the_pass_leaves_take_the_general_path() -> None:
    values = pa.array(["caf&eacute; &amp; bar", "&copy 2024 <!-- x --> ok", "plain", None, "&#12;x"])
    assert text.clean_text(values, html_allowed=True).to_pylist() == [
        "caf\u00e9 & bar",
        "\u00a9 2024 ok",
        "plain",
        None,
        "x",
    ]


def test_the_compiled_pass_covers_common_entities_and_leaves_the_rest() -> None:
    """Which rows the compiled pass takes is part of its job (the general path is the slow one):
    every common entity, alone and beside others, stays on it; a rarer one or a comment does not."""
    names = [name.decode() for name, _ in text._COMMON]
    rows = [f"a{name}b" for name in names] + ["".join(names), "x &eacute; y", "x <!-- c --> y", "&am;p"]
    data = "".join(rows).encode()
    offsets = np.cumsum([0, *(len(row.encode()) for row in rows)]).astype(np.int64)
    n = len(rows)
    general = np.empty(n, dtype=bool)
    _speedups.clean(
        np.frombuffer(data, dtype=np.uint8),
        offsets,
        np.ones(n, dtype=bool),
        True,
        True,
        *text._ENTITY_TABLES,
        text._nfc_safe(),
        np.empty(len(data), dtype=np.uint8),
        np.empty(n + 1, dtype=np.int64),
        general,
        np.empty(n, dtype=bool),
    )
    assert list(general) == [False] * (len(names) + 1) + [True, True, True]


def test_tags_spelled_with_entities_are_decoded_then_stripped() -> None:
    values = pa.array(["&lt;b&gt;bold&lt;/b&gt; &amp;lt;i&amp;gt;", "&lt;p&gt;one&lt;br&gt;two"])
    assert text.clean_text(values, html_allowed=True, keep_lines=True).to_pylist() == [
        "bold &lt;i&gt;",
        "one\ntwo",
    ]


def test_whitespace_runs_keep_at_most_one_blank_line() -> None:
    values = pa.array(["  a \u3000 b\t\r\n c \n\n\n d\u00a0\n \n e \n "])
    assert text.clean_text(values, keep_lines=True).to_pylist() == ["a b\nc\n\nd\n\ne"]
    assert text.clean_text(values).to_pylist() == ["a b c d e"]


def test_empty_array_and_all_empty_values() -> None:
    assert text.clean_text(pa.array([], type=pa.string())).to_pylist() == []
    assert text.clean_text(pa.array(["", " ", None, "\x01"])).to_pylist() == ["", "", None, ""]


_NAMES = ["br", "p", "div", "li", *(f"h{n}" for n in range(1, 8)), "tr", "ul", "ol", "table", "b", "hr"]
_FORMS = ["<{}>", "</{}>", "<{} x='1'>", "<{}/>", "< {}>", "<\t{} />", "</{} >", "<{}\n>", "<{}", "</{}/>"]


@pytest.mark.parametrize("keep_lines", [True, False])
def test_every_tag_form_between_words(keep_lines: bool) -> None:
    tags = [form.format(case(name)) for name in _NAMES for form in _FORMS for case in (str.lower, str.upper)]
    arr = pa.array([f"a{tag}b" for tag in tags] + [f"a {tag} b" for tag in tags])
    fast, general = _both(arr, True, keep_lines)
    assert fast == general


def _call(
    data: bytes, offsets: list[int], out_size: int | None = None, tables: tuple[np.ndarray, ...] = ()
) -> int:
    n = len(offsets) - 1
    buf = np.frombuffer(data, dtype=np.uint8)
    return _speedups.clean(
        buf,
        np.array(offsets, dtype=np.int64),
        np.ones(n, dtype=bool),
        True,
        True,
        *(tables or text._ENTITY_TABLES),
        text._nfc_safe(),
        np.empty(len(data) if out_size is None else out_size, dtype=np.uint8),
        np.empty(n + 1, dtype=np.int64),
        np.empty(n, dtype=bool),
        np.empty(n, dtype=bool),
    )


def _refusals(data: bytes, offsets: list[int]) -> list[str]:
    """What each compiled pass that takes (data, offsets) says when it refuses them."""
    buf = np.frombuffer(data, dtype=np.uint8)
    off = np.array(offsets, dtype=np.int64)
    n = len(offsets) - 1
    fields = [(buf, np.zeros(n + 1, np.int64), b"", b"", 1, False), (buf, off, b",", b"", 1, False)]
    per_value = (_speedups.hash64, _speedups.urls, _speedups.work, _speedups.commas, _speedups.gtins)
    minor, status = np.empty(n, np.int64), np.empty(n, np.uint8)
    calls = [
        *(partial(each, buf, off, np.empty(8 * n, dtype=np.uint8)) for each in per_value),
        partial(_speedups.prices, buf, off, np.zeros(n, np.int64), minor, status),
        partial(_speedups.rows, fields, b"", b"\n", np.empty(n, np.int64), text.heap_buffer),
    ]
    messages = []
    for call in calls:
        with pytest.raises(ValueError) as caught:
            call()
        messages.append(str(caught.value))
    return messages


@pytest.mark.parametrize(
    ("data", "offsets", "problem"),
    [
        (b"abc", [0, 2, 1, 3], "decrease"),
        (b"ab", [0, 1, 3], "outside data"),
        (b"ab", [1, 2, 2], "outside data"),
    ],
)
def test_every_pass_refuses_offsets_that_decrease_or_leave_the_data(
    data: bytes, offsets: list[int], problem: str
) -> None:
    messages = _refusals(data, offsets)
    assert len(messages) == 7 and all(problem in message for message in messages), messages


def test_the_compiled_pass_refuses_buffers_it_would_overrun() -> None:
    assert _call(b"a  b", [0, 4]) == 3
    with pytest.raises(ValueError, match="outside data"):
        _call(b"ab", [0, 3])
    with pytest.raises(ValueError, match="decrease"):
        _call(b"abc", [0, 2, 1, 3])
    with pytest.raises(ValueError, match="at least one"):
        none = np.zeros(0, dtype=bool)
        _speedups.clean(
            np.zeros(1, dtype=np.uint8), np.zeros(0, dtype=np.int64), none, True, True,
            *text._ENTITY_TABLES, text._nfc_safe(), np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64),
            none, none,
        )  # fmt: skip
    with pytest.raises(ValueError, match="out: 1 bytes, 4 needed"):
        _call(b"abcd", [0, 4], out_size=1)


def test_the_compiled_pass_refuses_an_entity_that_would_grow() -> None:
    no_reference, names, name_len, chars, char_len = text._ENTITY_TABLES
    grown = char_len.copy()
    grown[0] = name_len[0] + 1
    with pytest.raises(ValueError, match="entity 0"):
        _call(b"a &amp; b", [0, 9], tables=(no_reference, names, name_len, chars, grown))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(max_size=6), max_size=30),
    st.data(),
    st.integers(min_value=0, max_value=3),
)
def test_replace_rows_equals_arrow_replace_with_mask(
    values: list[str], data: st.DataObject, cut: int
) -> None:
    column = pa.array(["pad"] * cut + values, pa.large_string()).slice(cut)  # offsets not from 0
    rows = sorted(data.draw(st.sets(st.integers(0, max(len(values) - 1, 0)), max_size=len(values))))
    rows = [row for row in rows if row < len(values)]
    texts = st.lists(st.text(max_size=6), min_size=len(rows), max_size=len(rows))
    new = pa.array(data.draw(texts), pa.large_string())
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    expected = pc.replace_with_mask(column, pa.array(mask, pa.bool_()), new).to_pylist()
    got = text.replace_rows(column, np.array(rows, dtype=np.int64), new)
    got.validate(full=True)
    assert got.to_pylist() == expected


def test_splice_refuses_rows_out_of_order_or_range_and_a_short_out() -> None:
    data = np.frombuffer(b"abcdef", dtype=np.uint8)
    offsets = np.array([0, 2, 4, 6], dtype=np.int64)
    new = np.frombuffer(b"XY", dtype=np.uint8)

    def call(rows: list[int], new_offsets: list[int], out_size: int = 16) -> int:
        return _speedups.splice(
            data,
            offsets,
            np.array(rows, dtype=np.int64),
            new,
            np.array(new_offsets, dtype=np.int64),
            np.empty(out_size, dtype=np.uint8),
            np.empty(4, dtype=np.int64),
        )

    assert call([1], [0, 2]) == 6
    assert call([0, 2], [0, 1, 2]) == 4
    for rows in ([2, 1], [1, 1], [3], [-1]):
        with pytest.raises(ValueError, match="ascend"):
            call(rows, [0] * (len(rows) + 1))
    with pytest.raises(ValueError, match="new_offsets"):
        call([1], [0, 1, 2])
    with pytest.raises(ValueError, match="out too small"):
        call([1], [0, 2], out_size=5)
