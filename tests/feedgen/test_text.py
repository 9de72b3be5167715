from __future__ import annotations

import html

import pyarrow as pa
import pytest

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
