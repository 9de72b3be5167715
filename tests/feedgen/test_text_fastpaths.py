"""The steps that first pick the rows they may change must give what the plain kernels give on every row."""

from __future__ import annotations

import html

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedgen import _speedups, text
from feedgen.catalog import _URL_LIST_PLAIN

#: "&" before each byte that starts no reference, and before ones that may; "<!--" split over rows
_PIECES = ["&", "& ", "&\t", "&\n", "&\f", "&<", "&&", "&;", "&amp;", "&#38;", "&copy", "&#", "&x", "&\r"]
_PIECES += [
    "<!--",
    "-->",
    "<!",
    "--",
    "<!-- c -->",
    "<p>",
    "</P>",
    "<br/>",
    "<b>",
    "<",
    ">",
    "!",
    "a",
    " ",
    "\n",
]
pieces = st.lists(st.sampled_from(_PIECES), max_size=10).map("".join)


def strip_tags_reference(values: pa.Array) -> pa.Array:
    """strip_tags as plain passes over every row."""
    out = pc.replace_substring_regex(values, text._COMMENT, "")
    out = pc.replace_substring_regex(out, text._BLOCK_TAG, "\n")
    return pc.replace_substring_regex(out, text._ANY_TAG, "")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(pieces, st.none()), max_size=8), st.integers(0, 3))
def test_unescape_skips_only_rows_whose_ampersands_start_no_reference(
    values: list[str | None], start: int
) -> None:
    arr = pa.array(values, type=pa.large_string()).slice(min(start, len(values)))
    expected = [None if v is None else html.unescape(v) for v in values[min(start, len(values)) :]]
    assert text.unescape(arr).to_pylist() == expected


@settings(max_examples=400, deadline=None)
@given(st.lists(pieces, max_size=8), st.integers(0, 3))
def test_strip_tags_comment_rows_equal_plain_passes(values: list[str], start: int) -> None:
    for arr in (
        pa.array(values, type=pa.large_string()).slice(min(start, len(values))),
        pa.array(values, type=pa.string()),
    ):
        assert text.strip_tags(arr).equals(strip_tags_reference(arr))


def test_ampersand_at_a_row_end_before_a_letter_in_the_next_row() -> None:
    arr = pa.array(["Sakura &", "amp; stays", "R& D", "&amp;"], type=pa.large_string())
    assert text.unescape(arr).to_pylist() == ["Sakura &", "amp; stays", "R& D", "&"]


def test_comment_split_over_rows_is_no_comment() -> None:
    arr = pa.array(["x <!", "-- y --> z", "<!-- gone --><p>kept", "<!-- open"], type=pa.large_string())
    assert text.strip_tags(arr).to_pylist() == ["x <!", "-- y --> z", "\nkept", "<!-- open"]
    assert (
        text.strip_tags(pa.chunked_array([arr[:2], arr[2:]])).to_pylist() == text.strip_tags(arr).to_pylist()
    )


#: every common entity, their near misses (no ";", a longer name, another case) and rarer references
_ENTITY_PIECES = [name.decode() for name, _ in text._COMMON] + [
    "&amp", "&AMP;", "&middotx;", "&#8211", "&#x2013;", "&#0;", "&#128;", "&notit;", "&eacute;", "&",
    ";", "amp;", "lt;", "#8211;", "é", "日", "a", " ", "\n",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(_ENTITY_PIECES), max_size=12).map("".join))))
def test_unescape_byte_pass_equals_html_unescape(values: list[str | None]) -> None:
    """Rows of common entities only (the byte pass) and the others (the general path) alike."""
    for array in (pa.array(values, pa.string()), pa.array(["&lt;", *values], pa.large_string()).slice(1)):
        want = [None if v is None else html.unescape(v) for v in values]
        assert text.unescape(array).to_pylist() == want


def test_common_entities_decode_as_html_unescape_does() -> None:
    row = "".join(f"x{name.decode()}" for name, _ in text._COMMON)
    assert text.unescape(pa.array([row, None, row])).to_pylist() == [
        html.unescape(row),
        None,
        html.unescape(row),
    ]


def test_byte_pass_never_reads_an_entity_across_rows() -> None:
    rows = ["a &", "amp; b &lt;", "&#8211", ";x &amp;", "&lt", ";", "&middot"]
    assert text.unescape(pa.array(rows)).to_pylist() == [html.unescape(r) for r in rows]


_TAG_NAMES = ["br", "p", "/p", "div", "/div", "li", "h1", "h6", "/h3", "h7", "tr", "/tr", "/ul", "/ol"]
_TAG_NAMES += ["/table", "table", "b", "span", "pre", "ul", "k", "\u212a", "s", "\u017f"]


def _cased(name_and_bits: tuple[str, int]) -> str:
    """The name with the letters whose bit is set in upper case."""
    name, bits = name_and_bits
    return "".join(c.upper() if bits >> i & 1 else c for i, c in enumerate(name))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["<", "< ", "<\t"]),
            st.tuples(st.sampled_from(_TAG_NAMES), st.integers(0, 63)).map(_cased),
            st.sampled_from(["", " class='x'", "/", " /", "s"]),
            st.sampled_from([">", "", ">x"]),
        ).map("".join),
        max_size=6,
    ).map("".join)
)
@settings(max_examples=300, deadline=None)
def test_block_tag_pattern_matches_as_case_insensitive_names(value: str) -> None:
    """The block-tag pattern spells case with classes; it must find what "(?i)" and the names find."""
    arr = pa.array([value])
    case_insensitive = r"(?i)<\s*(br|/p|/div|/h[1-6]|/tr|/ul|/ol|/table|p|div|li|h[1-6])(\s[^<>]*)?/?>"
    assert pc.replace_substring_regex(arr, text._BLOCK_TAG, "\n").equals(
        pc.replace_substring_regex(arr, case_insensitive, "\n")
    )


def collapse_reference(values: pa.Array) -> pa.Array:
    """collapse_spaces(keep_lines=True) as plain passes over every row."""
    out = pc.replace_substring_regex(values, text._SPACES_KEEP_LINES, " ")
    out = pc.replace_substring_regex(out, r"(?: ?\n){3,} ?", "\n\n")
    out = pc.replace_substring_regex(out, r" \n ?|\n ", "\n")
    return pc.utf8_trim_whitespace(out)


spaced = st.lists(
    st.sampled_from([" ", "  ", "\n", "\n\n", "\t", "\r", "\u00a0", "\u3000", "a", "bc"]), max_size=12
)


@given(st.lists(spaced.map("".join), min_size=1, max_size=6), st.integers(0, 5))
@settings(max_examples=400, deadline=None)
def test_line_break_passes_on_some_rows_equal_plain_passes(values: list[str], start: int) -> None:
    arr = pa.array(values)
    assert text.collapse_spaces(arr, keep_lines=True).equals(collapse_reference(arr))
    assert text.collapse_spaces(arr.slice(min(start, len(values))), keep_lines=True).equals(
        collapse_reference(arr.slice(min(start, len(values))))
    )


def test_hashes_tell_distinct_values_apart_and_equal_values_alike() -> None:
    """Every value of many short and similar ones (trailing zero bytes, one byte apart, 0 to 24
    bytes: the tail word and the length both count) hashes apart; equal values hash alike
    wherever they sit, in slices and chunks."""
    values = sorted(
        {""}
        | {f"SKU-{i:07d}" for i in range(100_000)}
        | {"a" + "\0" * k for k in range(24)}
        | {bytes([b]).decode("latin-1") * k for b in range(1, 128) for k in range(1, 17)}
    )
    arr = pa.array(values, pa.large_string())
    got = text.hashes(arr)
    assert got.dtype == np.uint64 and len(np.unique(got)) == len(values)
    again = text.hashes(pa.chunked_array([arr.slice(5, 10), arr.slice(0, 5), arr.slice(15)]))
    assert list(again[:10]) == list(got[5:15]) and list(again[10:15]) == list(got[:5])
    assert list(text.hashes(pa.array(values[:50], pa.string()))) == list(got[:50])


def test_hash64_checks_its_arguments() -> None:
    data = np.frombuffer(b"abcdef", dtype=np.uint8)
    with pytest.raises(ValueError, match="offsets"):
        _speedups.hash64(data, np.array([0, 3, 9], dtype=np.int64), np.empty(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="room"):
        _speedups.hash64(data, np.array([0, 3, 6], dtype=np.int64), np.empty(1, dtype=np.uint64))


def test_blank_reads_empty_values_from_the_offsets() -> None:
    arr = pa.array(["", "x", None, "", "yz", ""], pa.large_string())
    assert list(text.blank(arr)) == [True, False, False, True, False, True]
    assert list(text.blank(arr.slice(2, 3))) == [False, True, False]
    assert list(text.blank(pa.chunked_array([arr.slice(0, 2), arr.slice(3)]))) == [
        True,
        False,
        True,
        False,
        True,
    ]


_URL_PIECES = st.sampled_from(
    [
        *("http://", "https://", "Http://", "http:/", "a", "b.c", ".", "..", "/", "?", "#", ":", " "),
        *("\t", "\n", "\x0b", "\x0c", "\r", "\u00e9", "\u3000", "\u00a0", "x.y", "-", "%20", ","),
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(_URL_PIECES, max_size=8).map("".join), max_size=20))
def test_urls_match_what_re2_matches(values: list[str]) -> None:
    arr = pa.array(values, pa.large_string())
    assert list(text.urls(arr)) == [bool(b) for b in pc.match_substring_regex(arr, text.URL).to_pylist()]


def test_urls_on_the_forms_the_pattern_names() -> None:
    values = [
        "https://a.b",
        "http://a.b/",
        "https://a.b?q",
        "https://a.b#f",
        "https://a.b/ x",
        "https://a./b",
    ]
    values += [
        "https://.a/b",
        "https://ab/c.d",
        "https://a.b\x0b",
        "https://a.b\t",
        "https://a\u00e9.b/\u3000",
        "",
    ]
    values += ["https://a#b.c", "https://a?b.c", "https://a/b.c", "https://a b.c"]  # the dot past the host
    assert list(text.urls(pa.array(values))) == [True] * 4 + [False] * 4 + [True, False, True] + [False] * 5
    assert list(text.urls(pa.chunked_array([pa.array(values[:2]), pa.array(values[2:5])]))) == [True] * 4 + [
        False
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from(list(",a ,\u00e9\u3001,,")), max_size=12) | st.none(), max_size=20))
def test_commas_count_what_arrow_counts(values: list[str | None]) -> None:
    arr = pa.array(values, pa.large_string())
    expected = [n or 0 for n in pc.count_substring(arr, ",").to_pylist()]
    assert list(text.commas(arr)) == expected
    assert list(text.commas(pa.chunked_array([arr.slice(0, 3), arr.slice(3)]))) == expected


_LIST_PIECES = st.sampled_from(
    [
        *("http://", "https://", "Http://", "a", "b.c", ".", "/", "?", "#", ",", ",,", "|", ";", " "),
        *("\t", "\x0b", "\x1c", "\x1f", "\u00e9", "\u3000", "\u0085", "x.y", "-", "%20", "://"),
    ]
)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.lists(_LIST_PIECES, max_size=10).map("".join) | st.none(), max_size=20))
def test_url_lists_are_what_the_plain_pattern_matches(values: list[str | None]) -> None:
    """Every list the compiled check passes, the pattern matches; for ASCII values, the same lists."""
    arr = pa.array(values, pa.large_string())
    plain = text.url_lists(arr)
    regex = [bool(b) for b in pc.match_substring_regex(arr, _URL_LIST_PLAIN).to_pylist()]
    for value, mine, theirs in zip(values, plain, regex, strict=True):
        assert not mine or theirs, value
        if value is None or value.isascii():
            assert mine == theirs, value


def test_url_lists_on_the_forms_the_pattern_names() -> None:
    good = ["https://a.b", "http://a.b/c,https://d.e?f#g", "http://a.b.c/d.e"]
    bad = ["https://a.b,", ",https://a.b", "https://a.b,,http://c.d", "https://.ab", "https://ab."]
    bad += ["https://a/b.c", "http:///b.c", "https://?a.b", "https://#a.b", "https://a.b|http://c.d"]
    bad += ["https://a.b;http://c.d", "http://a.b\u00e9"]
    bad += [f"https://a.b{c}" for c in " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"]
    values = pa.array(good + bad)
    assert list(text.url_lists(values)) == [True] * len(good) + [False] * len(bad)
    # a slice, a chunked column and a missing value
    assert list(text.url_lists(values.slice(1, 3))) == [True, True, False]
    chunked = pa.chunked_array([values.slice(0, 2), pa.array([None, "https://a.b"], pa.string())])
    assert list(text.url_lists(chunked)) == [True, True, False, True]
    assert pc.match_substring_regex(values, _URL_LIST_PLAIN).to_pylist()[: len(good)] == [True] * len(good)
