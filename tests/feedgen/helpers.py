"""Small builders for catalog rows in tests."""

from __future__ import annotations

import pandas as pd

from feedgen.config import CATALOG_COLUMNS
from feedgen.sources import ROW

GOOD = {
    "id": "SKU-1",
    "title": "Green Tea Drink",
    "description": "A healthy green tea drink.",
    "price": "1980",
    "currency": "JPY",
    "availability": "in stock",
    "condition": "new",
    "brand": "Demo",
    "gtin": "4901234567894",
    "link": "https://shop.example/p/sku-1",
    "image_link": "https://cdn.shop.example/sku-1.jpg",
    "line": "health-drink",
    "tier": "1",
}


def chunk(*rows: dict[str, str]) -> pd.DataFrame:
    """A raw chunk as ``read_chunks`` yields it: logical columns, strings, ``_row`` from 1."""
    records = [
        {col: {**GOOD, "id": f"SKU-{i + 1}", **row}.get(col, "") for col in CATALOG_COLUMNS}
        for i, row in enumerate(rows)
    ]
    frame = pd.DataFrame(records, columns=list(CATALOG_COLUMNS)).astype("str")
    frame.insert(0, ROW, range(1, len(rows) + 1))
    return frame
