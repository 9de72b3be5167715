"""Small builders for catalog rows and feed jobs in tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from feedgen.build import FeedJob
from feedgen.config import CATALOG_COLUMNS, SourceConfig
from feedgen.sources import ROW
from feedgen.writers import FORMATS
from feedgen.writers.base import Channel

#: the labels the feed-job tests use
LABELS = {"custom_label_0": "line", "custom_label_1": "tier", "custom_label_2": "price_band"}

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


def feed_job(out: Path, catalog: Path, chunk_size: int = 50_000, jobs: int | None = None) -> FeedJob:
    """Every format of ``catalog`` into ``out``, with the demo shop's settings."""
    return FeedJob(
        source=SourceConfig(path=catalog, chunk_size=chunk_size),
        out=out,
        formats=tuple(FORMATS),
        currency="JPY",
        country="JP",
        channel=Channel("Demo Shop", "https://demo-shop.example/", "Demo Shop catalog"),
        labels=LABELS,
        price_bands=(1000.0, 5000.0),
        jobs=jobs,
    )
