"""Google Merchant Center feeds: RSS 2.0 XML and TSV."""

from __future__ import annotations

from feedgen.writers._csv import TsvWriter
from feedgen.writers._xml import RssWriter


class GoogleXmlWriter(RssWriter):
    """Merchant Center RSS 2.0 XML with ``g:`` elements."""

    format = "google-xml"
    platform = "google"


class GoogleTsvWriter(TsvWriter):
    """Merchant Center tab-separated text feed."""

    format = "google-tsv"
    platform = "google"
