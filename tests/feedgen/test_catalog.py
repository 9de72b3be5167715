from __future__ import annotations

import random
import re
import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import ean

from feedgen import _speedups, catalog, text
from tests.feedgen.helpers import chunk

CTX = catalog.CleanContext(
    currency="JPY", as_of=datetime(2026, 11, 20, tzinfo=UTC), price_bands=(2000.0, 5000.0)
)


def clean(*rows: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return catalog.clean(chunk(*rows), CTX)


def test_text_columns_are_cleaned() -> None:
    out, _ = clean(
        {
            "title": ' Drink, "Pro"\nEdition ',
            "description": "<p>Tasty &amp; good</p>\x07",
            "brand": "A &amp; B",
        }
    )
    assert out.loc[0, "title"] == 'Drink, "Pro" Edition'
    assert out.loc[0, "description"] == "Tasty & good"
    assert out.loc[0, "brand"] == "A & B"


def test_availability_spellings_map_to_one_token() -> None:
    values = [
        "in stock",
        "In Stock",
        "in_stock",
        "out-of-stock",
        "preorder",
        "available for order",
        "backorder",
        "maybe",
        "IN\u00a0STOCK",
        "out \u3000 of-stock",
    ]
    out, _ = clean(*({"availability": v} for v in values))
    assert list(out["_availability"]) == ["in_stock"] * 3 + [
        "out_of_stock",
        "preorder",
        "backorder",
        "backorder",
        "",
        "in_stock",  # any whitespace separates words, as Python's \s reads it
        "out_of_stock",
    ]


def test_enumerations_map_each_row_when_every_value_differs() -> None:
    rows = [{"gender": g, "condition": c} for g, c in (("M", "NEW"), ("Female", "Used"), ("x1", "x2"))]
    out, _ = clean(*rows)
    assert list(out["gender"]) == ["male", "female", "x1"]
    assert list(out["condition"]) == ["new", "used", "x2"]


def test_prices_formatted_with_row_currency_or_shop_default() -> None:
    out, _ = clean({"price": "1,980"}, {"price": "15.5", "currency": "usd"}, {"price": "12", "currency": ""})
    assert list(out["price"]) == ["1980 JPY", "15.50 USD", "12 JPY"]


def test_sale_not_lower_is_dropped_with_warning() -> None:
    out, found = clean({"price": "1980", "sale_price": "2500"})
    assert out.loc[0, "sale_price"] == ""
    assert list(found["reason"]) == ["sale_price_not_lower"]
    assert list(found["severity"]) == ["warning"]


def test_expired_sale_dropped_active_sale_kept_and_normalised() -> None:
    out, found = clean(
        {"sale_price": "1500", "sale_price_effective_date": "2025-01-01/2025-12-31"},
        {"sale_price": "1500", "sale_price_effective_date": "2026-11-01T00:00+0900/2027-01-31T23:59+0900"},
        {"sale_price": "1500", "sale_price_effective_date": "2026-11-01/2099-12-31"},
        {"sale_price": "1500"},
        {"sale_price": "1500", "sale_price_effective_date": "soon"},
    )
    assert list(out["sale_price"]) == ["", "1500 JPY", "1500 JPY", "1500 JPY", ""]
    assert out.loc[1, "sale_price_effective_date"] == "2026-11-01T00:00+0900/2027-01-31T23:59+0900"
    assert out.loc[2, "sale_price_effective_date"] == "2026-11-01T00:00+0000/2099-12-31T23:59+0000"
    assert list(found["reason"]) == ["sale_expired", "sale_window_unparseable"]
    assert list(found["row"]) == [1, 5]


def test_each_sale_outcome_in_one_chunk_lands_on_its_own_row() -> None:
    """Rows with and without a sale, mixed: each keeps or drops its sale and its window by its own
    rules, and a sale on a row without a valid price is not judged against that price."""
    window = "2026-11-01/2099-12-31"
    normalised = "2026-11-01T00:00+0000/2099-12-31T23:59+0000"
    out, found = clean(
        {"price": "1980"},  # no sale
        {"price": "1980", "sale_price": "2500", "sale_price_effective_date": window},  # not lower
        {"price": "", "sale_price": "1500"},  # no price: the sale is not compared
        {"price": "1980", "sale_price": "abc", "sale_price_effective_date": window},  # unparseable
        {"price": "1980", "sale_price": "1500", "sale_price_effective_date": window},  # kept
        {"price": "1980", "sale_price_effective_date": window},  # a window without a sale
        {"price": "1980", "sale_price": "1,500", "sale_price_effective_date": "2020-01-01/2020-02-01"},
    )
    assert list(out["sale_price"]) == ["", "", "1500 JPY", "", "1500 JPY", "", ""]
    assert list(out["sale_price_effective_date"]) == ["", "", "", "", normalised, "", ""]
    assert list(zip(found["row"], found["reason"], strict=True)) == [
        (2, "sale_price_not_lower"),
        (4, "sale_price_unparseable"),
        (7, "sale_expired"),
    ]


def test_gtin_check_digit() -> None:
    out, _ = clean(
        {"gtin": "4901234567894"},
        {"gtin": "4901234567890"},
        {"gtin": ""},
        {"gtin": "036000291452"},
        {"gtin": "490-1234-567894"},
        {"gtin": "12345"},
    )
    assert list(out["_gtin_ok"]) == [True, False, True, True, True, False]


def test_urls_must_be_absolute_http() -> None:
    out, _ = clean(
        {"link": "https://a.example/x"},
        {"link": "/products/x"},
        {"link": "ftp://a.example/x"},
        {"link": "https://a.example/x?q=1&amp;r=2"},
    )
    assert list(out["_link_ok"]) == [True, False, False, True]
    assert out.loc[3, "link"] == "https://a.example/x?q=1&r=2"


def test_additional_images_normalised_and_bad_ones_dropped() -> None:
    out, found = clean(
        {"additional_image_link": "https://a.example/1.jpg, https://a.example/2.jpg"},
        {"additional_image_link": "https://a.example/1.jpg|not-a-url"},
    )
    assert list(out["additional_image_link"]) == [
        "https://a.example/1.jpg,https://a.example/2.jpg",
        "https://a.example/1.jpg",
    ]
    assert list(found["reason"]) == ["invalid_url"]


def test_price_band_and_tier_labels() -> None:
    out, _ = clean({"price": "1999", "tier": "2.0"}, {"price": "2000"}, {"price": "9000"}, {"price": "bad"})
    assert list(out["price_band"]) == ["0-2000", "2000-5000", "5000+", ""]
    assert out.loc[0, "tier"] == "2"


def test_whole_number_tiers_lose_their_zero_fraction_only() -> None:
    tiers = ["2.0", "10.000", "2.5", "2.", ".0", "x2.0", "\uff12.0", "3", "", "2.0", "1.0"]
    out, _ = clean(*({"tier": tier} for tier in tiers))
    assert list(out["tier"]) == ["2", "10", "2.5", "2.", ".0", "x2.0", "\uff12", "3", "", "2", "1"]


def test_id_tracker_finds_duplicates_across_chunks() -> None:
    tracker = catalog.IdTracker()
    first = tracker.duplicates(pd.Series(["a", "b", "a", ""]))
    second = tracker.duplicates(pd.Series(["c", "b", "", "c"]))
    assert list(first) == [False, False, True, False]
    assert list(second) == [False, True, False, True]


def test_id_tracker_over_many_chunks_matches_a_set() -> None:
    rng = random.Random(7)
    tracker = catalog.IdTracker()
    seen: set[str] = set()
    for size in [0, 1, 5, 300, 2000, 17, 0, 999, 1500, 40, 2500] * 3:
        ids = [
            rng.choice(["", f"SKU-{rng.randrange(6000)}"])
            if rng.random() < 0.05
            else f"SKU-{rng.randrange(6000)}"
            for _ in range(size)
        ]
        expected = []
        for value in ids:
            expected.append(value != "" and value in seen)
            if value:
                seen.add(value)
        got = tracker.duplicates(pd.Series(ids, index=range(100, 100 + size), dtype="str"))
        assert list(got.index) == list(range(100, 100 + size))
        assert got.dtype == bool
        assert list(got) == expected
    assert len(tracker) == len(seen)
    assert np.count_nonzero(tracker._table) == len(seen)  # each id once


def test_id_tracker_grows_its_table_and_keeps_what_it_saw() -> None:
    tracker = catalog.IdTracker()
    start = len(tracker._table)
    for part in range(5):  # 150,000 ids: the table doubles more than once
        ids = pd.Series([f"SKU-{part}-{i}" for i in range(30_000)], dtype="str")
        assert not tracker.duplicates(ids).any()
        assert 2 * len(tracker) <= len(tracker._table)
    assert len(tracker) == 150_000 and len(tracker._table) >= 4 * start
    again = pd.Series([f"SKU-{part}-{i}" for part in range(5) for i in (0, 29_999)] + ["new"], dtype="str")
    assert list(tracker.duplicates(again)) == [True] * 10 + [False]


def test_seen_marks_repeats_in_order_and_skips_absent_rows() -> None:
    hashes = np.array([5, 0, 5, 9, 0, 7, 7], dtype=np.uint64)  # 0 is a hash like any other
    present = np.array([1, 1, 1, 1, 1, 0, 1], dtype=np.uint8)
    table = np.zeros(16, dtype=np.uint64)
    out = np.empty(len(hashes), dtype=np.uint8)
    assert _speedups.seen(hashes, present, table, out) == 4  # 5, 0, 9 and the present 7
    assert out.tolist() == [0, 0, 1, 0, 1, 0, 0]
    assert _speedups.seen(hashes, present, table, out) == 0
    assert out.tolist() == [1, 1, 1, 1, 1, 0, 1]


def test_seen_refuses_a_full_table_and_bad_shapes() -> None:
    table = np.zeros(4, dtype=np.uint64)
    out = np.empty(5, dtype=np.uint8)
    with pytest.raises(ValueError, match="table full"):
        _speedups.seen(np.arange(1, 6, dtype=np.uint64), np.ones(5, dtype=np.uint8), table, out)
    assert sorted(table.tolist()) == [1, 2, 3, 4]  # what fitted went in
    with pytest.raises(ValueError, match="power of two"):
        _speedups.seen(np.ones(1, np.uint64), np.ones(1, np.uint8), np.zeros(6, np.uint64), out[:1])
    with pytest.raises(ValueError, match="as many items"):
        _speedups.seen(np.ones(2, np.uint64), np.ones(1, np.uint8), np.zeros(8, np.uint64), out[:2])


def _gtin_reference(value: str) -> bool:
    return value == "" or (len(value) in (8, 12, 13, 14) and ean.is_valid(value))


def _gtin_column(values: list[str]) -> list[bool]:
    return list(catalog._gtin_ok(pd.Series(values, dtype="str")))


_LENGTHS = st.sampled_from([8, 12, 13, 14])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LENGTHS.flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)), max_size=40))
def test_gtin_digits_agree_with_stdnum(values: list[str]) -> None:
    assert _gtin_column(values) == [ean.is_valid(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_LENGTHS.flatmap(lambda n: st.text("0123456789", min_size=n - 1, max_size=n - 1)), max_size=40)
)
def test_gtin_with_computed_check_digit_is_valid(bodies: list[str]) -> None:
    values = [b + ean.calc_check_digit(b) for b in bodies]
    assert _gtin_column(values) == [True] * len(values)
    wrong = [v[:-1] + str((int(v[-1]) + 1) % 10) for v in values]
    assert _gtin_column(wrong) == [False] * len(wrong)


_JUNK = st.text(st.sampled_from(list("0123456789 -–x\u3000\u00a0٣\t")), max_size=16) | st.text(max_size=16)


@settings(max_examples=300, deadline=None)
@given(st.lists(_JUNK | st.text("0123456789", max_size=16), max_size=40))
def test_gtin_any_text_agrees_with_the_per_value_check(values: list[str]) -> None:
    assert _gtin_column(values) == [_gtin_reference(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(_JUNK | st.text("0123456789", max_size=16) | st.none(), max_size=40), st.integers(0, 3))
def test_gtin_junk_goes_only_where_a_marked_byte_is(values: list[str | None], start: int) -> None:
    """Whitespace and dashes are removed on the rows a byte scan picks, as the regex removes them on all."""
    arr = pa.array(values, pa.large_string()).slice(min(start, len(values)))
    assert (
        catalog._strip_gtin(arr).to_pylist()
        == pc.replace_substring_regex(arr, catalog._GTIN_JUNK, "").to_pylist()
    )


def test_every_gtin_junk_character_starts_with_a_marked_byte() -> None:
    junk = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c < 0xE000 and re.fullmatch(r"[\s-]", chr(c))
    ]
    assert len(junk) > 25
    assert all(catalog._GTIN_JUNK_BYTE[c.encode()[0]] for c in junk)
    assert pc.replace_substring_regex(pa.array(junk), catalog._GTIN_JUNK, "").to_pylist() == [""] * len(junk)


_URLISH = st.lists(
    st.sampled_from(["https://x.jp/a", "?q=1&amp;r=2", "&", "&#38;", " ", "\t", "\x01", "\x7f", "\x85"])
    | st.sampled_from(["\u3000", "\u00a0", "\ufeff", "\ufffe", "é", "id-1", "\n", "&lt;", "<"]),
    max_size=6,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(_URLISH | st.none(), max_size=30), st.integers(0, 3))
def test_urls_and_ids_are_cleaned_as_on_every_row(values: list[str | None], start: int) -> None:
    """Cleaning only the rows the work scan marks gives what cleaning every row gives."""
    arr = pa.array(values, pa.large_string()).slice(min(start, len(values)))
    every = pc.utf8_trim_whitespace(text.unescape(text.strip_controls(arr)))
    assert catalog._clean_url(arr).to_pylist() == every.to_pylist()
    ids = pd.Series(arr.to_pylist(), dtype="str")
    expected = pc.utf8_trim_whitespace(text.strip_controls(arr)).to_pylist()
    assert [None if pd.isna(v) else v for v in catalog.clean_ids(ids)] == expected


def test_a_space_at_either_end_is_trimmed_between_plain_rows() -> None:
    arr = pa.array(["https://x.jp/a ", "https://x.jp/b", " https://x.jp/c", "https://x.jp/d"] * 5)
    assert catalog._clean_url(arr).to_pylist() == [f"https://x.jp/{c}" for c in "abcd"] * 5
    ids = pd.Series(["a ", "b", " c", "d"], dtype="str")
    assert list(catalog.clean_ids(ids)) == ["a", "b", "c", "d"]


def test_gtin_check_keeps_index_and_handles_sliced_arrays() -> None:
    values = pd.Series(["4901234567894", "12345670", "", "4901234567890", "036000291452"] * 3, dtype="str")
    part = values.iloc[4:11].set_axis(range(20, 27))
    assert list(catalog._gtin_ok(part)) == [_gtin_reference(v) for v in part]
    assert list(catalog._gtin_ok(part).index) == list(range(20, 27))


def test_space_class_is_pythons_backslash_s() -> None:
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    ours = pc.match_substring_regex(pa.array(chars), f"^[{catalog._SPACE}]$").to_pylist()
    assert ours == [re.fullmatch(r"\s", c) is not None for c in chars]


_LINKY = st.text(st.sampled_from(list("ab.:/?#,;| \t\n\u3000\u00a0\x85\x0bhtps")), max_size=40)


_URLS = st.sampled_from(["https://a.example/1.jpg", "http://b.example/x?y=1", "https://c.example/a|b;c"])
#: lists as shops write them: URLs (and a few bad items) joined by one separator, most already plain
_URL_LISTS = st.tuples(
    st.lists(_URLS | st.sampled_from(["", "junk", "ftp://x.example/y", " https://d.example/z "]), max_size=4),
    st.sampled_from([",", ",", ", ", "|", ";", ",,", " "]),
).map(lambda parts: parts[1].join(parts[0]))


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINKY | _URLS | _URL_LISTS, max_size=10))
def test_extra_images_match_python_re(values: list[str]) -> None:
    links = pd.Series(values, dtype="str")
    rows = pd.DataFrame({"_row": range(1, len(values) + 1), "id": [f"SKU-{i}" for i in range(len(values))]})
    got, found = catalog._extra_images(links, rows)
    url_list = r"https?://[^\s,/?#]+\.[^\s,]+(,https?://[^\s,/?#]+\.[^\s,]+)*"
    expected, bad = [], []
    for i, value in enumerate(values):
        joined = re.sub(r"[\s|,;]+", ",", value).strip(",")
        ok = joined == "" or re.fullmatch(url_list, joined) is not None
        expected.append(joined if ok else ",".join(u for u in joined.split(",") if catalog._URL_RE.match(u)))
        if not ok:
            bad.append(i + 1)
    assert list(got) == expected
    assert list(found["row"]) == bad


def test_gtin_separators_removed_like_python_re() -> None:
    out, _ = clean(
        {"gtin": "4901234\u00a0567894"},
        {"gtin": "490-1234-567894"},
        {"gtin": "4901234\x85567894"},
    )
    assert list(out["gtin"]) == ["4901234567894"] * 3
    assert list(out["_gtin_ok"]) == [True] * 3


def test_repeated_values_clean_like_single_rows() -> None:
    variants = [
        {
            "availability": "In Stock",
            "condition": "New",
            "gender": "Women",
            "age_group": "Kids",
            "brand": "A &amp; B",
            "color": " Navy\tBlue ",
            "currency": "usd",
            "price": "15.5",
        },
        {
            "availability": "sold-out",
            "condition": "used",
            "gender": "M",
            "age_group": "",
            "brand": "Kumo",
            "color": "",
            "currency": "",
            "price": "1,980",
            "tier": "2.0",
        },
        {
            "availability": "maybe",
            "condition": "refurbished",
            "gender": "unknown",
            "age_group": "adults",
            "brand": "",
            "size": "26.5cm",
            "price": "bad",
            "gtin": "4901234567890",
        },
    ]
    many = [variants[i % 3] for i in range(30)]
    out, _ = clean(*many)
    singles = [clean(v)[0] for v in variants]
    expected = pd.concat([singles[i % 3] for i in range(30)], ignore_index=True)
    pd.testing.assert_frame_equal(out.drop(columns=["id", "_row"]), expected.drop(columns=["id", "_row"]))


def test_clean_keeps_the_columns_and_adds_the_parsed_ones() -> None:
    raw = chunk({"price": "1980"}, {"price": "x"})
    out, _ = clean({"price": "1980"}, {"price": "x"})
    assert list(out.columns) == [
        *raw.columns,
        "_availability",
        "_price_error",
        "_price_value",
        "_gtin_ok",
        "_link_ok",
        "_image_ok",
        "price_band",
    ]
    assert list(out["_price_error"]) == ["", "unparseable"]
    assert out["_gtin_ok"].dtype == bool and out["_price_value"].dtype == "float64"
