"""RSS 2.0 writer with Google's ``g:`` namespace, built column-wise with Arrow string kernels."""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from feedgen.errors import PublishError
from feedgen.writers.base import STR, FeedWriter, Pieces, present_bytes, scalar, value_buffers

G_NS: Final = "http://base.google.com/ns/1.0"
#: Meta and Google both refuse a feed with a line longer than this; each item is one line
MAX_LINE_BYTES: Final = 5_242_880
#: a field split into one element per comma-separated value
REPEATED: Final = frozenset({"additional_image_link"})

# "&" first so the entities added after it are not escaped twice; CR as a reference because
# XML parsers turn a raw CR (or CRLF) into LF.
_ESCAPES: Final = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_NULL: Final = pa.scalar(None, STR)


def escape_text(text: str) -> str:
    """Escape one Python string for XML element content, exactly as the column-wise path does."""
    for raw, entity in _ESCAPES:
        text = text.replace(raw, entity)
    return text


def escape_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Escape a string column for XML element content, running only the replacements it needs."""
    present = present_bytes(col, b"&<>\r")
    for raw, entity in _ESCAPES:
        if raw.encode() in present:
            col = pc.replace_substring(col, raw, entity)
    return col


def element_pieces(col: pa.ChunkedArray, field: str) -> list[pa.ChunkedArray | pa.Scalar]:
    """Open tag, escaped value and close tag of one field, as arguments for the item join."""
    # Where a value is empty its tags are null, so the item join (null_handling="skip") leaves the
    # element out, and the value is copied only once, by that join, instead of once more to wrap it.
    open_tag, close_tag = scalar(f"<g:{field}>"), scalar(f"</g:{field}>")
    value = escape_column(col)
    if field in REPEATED:
        value = pc.replace_substring(value, ",", f"</g:{field}><g:{field}>")
    empty = pc.equal(pc.binary_length(col), 0)
    n_empty = pc.sum(empty).as_py() or 0
    if n_empty == 0:
        return [open_tag, value, close_tag]
    if n_empty == len(col):
        return []
    return [pc.if_else(empty, _NULL, open_tag), value, pc.if_else(empty, _NULL, close_tag)]


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
    def _encode_table(cls, table: pa.Table) -> Pieces:
        pieces: list[pa.ChunkedArray | pa.Scalar] = [scalar("<item>")]
        for name in table.column_names:
            pieces += element_pieces(table.column(name), name)
        pieces.append(scalar("</item>\n"))
        items = pc.binary_join_element_wise(*pieces, scalar(""), null_handling="skip")
        cls._check_lines(items, table)
        return value_buffers(items)

    @classmethod
    def _check_lines(cls, items: pa.ChunkedArray, table: pa.Table) -> None:
        """Refuse an item longer than the platforms' line limit rather than publish a feed they reject."""
        lengths = pc.binary_length(items)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_LINE_BYTES:
            row = pc.index(lengths, longest).as_py()
            key = table.column(0)[row].as_py()
            raise PublishError(
                f"{cls.format}: item {table.column_names[0]}={key!r} is {longest:,} bytes, over the "
                f"{MAX_LINE_BYTES:,}-byte line limit; shorten its description or other long fields"
            )
