"""Delimited writers: RFC 4180 CSV (Meta, TikTok) and Google's unquoted TSV."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from feedgen.writers.base import FeedWriter, Pieces, present_bytes, scalar, value_buffers

#: Arrow quotes every string under "needed" (so inner quotes are doubled and commas, CR and LF are safe);
#: the header holds only plain field names and stays bare.
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed", delimiter=",", eol="\n")


class CsvWriter(FeedWriter):
    """UTF-8 CSV: header row, comma delimiter, string fields quoted with ``""`` inside, LF line ends."""

    def _header(self) -> bytes:
        return (",".join(self.fields) + "\n").encode()

    @classmethod
    def _encode_table(cls, table: pa.Table) -> Pieces:
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, _CSV_OPTIONS)
        return [sink.getvalue()]


class TsvWriter(FeedWriter):
    """Tab-separated text with a header row and no quoting; tabs and line breaks in values become a space."""

    def _header(self) -> bytes:
        return ("\t".join(self.fields) + "\n").encode()

    @classmethod
    def _encode_table(cls, table: pa.Table) -> Pieces:
        cols = [flatten_column(col) for col in table.columns]
        # The line break goes onto the last field first, so that only that (short) column is copied twice.
        last = pc.binary_join_element_wise(cols[-1], scalar("\n"), scalar(""))
        rows = pc.binary_join_element_wise(*cols[:-1], last, scalar("\t"))
        return value_buffers(rows)


def flatten_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Replace each tab, CR, LF or CRLF in a column with one space."""
    present = present_bytes(col, b"\t\r\n")
    if b"\r" in present:
        col = pc.replace_substring(col, "\r\n", " ")
        col = pc.replace_substring(col, "\r", " ")
    if b"\n" in present:
        col = pc.replace_substring(col, "\n", " ")
    if b"\t" in present:
        col = pc.replace_substring(col, "\t", " ")
    return col
