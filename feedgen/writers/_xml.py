"""RSS 2.0 writer with Google's ``g:`` namespace, built column-wise with Arrow string kernels."""

from __future__ import annotations

from typing import Final, TypeAlias, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feedgen.errors import PublishError
from feedgen.writers.base import STR, FeedWriter, Shared, column_key, present_bytes, row_bytes, scalar

G_NS: Final = "http://base.google.com/ns/1.0"
#: Meta and Google both refuse a feed with a line longer than this; each item is one line
MAX_LINE_BYTES: Final = 5_242_880
#: a field split into one element per comma-separated value
REPEATED: Final = frozenset({"additional_image_link"})

# "&" first so the entities added after it are not escaped twice; CR as a reference because
# XML parsers turn a raw CR (or CRLF) into LF.
_ESCAPES: Final = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))


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


def element_values(
    table: pa.Table, shared: Shared | None = None
) -> list[tuple[str, pa.ChunkedArray, np.ndarray | None]]:
    """Each field's escaped values and where they are empty (None: nowhere); fields empty everywhere go.

    With ``shared``, a column the chunk's other XML format has escaped already is not escaped again.
    """
    out = []
    for name in table.column_names:
        col = table.column(name)
        key = ("xml", name if name in REPEATED else "", column_key(col))
        if shared is None or key not in shared:
            value = _element_value(name, col)
            if shared is not None:
                shared[key] = (col, value)  # the column too: its buffers must outlive the key
        else:
            value = cast(tuple[pa.ChunkedArray, _Value], shared[key])[1]
        if value is not None:
            out.append((name, *value))
    return out


_Value: TypeAlias = "tuple[pa.ChunkedArray, np.ndarray | None] | None"


def _element_value(name: str, col: pa.ChunkedArray) -> _Value:
    empty = pc.equal(pc.binary_length(col), 0)
    n_empty = pc.sum(empty).as_py() or 0
    if n_empty == len(col):
        return None
    value = escape_column(col)
    if name in REPEATED:
        value = pc.replace_substring(value, ",", f"</g:{name}><g:{name}>")
    return value, (_flags(empty) if n_empty else None)


def _flags(mask: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(mask.to_numpy(), dtype=bool)


def tag_between(
    before: tuple[str, np.ndarray | None] | None, after: tuple[str, np.ndarray | None] | None
) -> pa.Array | pa.Scalar:
    """The markup between two fields' values: the first one's close tag and the next one's open tag,
    each only on the rows where that value is not empty (``None`` for the item's start or end)."""
    closing = "</item>\n" if after is None else ""
    opening = "<item>" if before is None else ""
    close_tag = "" if before is None else f"</g:{before[0]}>"
    open_tag = "" if after is None else f"<g:{after[0]}>"
    empty_before = None if before is None else before[1]
    empty_after = None if after is None else after[1]
    if empty_before is None and empty_after is None:
        return scalar(close_tag + closing + opening + open_tag)
    # the four spellings, by (value before is empty, value after is empty)
    spellings = pa.array(
        [close + closing + opening + open_ for close in (close_tag, "") for open_ in (open_tag, "")],
        STR,
    )
    n = len(empty_before if empty_before is not None else empty_after)  # type: ignore[arg-type]
    codes = np.zeros(n, dtype=np.int8)
    if empty_before is not None:
        codes += 2 * empty_before
    if empty_after is not None:
        codes += empty_after
    return spellings.take(pa.array(codes))


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
    def _encode_rows(cls, table: pa.Table, shared: Shared) -> tuple[pa.Buffer, np.ndarray]:
        # one argument per value and one per run of markup between two values (a scalar where
        # neither value is ever empty), instead of an open and a close tag per value
        values = element_values(table, shared)
        if not values:
            return row_bytes(pa.array(["<item></item>\n"] * table.num_rows, STR))
        bounds: list[tuple[str, np.ndarray | None] | None] = [None, *((n, e) for n, _, e in values), None]
        pieces: list[pa.Array | pa.ChunkedArray | pa.Scalar] = []
        for k, (_, value, _) in enumerate(values):
            pieces += [tag_between(bounds[k], bounds[k + 1]), value]
        pieces.append(tag_between(bounds[-2], None))
        items = pc.binary_join_element_wise(*pieces, scalar(""))
        cls._check_lines(items, table)
        return row_bytes(items)

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
