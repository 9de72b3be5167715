from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from feedgen import catalog
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
    ]
    out, _ = clean(*({"availability": v} for v in values))
    assert list(out["_availability"]) == ["in_stock"] * 3 + [
        "out_of_stock",
        "preorder",
        "backorder",
        "backorder",
        "",
    ]


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


def test_id_tracker_finds_duplicates_across_chunks() -> None:
    tracker = catalog.IdTracker()
    first = tracker.duplicates(pd.Series(["a", "b", "a", ""]))
    second = tracker.duplicates(pd.Series(["c", "b", "", "c"]))
    assert list(first) == [False, False, True, False]
    assert list(second) == [False, True, False, True]
