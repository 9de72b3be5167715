"""TikTok catalog feed: CSV keyed by ``sku_id``."""

from __future__ import annotations

from feedgen.writers._csv import CsvWriter


class TiktokCsvWriter(CsvWriter):
    """TikTok catalog as RFC 4180 CSV."""

    format = "tiktok-csv"
    platform = "tiktok"
