"""RSS 2.0 writer with Google's ``g:`` namespace: items made by one compiled pass over the columns."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from feedgen.errors import PublishError
from feedgen.text import heap_buffer
from feedgen.writers.base import XML_ELEMENT, Allocate, FeedWriter, rows

G_NS: Final = "http://base.google.com/ns/1.0"
#: Meta and Google both refuse a feed with a line longer than this; each item is one line
MAX_LINE_BYTES: Final = 5_242_880
#: a field split into one element per comma-separated value
REPEATED: Final = frozenset({"additional_image_link"})

# "&" first so the entities added after it are not escaped twice; CR as a reference because
# XML parsers turn a raw CR (or CRLF) into LF. _speedups.c spells the same table for the items.
_ESCAPES: Final = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))


def escape_text(text: str) -> str:
    """Escape one Python string for XML element content, exactly as ``items`` escapes values."""
    for raw, entity in _ESCAPES:
        text = text.replace(raw, entity)
    return text


def items(
    table: pa.Table, allocate: Allocate = heap_buffer, keep: np.ndarray | None = None
) -> tuple[pa.Buffer, np.ndarray]:
    """Every row of a table of string columns (only those ``keep`` marks, when given) as one ``<item>``
    line: an element per non-empty value (a field of ``REPEATED`` gets one per comma-separated value),
    escaped as ``escape_text`` escapes. Returns the lines end to end and each row's length (0 for a
    row left out)."""
    layout = [
        (f"<g:{name}>".encode(), f"</g:{name}>".encode(), XML_ELEMENT, name in REPEATED)
        for name in table.column_names
    ]
    return rows(table, layout, b"<item>", b"</item>\n", allocate, keep)


class RssWriter(FeedWriter):
    """RSS 2.0: declaration and ``<channel>`` first, one ``<item>`` per line, closing tags at ``close()``."""

    def _header(self) -> bytes:
        channel = "".join(
            f"<{tag}>{escape_text(text)}</{tag}>"
            for tag, text in (
                ("title", self.channel.title),
                ("link", self.channel.link),
                ("description", self.channel.description),
            )
        )
        declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
        return f'{declaration}<rss version="2.0" xmlns:g="{G_NS}"><channel>{channel}\n'.encode()

    def _footer(self) -> bytes:
        return b"</channel></rss>\n"

    @classmethod
    def _encode_rows(
        cls, table: pa.Table, allocate: Allocate, keep: np.ndarray | None = None
    ) -> tuple[pa.Buffer, np.ndarray]:
        data, lengths = items(table, allocate, keep)
        cls._check_lines(lengths, table)
        return data, lengths

    @classmethod
    def _check_lines(cls, lengths: np.ndarray, table: pa.Table) -> None:
        """Refuse an item longer than the platforms' line limit rather than publish a feed they reject."""
        if not len(lengths) or lengths.max() <= MAX_LINE_BYTES:
            return
        row = int(lengths.argmax())
        key = table.column(0)[row].as_py()
        raise PublishError(
            f"{cls.format}: item {table.column_names[0]}={key!r} is {lengths[row]:,} bytes, over the "
            f"{MAX_LINE_BYTES:,}-byte line limit; shorten its description or other long fields"
        )
