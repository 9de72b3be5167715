"""RSS details: escaping, repeated elements, the channel, the line limit, random round trips."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from writer_samples import platform_frame, render

from feedgen.errors import PublishError
from feedgen.writers._xml import G_NS, MAX_LINE_BYTES, escape_text, items
from feedgen.writers.base import Channel
from feedgen.writers.google import GoogleXmlWriter

G = f"{{{G_NS}}}"
SAMPLES = ["", "a & b", "<x>", "]]>", "&amp;", "cr\rlf\r\n", "緑茶 <&> 茶", "plain"]


def test_items_escape_values_as_escape_text_does() -> None:
    assert escape_text("a&b<c>d\re") == "a&amp;b&lt;c&gt;d&#13;e"
    arr = pa.array(SAMPLES, pa.large_string())
    table = pa.table({"title": pa.chunked_array([arr.slice(0, 3), arr.slice(3)]), "id": arr})
    data, lengths = items(table)
    data = data.slice(0, int(lengths.sum()))  # the rows; scratch room follows
    expected = [
        "<item>" + "".join(f"<g:{f}>{escape_text(s)}</g:{f}>" for f in ("title", "id") if s) + "</item>\n"
        for s in SAMPLES
    ]
    assert data.to_pybytes() == "".join(expected).encode()
    assert lengths.tolist() == [len(line.encode()) for line in expected]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from(["a", ",", "&", "<", ">", "\r", "\n", "é", "茶", " "]), max_size=6)))
def test_repeated_field_gets_an_element_per_comma_separated_value(values: list[str]) -> None:
    table = pa.table({"additional_image_link": pa.array(values, pa.large_string())})
    data, lengths = items(table)
    data = data.slice(0, int(lengths.sum()))  # the rows; scratch room follows
    tag = "g:additional_image_link"
    expected = [
        "<item>"
        + ("".join(f"<{tag}>{escape_text(part)}</{tag}>" for part in v.split(",")) if v else "")
        + "</item>\n"
        for v in values
    ]
    assert data.to_pybytes() == "".join(expected).encode()
    assert lengths.tolist() == [len(line.encode()) for line in expected]


def test_channel_is_escaped() -> None:
    data = render(
        "google-xml", [], Channel(title="A & B <shop>", link="https://x.jp/?a=1&b=2", description="d\r")
    )
    channel = etree.fromstring(data)[0]
    assert [channel.findtext(t) for t in ("title", "link", "description")] == [
        "A & B <shop>",
        "https://x.jp/?a=1&b=2",
        "d\r",
    ]


def test_additional_images_become_one_element_each() -> None:
    root = etree.fromstring(render("meta-xml", [platform_frame("meta")]))
    items = root[0].findall("item")
    counts = [len(item.findall(G + "additional_image_link")) for item in items]
    assert counts == [3, 1, 0, 2, 2, 0]


def test_item_over_the_line_limit_is_refused() -> None:
    frame = platform_frame("google").iloc[:2].reset_index(drop=True)
    # "&" grows to "&amp;" when escaped: the check is on the written bytes, not the input length
    frame.loc[1, "description"] = "&" * (MAX_LINE_BYTES // 5 + 1)
    fh = io.BytesIO()
    writer = GoogleXmlWriter(fh, Channel("t", "l", "d"))
    header = fh.getvalue()
    with pytest.raises(PublishError, match=r"id='MUG-2' is 5,24\d,\d{3} bytes, over the 5,242,880-byte"):
        writer.write(frame)
    assert fh.getvalue() == header


def test_item_over_the_line_limit_does_not_count_when_its_row_is_left_out() -> None:
    """The limit holds for the lines written: a rejected row's item is never made, so it cannot fail
    the feed."""
    frame = platform_frame("google").iloc[:2].reset_index(drop=True)
    frame.loc[1, "description"] = "&" * (MAX_LINE_BYTES // 5 + 1)
    pieces, count = GoogleXmlWriter.encode(frame, np.array([True, False]))
    alone, _ = GoogleXmlWriter.encode(frame.iloc[:1])
    assert count == 1
    assert b"".join(map(bytes, pieces)) == b"".join(map(bytes, alone))


def test_long_items_under_the_limit_are_written_one_per_line() -> None:
    frame = platform_frame("google")
    frame["description"] = pd.Series(["説明" * 4000 + "\n" + "x" * 999] * len(frame), dtype="str")
    data = render("google-xml", [frame])
    lines = data.split(b"\n")
    assert max(map(len, lines)) <= MAX_LINE_BYTES
    assert len(etree.fromstring(data)[0].findall("item")) == len(frame)


_XML_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("&<>\"'\r\n\t]; 緑")),
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(titles=st.lists(_XML_TEXT, min_size=1, max_size=6))
def test_random_text_round_trips_through_xml(titles: list[str]) -> None:
    frame = platform_frame("google").iloc[: len(titles)].reset_index(drop=True)
    titles = titles[: len(frame)]
    frame["title"] = pd.Series(titles, dtype="str")
    items = etree.fromstring(render("google-xml", [frame]))[0].findall("item")
    assert [item.findtext(G + "title") for item in items] == titles
