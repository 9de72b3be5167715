"""Delimited writers: RFC 4180 CSV (Meta, TikTok) and Google's unquoted TSV."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from feedgen.writers.base import CSV_QUOTED, TSV_FLAT, Allocate, FeedWriter, rows


class CsvWriter(FeedWriter):
    """UTF-8 CSV: header row, comma delimiter, every value quoted with ``""`` inside, LF line ends.

    Each value is quoted, so commas, quotes and line breaks inside it are safe; the header holds only
    plain field names and stays bare.
    """

    def _header(self) -> bytes:
        return (",".join(self.fields) + "\n").encode()

    @classmethod
    def _encode_rows(
        cls, table: pa.Table, allocate: Allocate, keep: np.ndarray | None = None
    ) -> tuple[pa.Buffer, np.ndarray]:
        layout = [(b'"' if k == 0 else b',"', b'"', CSV_QUOTED, False) for k in range(table.num_columns)]
        return rows(table, layout, b"", b"\n", allocate, keep)


class TsvWriter(FeedWriter):
    """Tab-separated text with a header row and no quoting; tabs and line breaks in values become a space."""

    def _header(self) -> bytes:
        return ("\t".join(self.fields) + "\n").encode()

    @classmethod
    def _encode_rows(
        cls, table: pa.Table, allocate: Allocate, keep: np.ndarray | None = None
    ) -> tuple[pa.Buffer, np.ndarray]:
        layout = [(b"" if k == 0 else b"\t", b"", TSV_FLAT, False) for k in range(table.num_columns)]
        return rows(table, layout, b"", b"\n", allocate, keep)
