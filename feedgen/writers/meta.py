"""Meta catalog feeds: CSV and RSS XML (Meta reads Google-style ``g:`` elements)."""

from __future__ import annotations

from feedgen.writers._csv import CsvWriter
from feedgen.writers._xml import RssWriter


class MetaCsvWriter(CsvWriter):
    """Meta catalog as RFC 4180 CSV."""

    format = "meta-csv"
    platform = "meta"


class MetaXmlWriter(RssWriter):
    """Meta catalog as RSS 2.0 XML with ``g:`` elements."""

    format = "meta-xml"
    platform = "meta"
