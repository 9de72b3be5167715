from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from feedgen import catalog, validate
from feedgen.platforms import GOOGLE, META, PLATFORMS, TIKTOK
from feedgen.writers import writer_class
from tests.feedgen.helpers import LABELS, chunk

CTX = catalog.CleanContext(currency="JPY", as_of=datetime(2026, 11, 20, tzinfo=UTC))


def checked(platform: str, *rows: dict[str, str], labels: dict[str, str] | None = None) -> pd.DataFrame:
    clean, _ = catalog.clean(chunk(*rows), CTX)
    clean["_duplicate"] = catalog.IdTracker().duplicates(clean["id"])
    return validate.check(clean, PLATFORMS[platform], "JP", labels)


def errors(found: pd.DataFrame) -> list[tuple[int, str, str]]:
    picked = found[found["severity"] == "error"]
    return list(zip(picked["row"], picked["field"], picked["reason"], strict=True))


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
def test_good_row_passes_everywhere(platform: str) -> None:
    assert errors(checked(platform, {})) == []


@pytest.mark.parametrize("platform", ["meta", "google", "tiktok"])
@pytest.mark.parametrize("field", ["id", "title", "description", "link", "image_link", "availability"])
def test_required_fields(platform: str, field: str) -> None:
    assert errors(checked(platform, {field: ""})) == [(1, field, "missing")]


def test_missing_and_bad_prices() -> None:
    found = checked("meta", {"price": ""}, {"price": "-500"}, {"price": "free"})
    assert errors(found) == [
        (1, "price", "missing"),
        (2, "price", "invalid_price"),
        (3, "price", "invalid_price"),
    ]


def test_title_length_limits_differ_per_platform() -> None:
    row = {"title": "x" * 170}
    assert errors(checked("meta", row)) == []
    assert errors(checked("google", row)) == [(1, "title", "too_long")]
    assert errors(checked("meta", {"title": "x" * 201})) == [(1, "title", "too_long")]


def test_too_long_names_each_rows_length_in_characters() -> None:
    """The detail counts characters, not bytes, and belongs to its own row among rows that are fine."""
    found = checked("google", {"title": "ok"}, {"title": "日" * 151}, {"title": "x"}, {"title": "é" * 160})
    long = found[found["reason"] == "too_long"]
    assert list(zip(long["row"], long["detail"], strict=True)) == [
        (2, "151 characters, limit 150"),
        (4, "160 characters, limit 150"),
    ]


def test_gtin_rejects_for_google_and_warns_elsewhere() -> None:
    row = {"gtin": "4901234567890"}
    assert errors(checked("google", row)) == [(1, "gtin", "invalid_gtin")]
    meta = checked("meta", row)
    assert errors(meta) == []
    assert list(meta["reason"]) == ["invalid_gtin"]


def test_brand_rules() -> None:
    assert errors(checked("meta", {"brand": "", "gtin": ""})) == [(1, "brand", "missing")]
    assert errors(checked("meta", {"brand": ""})) == []  # a valid gtin is enough for Meta
    assert errors(checked("tiktok", {"brand": ""})) == [(1, "brand", "missing")]
    google = checked("google", {"brand": "", "gtin": ""})
    assert errors(google) == []
    assert "brand_recommended" in set(google["reason"])


def test_duplicate_id_rejected_on_second_row() -> None:
    assert errors(checked("tiktok", {"id": "A"}, {"id": "A"})) == [(2, "id", "duplicate_id")]


def test_google_apparel_needs_age_gender_color_and_size() -> None:
    apparel = {"google_product_category": "Apparel & Accessories > Clothing > Shirts & Tops"}
    found = checked("google", apparel)
    assert {(f, r) for _, f, r in errors(found)} == {
        ("age_group", "missing"),
        ("gender", "missing"),
        ("color", "missing"),
        ("size", "missing"),
    }
    complete = {**apparel, "age_group": "adult", "gender": "Women", "color": "Navy", "size": "M"}
    assert errors(checked("google", complete)) == []
    assert errors(checked("meta", apparel)) == []


def test_enumerations_differ_per_platform() -> None:
    found = checked("google", {"age_group": "teen"})
    assert errors(found) == []
    assert list(found["reason"]) == ["invalid_value"]
    assert checked("meta", {"age_group": "teen"}).empty


def test_label_length_checked_for_google_only() -> None:
    row = {"line": "l" * 101}
    labels = {"custom_label_0": "line"}
    assert errors(checked("google", row, labels=labels)) == [(1, "custom_label_0", "too_long")]
    assert errors(checked("meta", row, labels=labels)) == []


def test_frames_use_each_platforms_spelling() -> None:
    rows = chunk(
        {"availability": "backorder", "description": "d" * 6000, "gtin": "4901234567890", "line": "tea"}
    )
    clean, _ = catalog.clean(rows, CTX)
    labels = {"custom_label_0": "line"}
    meta = validate.frame(clean, META, labels)
    google = validate.frame(clean, GOOGLE, labels)
    tiktok = validate.frame(clean, TIKTOK, labels)
    assert tuple(meta.columns) == META.fields and tuple(google.columns) == GOOGLE.fields
    assert tiktok.columns[0] == "sku_id" and tiktok.loc[0, "sku_id"] == "SKU-1"
    assert meta.loc[0, "availability"] == "available for order"
    assert google.loc[0, "availability"] == "backorder"
    assert meta.loc[0, "gtin"] == ""  # invalid gtin left out
    assert len(google.loc[0, "description"]) == 5000 and google.loc[0, "description"].endswith("…")
    assert len(meta.loc[0, "description"]) == 6000
    assert google.loc[0, "identifier_exists"] == ""
    assert meta.loc[0, "custom_label_0"] == "tea"
    assert all(str(dtype) == "str" for dtype in google.dtypes)


def test_identifier_exists_no_without_gtin_or_brand_mpn() -> None:
    clean, _ = catalog.clean(chunk({"gtin": "", "mpn": ""}, {"gtin": "", "mpn": "M-1"}), CTX)
    assert list(validate.frame(clean, GOOGLE, {})["identifier_exists"]) == ["no", ""]


def test_shared_columns_are_the_same_objects_and_formats_write_what_they_write_alone() -> None:
    rows = chunk(
        {"gender": "female", "age_group": "teen", "gtin": "4901234567890", "title": 'A "quoted", title'},
        {"description": "x" * 6000, "availability": "backorder", "additional_image_link": "https://a/1.jpg"},
        {"brand": "", "mpn": "M-1"},
        {"id": "SKU-1"},  # a duplicate: rejected everywhere
    )
    clean, _ = catalog.clean(
        rows, catalog.CleanContext(currency="JPY", as_of=datetime(2026, 1, 1, tzinfo=UTC))
    )
    clean["_duplicate"] = catalog.IdTracker().duplicates(clean["id"])
    shared: validate.Shared = {}
    by_platform = {name: validate.columns(clean, PLATFORMS[name], LABELS, shared) for name in PLATFORMS}
    assert by_platform["tiktok"]["availability"] is by_platform["meta"]["availability"]
    assert by_platform["google"]["description"] is not by_platform["meta"]["description"]  # 5000 vs 9999
    for name, columns in by_platform.items():
        alone = validate.columns(clean, PLATFORMS[name], LABELS)
        assert {f: list(c) for f, c in columns.items()} == {f: list(c) for f, c in alone.items()}
    keeps = {"meta": np.array([True, True, True, False]), "tiktok": np.array([True, False, True, False])}
    for fmt, name in (("meta-csv", "meta"), ("tiktok-csv", "tiktok")):
        cls = writer_class(fmt)
        together = cls.encode_table(cls.table(by_platform[name]), keeps[name])[0]
        alone_bytes = cls.encode_table(
            cls.table(validate.columns(clean, PLATFORMS[name], LABELS)), keeps[name]
        )[0]
        assert b"".join(map(bytes, together)) == b"".join(map(bytes, alone_bytes))
