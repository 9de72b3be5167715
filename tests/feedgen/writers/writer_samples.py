"""Sample frames, golden-file comparison and a write helper shared by the writer tests."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from feedgen.platforms import PLATFORMS
from feedgen.writers import writer_class
from feedgen.writers.base import Channel

GOLDEN = Path(__file__).parent / "golden"
CHANNEL = Channel(title="Ocha & Co. <Kyoto>", link="https://shop.example.jp/?a=1&b=2", description="緑茶の店")

IMG = "https://cdn.example.jp/img"

#: six products in canonical form (availability as the canonical token, key "id"); fields left out are ""
SAMPLE_ROWS: list[dict[str, str]] = [
    {
        "id": "JP-001",
        "title": "緑茶 ティーバッグ 50包",
        "description": "静岡県産の一番茶。\n毎日の一杯に。",
        "availability": "in_stock",
        "condition": "new",
        "price": "1980 JPY",
        "sale_price": "1500 JPY",
        "sale_price_effective_date": "2025-01-01T00:00+0900/2025-01-31T23:59+0900",
        "link": "https://shop.example.jp/p/jp-001",
        "image_link": f"{IMG}/jp-001.jpg",
        "brand": "お茶本舗",
        "identifier_exists": "yes",
        "google_product_category": "Food, Beverages & Tobacco > Beverages > Tea & Infusions",
        "product_type": "Health > Drinks",
        "item_group_id": "G-TEA",
        "gtin": "4901234567894",
        "mpn": "OT-50",
        "size": "50包",
        "gender": "unisex",
        "age_group": "adult",
        "additional_image_link": f"{IMG}/jp-001-2.jpg,{IMG}/jp-001-3.jpg,{IMG}/jp-001-4.jpg",
        "custom_label_0": "tier:premium",
        "custom_label_1": "line:tea",
    },
    {
        "id": "MUG-2",
        "title": 'Mug "Classic", 350 ml',
        "description": '"Quoted" start, commas, and a ""double"" quote',
        "availability": "out_of_stock",
        "condition": "refurbished",
        "price": "12.50 USD",
        "link": "https://shop.example.jp/p/mug-2?color=blue&size=l",
        "image_link": f"{IMG}/mug-2.jpg",
        "brand": "Acme, Inc.",
        "identifier_exists": "no",
        "product_type": "Home > Kitchen, Dining",
        "color": "blue",
        "additional_image_link": f"{IMG}/mug-2-side.jpg",
        "custom_label_0": " padded ",
    },
    {
        "id": "NL-3",
        "title": "Line breaks",
        "description": "Line one\r\nLine two\rLine three\nLine four\n\nafter a blank line",
        "availability": "preorder",
        "condition": "new",
        "price": "30.00 EUR",
        "link": "https://shop.example.jp/p/nl-3",
        "image_link": f"{IMG}/nl-3.jpg",
        "brand": "Brand\nWith Break",
        "identifier_exists": "no",
    },
    {
        "id": "TAB-4",
        "title": "Tab\there",
        "description": "col a\tcol b\t\tcol d",
        "availability": "backorder",
        "condition": "used",
        "price": "5 GBP",
        "link": "https://shop.example.jp/p/tab-4",
        "image_link": f"{IMG}/tab-4.jpg",
        "brand": "Tabby",
        "identifier_exists": "no",
        "item_group_id": "G-TAB",
        "mpn": "TB\t4",
        "color": "red",
        "size": "XL",
        "gender": "male",
        "age_group": "kids",
        "additional_image_link": f"{IMG}/tab-4-a.jpg,{IMG}/tab-4-b.jpg",
        "custom_label_4": "last\tlabel",
    },
    {
        "id": "AMP&5",
        "title": "Salt & Pepper <Set>",
        "description": "5 > 3 && 2 < 4; &amp; stays literal; ]]> is not CDATA; <b>not a tag</b>",
        "availability": "in_stock",
        "condition": "new",
        "price": "980 JPY",
        "link": "https://shop.example.jp/p/amp-5?a=1&b=<2>",
        "image_link": f"{IMG}/amp-5.jpg?v=1&w=800",
        "brand": "S&P",
        "identifier_exists": "no",
        "google_product_category": "Home & Garden > Kitchen & Dining",
        "product_type": "Kitchen > Salt & Pepper",
        "additional_image_link": f"{IMG}/amp-5-2.jpg?a=1&b=2,{IMG}/amp-5-3.jpg",
        "custom_label_0": "<none>",
        "custom_label_1": "a&b",
        "custom_label_2": "x > y",
    },
    {
        "id": "MIN-6",
        "title": "Only required fields",
        "description": "Minimal row: every optional field is empty.",
        "availability": "in_stock",
        "condition": "new",
        "price": "100 JPY",
        "link": "https://shop.example.jp/p/min-6",
        "image_link": f"{IMG}/min-6.jpg",
    },
]


def platform_frame(platform: str, rows: Sequence[dict[str, str]] = SAMPLE_ROWS) -> pd.DataFrame:
    """The sample rows as a platform-ready frame: the platform's fields in order, its spelling, dtype str."""
    spec = PLATFORMS[platform]
    out: dict[str, list[str]] = {}
    for field in spec.fields:
        source = "id" if field == "sku_id" else field
        values = [row.get(source, "") for row in rows]
        if field == "availability":
            values = [spec.availability[v] for v in values]
        out[field] = values
    return pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in out.items()})


def render(fmt: str, chunks: Sequence[pd.DataFrame], channel: Channel = CHANNEL) -> bytes:
    """Write chunks with the format's writer into memory and return the bytes."""
    fh = io.BytesIO()
    writer = writer_class(fmt)(fh, channel)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    return fh.getvalue()


def split_rows(df: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """Cut a frame into n consecutive chunks of near-equal size."""
    size = -(-len(df) // n)
    return [df.iloc[i : i + size] for i in range(0, len(df), size)]


def assert_golden(name: str, data: bytes) -> None:
    """Compare bytes with ``golden/<name>``; with ``UPDATE_GOLDEN=1`` rewrite the file on purpose instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(data)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run pytest with UPDATE_GOLDEN=1 to create it")
    expected = path.read_bytes()
    if data != expected:
        got_lines, want_lines = data.splitlines(keepends=True), expected.splitlines(keepends=True)
        first = next(
            (i for i, (a, b) in enumerate(zip(got_lines, want_lines, strict=False)) if a != b),
            min(len(got_lines), len(want_lines)),
        )
        got = got_lines[first] if first < len(got_lines) else b"<end of output>"
        want = want_lines[first] if first < len(want_lines) else b"<end of golden>"
        pytest.fail(
            f"{name} differs from its golden file at line {first + 1}:\n  got  {got!r}\n  want {want!r}\n"
            "If the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff."
        )
