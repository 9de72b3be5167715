from __future__ import annotations

import html
import threading
import unicodedata
from collections.abc import Callable
from html.entities import html5

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedgen import text


def run(values: list[str], **kwargs: bool) -> list[str]:
    return text.clean_text(pa.array(values, type=pa.large_string()), **kwargs).to_pylist()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("a &lt;b&gt; c", "a <b> c"),
        ("&amp;lt; stays one level", "&lt; stays one level"),
        ("dash&#8211;here", "dash\u2013here"),
        ("caf&eacute;", "caf\u00e9"),
        ("&quot;quoted&quot; &#39;x&#39;", "\"quoted\" 'x'"),
        ("AT&T", "AT&T"),
        ("&amp", "&"),
    ],
)
def test_unescape_matches_html_unescape(raw: str, expected: str) -> None:
    assert run([raw]) == [expected]
    assert expected == html.unescape(raw)


def test_strip_tags_keeps_paragraph_breaks_and_comparisons() -> None:
    raw = "<p>First &amp; best</p><!-- hidden --><ul><li>one</li><li>two</li></ul>a < b and c > d<br/>end"
    assert run([raw], html_allowed=True, keep_lines=True) == [
        "First & best\n\none\ntwo\na < b and c > d\nend"
    ]


def test_encoded_html_is_decoded_then_stripped() -> None:
    assert run(["&lt;p&gt;Hello&lt;/p&gt;"], html_allowed=True, keep_lines=True) == ["Hello"]


def test_control_characters_removed_tab_and_newline_kept_in_descriptions() -> None:
    raw = "bell\x07 vt\x0b nul\x00 del\x7f c1\x85 ok\tline\nnext"
    assert run([raw], keep_lines=True) == ["bell vt nul del c1 ok line\nnext"]
    assert run(["decoded &#7; control"]) == ["decoded control"]


def test_single_line_collapses_all_whitespace() -> None:
    assert run(["  two\nlines\t and\u3000wide  "]) == ["two lines and wide"]


def test_nfc() -> None:
    assert run(["Cafe\u0301"]) == ["Caf\u00e9"]


def test_empty_and_blank() -> None:
    assert run(["", "   "]) == ["", ""]


# --- the fast paths must give exactly what the plain formulations give ---------------------------

_TRICKY = [
    *["&amp;", "&amp", "&lt;", "&#8211;", "&#x2013;", "&#0;", "&#128;", "&#55296;", "&copy", "&copy;"],
    *["&notin;", "&noti", "&", ";", "#", "x", "a", " "],
    *["&AMP;", "&ampx;", "&notit;", "&not.x;", "&foo;", "&#38;", "&#x26;", "&#0038;", "&#X26;", "&#38"],
    *["&#x110000;", "&#1114112;", "&#13;", "&#7;", "&#150;", "&#xD800;", "&#99999999;", "&#", "&#x"],
    *["&" + "a" * 31 + ";", "&" + "a" * 33 + ";", "R&D", "AT&T", "&&", "9", "F", "é", "\n", "<", "lt"],
]
_WORDS = ["soft", "cotton", "shirt", "100%", "Größe", "AT&T", "R&D", "a<b", "x;y", "—"]
_HTML_TAGS = ["<p>", "</p>", "<br/>", "<ul>", "<li>", "</li>", "</ul>", "<b>", "</b>", "<!-- c -->", "\n"]


def large(values: list[str | None]) -> pa.Array:
    return pa.array(values, type=pa.large_string())


def chunked(values: list[str | None]) -> pa.ChunkedArray:
    cut = len(values) // 2
    return pa.chunked_array([large(values[:cut]), large([]), large(values[cut:])])


def expected_unescape(values: list[str | None]) -> list[str | None]:
    return [None if value is None else html.unescape(value) for value in values]


tricky_text = st.lists(st.sampled_from(_TRICKY), max_size=12).map("".join)
description = st.lists(
    st.one_of(
        st.sampled_from(_WORDS),
        st.sampled_from(_HTML_TAGS),
        st.sampled_from(sorted(html5)).map(lambda name: "&" + name),
        st.sampled_from(["&#8211;", "&#x2019;", "&#39;", "  ", " "]),
    ),
    max_size=40,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(tricky_text, st.none()), max_size=8))
def test_unescape_equals_html_unescape_on_tricky_pieces(values: list[str | None]) -> None:
    # several rows at once: what one row holds must not change how another decodes
    assert text.unescape(large(values)).to_pylist() == expected_unescape(values)
    assert text.unescape(chunked(values)).to_pylist() == expected_unescape(values)


@settings(max_examples=150, deadline=None)
@given(st.lists(description, min_size=1, max_size=6), st.integers(0, 5))
def test_unescape_equals_html_unescape_on_descriptions(values: list[str], start: int) -> None:
    sliced = large(["&amp; before", *values, "after &lt;"]).slice(1 + min(start, len(values)))
    expected = expected_unescape([*values[min(start, len(values)) :], "after &lt;"])
    assert text.unescape(sliced).to_pylist() == expected
    assert text.unescape(pa.array(values, type=pa.string())).to_pylist() == expected_unescape(values)


@pytest.mark.parametrize(
    "raw",
    [
        "a &ampersand b",  # "&amp" without ";" decodes, and "e" stays: one byte short of "&amp;"
        "x &copy2024 &reg;d &hellip;&hellip;&trade;",
        "&quot;q&quot; &lt;&gt;&amp;&#39;",  # one after another, each with 8 bytes or more after it
        "tail &mdash;",  # fewer than 8 bytes from "&" to the end
        "&frac12",
    ],
)
def test_common_entities_decode_as_html_unescape_does(raw: str) -> None:
    assert run([raw]) == [html.unescape(raw)]


@pytest.mark.parametrize(
    "raw",
    [
        "&&#110;ot;",  # the first "&" stays: decoding "&#110;" must not make "&not;"
        "&amp;#38; &#38;amp; &amp;lt; &#x26;lt;",  # decoded "&" is never decoded again
        "&#x&#x32;6; &#&#51;8;",
        "&copy2024 &amp, &lt3 &notin &noti; &#38 &#x26 end&amp",
        "&#0; &#128; &#159; &#55296; &#x110000; &#1; &#65534;",
        "&" + "a" * 33 + "; &AMPlt; &ampx;",
    ],
)
def test_unescape_edge_cases(raw: str) -> None:
    assert text.unescape(large([raw, "&lt;", "&not;", "&amp;", "&#38;", "&#110;"])).to_pylist() == (
        expected_unescape([raw, "&lt;", "&not;", "&amp;", "&#38;", "&#110;"])
    )


def collapse_reference(values: pa.Array, keep_lines: bool) -> pa.Array:
    """The former collapse_spaces: every run, even a lone " ", replaced."""
    if keep_lines:
        out = pc.replace_substring_regex(values, r"[\pZ\t\r\f\v]+", " ")
        out = pc.replace_substring_regex(out, r" ?\n ?", "\n")
        out = pc.replace_substring_regex(out, r"\n{3,}", "\n\n")
    else:
        out = pc.replace_substring_regex(values, r"[\s\pZ]+", " ")
    return pc.utf8_trim_whitespace(out)


_SPACES = [" ", "\n", "\t", "\r", "\f", "\v", "\x85", "\u00a0", "\u2000", "\u2028", "\u2029", "\u3000"]
spacey_text = st.lists(st.sampled_from([*_SPACES, "a", "\u200b", "\x1c", "<p>"]), max_size=16).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(spacey_text, max_size=6), st.booleans())
def test_collapse_spaces_equals_replacing_every_run(values: list[str], keep_lines: bool) -> None:
    arr = large(values)
    assert text.collapse_spaces(arr, keep_lines).equals(collapse_reference(arr, keep_lines))


def every_code_point() -> pa.Array:
    return large([chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])


def test_strip_controls_and_nfc_equal_the_plain_kernels_for_every_code_point() -> None:
    cps = every_code_point()
    assert text.strip_controls(cps).equals(pc.replace_substring_regex(cps, text._CONTROL, ""))
    assert text.nfc(cps).equals(pc.utf8_normalize(cps, form="NFC"))
    marks = ["\u0301", "\u0308", "\u0327", "\u0338", "\u093c", "\u1161", "\u11a8", "\u3099"]
    pairs = large([chr(c) + m for c in [*range(0x41, 0x80), *range(0x300, 0x3400, 7)] for m in marks])
    assert text.nfc(pairs).equals(pc.utf8_normalize(pairs, form="NFC"))


def test_nfc_skips_only_characters_nfc_keeps_on_their_own_and_beside_others() -> None:
    # NFC changes nothing made of characters with quick check "yes" and combining class 0; the
    # characters that may follow another in a canonical pair have quick check "maybe"
    pairs = [unicodedata.decomposition(chr(c)).split() for c in range(0x110000)]
    trailing = {int(p[1], 16) for p in pairs if len(p) == 2 and not p[0].startswith("<")}
    trailing |= {*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)}  # Hangul vowels, final consonants
    cps = every_code_point()
    maybe = pc.match_substring_regex(cps, text._NFC_MAYBE).to_pylist()
    skipped = [char for char, changes in zip(cps.to_pylist(), maybe, strict=True) if not changes]
    assert len(skipped) > 0x300
    for char in skipped:
        assert unicodedata.combining(char) == 0 and unicodedata.normalize("NFC", char) == char, char
        assert ord(char) not in trailing and unicodedata.category(char) != "Cn", char


control_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("\x00\x07\t\n\r\x1f\x7f\x80\x85\x9f\xa0\ufffe\uffff\ufffd"),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(control_text, st.none()), max_size=6), st.integers(0, 3))
def test_strip_controls_and_nfc_on_slices_and_chunks(values: list[str | None], start: int) -> None:
    for arr in (large(values).slice(min(start, len(values))), chunked(values), pa.array(values, pa.string())):
        assert text.strip_controls(arr).equals(pc.replace_substring_regex(arr, text._CONTROL, ""))
        assert text.nfc(arr).equals(pc.utf8_normalize(arr, form="NFC"))


def test_data_bytes_respects_slices() -> None:
    arr = large(["ab", None, "cde", "", "f"])
    assert text.data_bytes(arr.slice(2, 2)).tobytes() == b"cde"
    assert text.data_bytes(pa.array(["xy", "z"], type=pa.string()).slice(1)).tobytes() == b"z"
    assert text.data_bytes(arr.slice(5)).tobytes() == b""
    assert text.data_bytes(large([])).tobytes() == b""


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(description, tricky_text, spacey_text), max_size=6))
def test_clean_text_on_chunks_equals_clean_text_on_one_array(values: list[str]) -> None:
    for kwargs in ({}, {"html_allowed": True, "keep_lines": True}):
        whole = text.clean_text(large(values), **kwargs)
        assert text.clean_text(chunked(values), **kwargs).to_pylist() == whole.to_pylist()


def test_to_series_places_values_by_position_on_any_index() -> None:
    series = text.to_series(pa.array(["a", "b"], type=pa.large_string()), pd.Index([7, 3]))
    assert series.tolist() == ["a", "b"] and series.index.tolist() == [7, 3]


@pytest.mark.parametrize(
    ("values", "fn", "expected"),
    [
        (["new", "Used", None, "new"], str.lower, ["new", "used", "", "new"]),
        (["new", "used", None], str.lower, ["new", "used", ""]),  # a missing value is fn("")
        (["in stock", "in stock", "sold out"], str.upper, ["IN STOCK", "IN STOCK", "SOLD OUT"]),
        ([], str.upper, []),
    ],
)
def test_by_value_calls_fn_once_per_distinct_value(
    values: list[str | None], fn: Callable[[str], str], expected: list[str]
) -> None:
    calls: list[str] = []

    def counted(value: str) -> str:
        calls.append(value)
        return fn(value)

    series = text.to_series(pa.array(values, pa.large_string()), pd.RangeIndex(3, 3 + len(values)))
    out = text.by_value(series, counted)
    assert out.tolist() == expected and out.index.equals(series.index) and out.dtype == text.STR
    assert sorted(calls) == sorted({v or "" for v in values})


def test_by_value_keeps_a_column_fn_leaves_as_it_is_without_a_copy() -> None:
    series = text.to_series(pa.array(["new", "used", "new"], pa.large_string()), pd.RangeIndex(3))
    same = text.by_value(series, str.lower)
    assert same.tolist() == ["new", "used", "new"]
    assert text.value_offsets(text.to_arrow(same)).ctypes.data == (
        text.value_offsets(text.to_arrow(series)).ctypes.data
    )
    changed = text.by_value(series, str.upper)
    assert text.value_offsets(text.to_arrow(changed)).ctypes.data != (
        text.value_offsets(text.to_arrow(series)).ctypes.data
    )


@pytest.mark.parametrize(
    "values",
    [
        pa.array(["a", None, "c"], pa.string()),
        pa.array(["a", None, "c"], pa.large_string()),
        pa.array(["x", "a", "b", "c"], pa.large_string()).slice(1),
        pa.chunked_array([pa.array(["a", None]), pa.array(["c"])]),
        pa.array([], pa.large_string()),
    ],
)
def test_to_series_is_what_pandas_makes_of_the_array(values: pa.Array | pa.ChunkedArray) -> None:
    """The str dtype (missing values as NaN), the values, and an index of the array's length."""
    index = pd.RangeIndex(10, 10 + len(values))
    series = text.to_series(values, index)
    expected = pd.Series(values, dtype="str", index=index)
    assert series.dtype == expected.dtype == text.STR
    assert series.equals(expected) and series.isna().tolist() == expected.isna().tolist()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x &lt;\u0338 y", "x \u226e y"),  # a decoded "<" composes with the mark after it
        ("e<b>\u0301</b>", "\u00e9"),  # a removed tag left a base and its mark side by side
        ("e&#769; caf&eacute;", "\u00e9 caf\u00e9"),
        ("a&#11;b&#x7f;c&#0;", "abc\ufffd"),  # html.unescape drops these itself
        ("a&#12;b&#x81;c&#x9d;d", "abcd"),  # html.unescape gives form feed, U+0081, U+009D: removed after
    ],
)
def test_clean_text_is_nfc_after_entities_and_tags(raw: str, expected: str) -> None:
    cleaned = text.clean_text(pa.array([raw]), html_allowed=True, keep_lines=True)[0].as_py()
    assert cleaned == expected
    assert cleaned == unicodedata.normalize("NFC", cleaned)


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_offsets_from_zero_count_from_the_first_value_and_copy_only_when_they_must(kind: pa.DataType) -> None:
    whole = pa.array(["ab", "", "cde", "f"], kind)
    sliced = whole.slice(1, 3)
    assert text.offsets_from_zero(whole).tolist() == [0, 2, 2, 5, 6]
    assert text.offsets_from_zero(sliced).tolist() == [0, 0, 3, 4]
    own = np.frombuffer(whole.buffers()[1], dtype=np.int64 if kind == pa.large_string() else np.int32)
    assert np.shares_memory(text.offsets_from_zero(whole), own) == (kind == pa.large_string())
    assert not np.shares_memory(text.offsets_from_zero(sliced), own)
    assert whole.to_pylist() == ["ab", "", "cde", "f"]  # left as it was


def test_spare_buffers_give_a_thread_its_freed_buffer_again() -> None:
    spares = text.SpareBuffers()
    first = spares(1000)
    address = first.address
    assert (first.size, first.is_mutable) == (1000, True)
    del first
    again = spares(900)  # smaller fits too
    assert (again.address, again.size) == (address, 900)
    del again
    larger = spares(1200)  # more than the spare holds (1000 and an eighth): a new one
    assert larger.address != address and larger.size == 1200


def test_spare_buffers_never_give_a_buffer_still_referred_to() -> None:
    spares = text.SpareBuffers()
    held = spares(64)
    np.frombuffer(held, dtype=np.uint8)[:] = ord("x")
    part = held.slice(8, 8)
    del held  # the slice keeps it
    other = spares(64)
    assert other.address != part.address - 8
    np.frombuffer(other, dtype=np.uint8)[:] = ord("y")
    assert part.to_pybytes() == b"x" * 8
    address = other.address
    del other
    assert spares(64).address == address  # the newer one is the spare now


def test_spare_buffers_are_per_thread() -> None:
    spares = text.SpareBuffers()
    mine = spares(100)
    address = mine.address
    del mine
    theirs: list[int] = []
    worker = threading.Thread(target=lambda: theirs.append(spares(100).address))
    worker.start()
    worker.join()
    assert theirs[0] != address  # the other thread made its own
    assert spares(100).address == address


@pytest.mark.parametrize("size", [0, 1, 9 << 20])
def test_heap_buffer_is_mutable_and_as_large_as_asked(size: int) -> None:
    buffer = text.heap_buffer(size)
    assert (buffer.size, buffer.is_mutable) == (size, True)
    if size:
        memoryview(buffer)[size - 1] = 7  # the last byte is writable
        assert buffer.to_pybytes()[-1] == 7
