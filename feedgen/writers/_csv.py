"""Delimited writers: RFC 4180 CSV (Meta, TikTok) and Google's unquoted TSV."""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from feedgen.writers.base import FeedWriter, Shared, byte_counts, column_key, present_bytes, row_bytes, scalar

#: Arrow quotes every string under "needed" (so inner quotes are doubled and commas, CR and LF are safe)
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed", delimiter=",", eol="\n")


class CsvWriter(FeedWriter):
    """UTF-8 CSV: header row, comma delimiter, every value quoted with ``""`` inside, LF line ends.

    Each value is quoted, so commas, quotes and line breaks inside it are safe; the header holds only
    plain field names and stays bare.
    """

    def _header(self) -> bytes:
        return (",".join(self.fields) + "\n").encode()

    @classmethod
    def _encode_rows(cls, table: pa.Table, shared: Shared) -> tuple[pa.Buffer, np.ndarray]:
        # Meta and TikTok CSV rows are the same bytes when their columns are the same (ids are
        # the first column of both, under another name): serialise them once per chunk
        key = ("csv", *(column_key(col) for col in table.columns))
        if key not in shared:
            shared[key] = (table, cls._csv_rows(table))  # the table too: its buffers must outlive the key
        return cast(tuple[pa.Table, tuple[pa.Buffer, np.ndarray]], shared[key])[1]

    @classmethod
    def _csv_rows(cls, table: pa.Table) -> tuple[pa.Buffer, np.ndarray]:
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, _CSV_OPTIONS)
        data = sink.getvalue()
        # each value is written as '"' + value with its quotes doubled + '"', then "," or "\n"
        lengths = np.full(table.num_rows, 3 * table.num_columns, dtype=np.int64)
        for col in table.columns:
            lengths += pc.binary_length(col).to_numpy()
            lengths += byte_counts(col, b'"')
        if lengths.sum() != data.size:
            raise AssertionError(f"{cls.format}: {data.size} bytes written, {lengths.sum()} expected")
        return data, lengths


class TsvWriter(FeedWriter):
    """Tab-separated text with a header row and no quoting; tabs and line breaks in values become a space."""

    def _header(self) -> bytes:
        return ("\t".join(self.fields) + "\n").encode()

    @classmethod
    def _encode_rows(cls, table: pa.Table, shared: Shared) -> tuple[pa.Buffer, np.ndarray]:
        return row_bytes(join_fields([flatten_column(col) for col in table.columns], "\t", "\n"))


def join_fields(cols: list[pa.ChunkedArray], separator: str, end: str) -> pa.ChunkedArray:
    """Each row's values joined by ``separator``, with ``end`` after the last."""
    # the end goes onto the last field first (a short column), so that the long ones are copied
    # once, by the one join of all fields
    last = pc.binary_join_element_wise(cols[-1], scalar(end), scalar(""))
    return pc.binary_join_element_wise(*cols[:-1], last, scalar(separator))


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
