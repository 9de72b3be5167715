"""The writer base class: a platform-ready frame in, bytes appended to an open binary file out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Final, Protocol, Self, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from feedgen import _speedups
from feedgen.platforms import PLATFORMS
from feedgen.text import data_bytes, heap_buffer, offsets_from_zero, to_arrow

#: makes a writable buffer of a given size: ``text.heap_buffer``, or a ``text.SpareBuffers``
Allocate: TypeAlias = Callable[[int], pa.Buffer]

#: every column travels as large_string so that a big chunk never overflows 32-bit offsets
STR = pa.large_string()
#: a chunk's serialised rows: byte pieces to write one after the other
Pieces: TypeAlias = "list[pa.Buffer | bytes]"


class Sink(Protocol):
    """Where a writer's bytes go: an open binary file, or anything with its ``write``."""

    def write(self, data: bytes | memoryview, /) -> int: ...

    def writelines(self, pieces: Iterable[memoryview], /) -> None: ...


@dataclass(frozen=True)
class Channel:
    """The shop as the feed's RSS ``<channel>`` names it (ignored by CSV and TSV)."""

    title: str
    link: str
    description: str


class FeedWriter(ABC):
    """Append platform-ready frames to an open binary file, one chunk at a time."""

    format: ClassVar[str]
    platform: ClassVar[str]

    def __init__(self, fh: Sink, channel: Channel) -> None:
        """Keep the file and write the format's header at once."""
        self.fh = fh
        self.channel = channel
        self.fields: tuple[str, ...] = PLATFORMS[self.platform].fields
        self.rows = 0
        self._closed = False
        self.fh.write(self._header())

    def write(self, df: pd.DataFrame) -> None:
        """Append the rows of one chunk; its columns must be the platform's fields, in order."""
        if self._closed:
            raise ValueError(f"{self.format} writer is closed; open a new one to write more rows")
        self.write_encoded(*self.encode(df))

    @classmethod
    def encode(cls, df: pd.DataFrame, keep: np.ndarray | None = None) -> tuple[Pieces, int]:
        """The bytes of one chunk's rows and their count, without a file (so a worker thread can make them).

        ``keep`` (booleans, one per row) leaves the other rows out: the compiled pass skips them, so no
        field is filtered first and no row is moved afterwards.
        """
        return cls.encode_table(cls.table(df), keep)

    @classmethod
    def encode_table(
        cls, table: pa.Table, keep: np.ndarray | None = None, allocate: Allocate = heap_buffer
    ) -> tuple[Pieces, int]:
        """``encode`` for a chunk already checked and turned into Arrow by ``table``; the rows' buffer
        comes from ``allocate``."""
        if keep is not None:
            keep = np.ascontiguousarray(keep, dtype=bool)
            if len(keep) != table.num_rows:
                raise ValueError(f"keep has {len(keep)} flags for {table.num_rows} rows")
        count = table.num_rows if keep is None else int(np.count_nonzero(keep))
        if not count:
            return [], count
        if count == table.num_rows:
            keep = None
        data, lengths = cls._encode_rows(table, allocate, keep)
        return [data.slice(0, int(lengths.sum()))], count

    def write_encoded(self, pieces: Iterable[pa.Buffer | bytes | memoryview], rows: int) -> None:
        """Append rows already serialised by ``encode`` (of this format), in order."""
        if self._closed:
            raise ValueError(f"{self.format} writer is closed; open a new one to write more rows")
        self.fh.writelines(memoryview(piece) for piece in pieces)
        self.rows += rows

    def close(self) -> None:
        """Write the footer (once); the file itself stays open for the caller to close."""
        if not self._closed:
            self._closed = True
            self.fh.write(self._footer())

    def __enter__(self) -> Self:
        """Use the writer in a ``with`` block that closes it on success."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close on success only."""
        # No footer after an error: the caller drops the temporary file, and unterminated XML cannot parse.
        if exc_type is None:
            self.close()

    def _header(self) -> bytes:
        """Bytes written before the first row."""
        return b""

    def _footer(self) -> bytes:
        """Bytes written after the last row."""
        return b""

    @classmethod
    @abstractmethod
    def _encode_rows(
        cls, table: pa.Table, allocate: Allocate, keep: np.ndarray | None = None
    ) -> tuple[pa.Buffer, np.ndarray]:
        """Serialise one non-empty chunk of checked string columns, only the rows ``keep`` marks when
        given: the bytes (those rows end to end from the start of a mutable buffer from ``allocate``,
        which may go on after them), and each row's length (0 for a row left out)."""

    @classmethod
    def table(cls, df: pd.DataFrame | Mapping[str, pd.Series]) -> pa.Table:
        """Check a chunk (a frame, or its columns by name) against the writer contract and turn it into
        an Arrow table of large strings; the formats of one platform take the same table."""
        fields = PLATFORMS[cls.platform].fields
        columns = tuple(str(c) for c in (df.columns if isinstance(df, pd.DataFrame) else df))
        if columns != fields:
            missing = [f for f in fields if f not in columns]
            extra = [c for c in columns if c not in fields]
            raise ValueError(
                f"{cls.format} writer needs exactly the {cls.platform} fields in order; "
                f"missing {missing}, unexpected {extra}"
            )
        arrays = []
        for name in fields:
            values = df[name].array
            # an Arrow-backed column as it is, its chunks not joined into one (a copy)
            arrow = getattr(values, "__arrow_array__", None)
            arr = arrow() if arrow else pa.array(df[name], from_pandas=True)
            is_text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
            if not is_text and not (pa.types.is_null(arr.type) and len(arr) == 0):
                raise ValueError(f"column {name!r} is {arr.type}, not str; map values to strings first")
            if arr.null_count:
                raise ValueError(f"column {name!r} holds {arr.null_count} missing values; use '' for empty")
            arrays.append(arr.cast(STR))
        return pa.Table.from_arrays(arrays, names=list(fields))


#: how ``rows`` writes a column's values (``feedgen/_speedups.c`` spells them out)
XML_ELEMENT: Final = 0  # an element per non-empty value, & < > and CR escaped
CSV_QUOTED: Final = 1  # every value, its quotes doubled
TSV_FLAT: Final = 2  # every value, a tab, CR, LF or CRLF as one space
#: per column: the bytes before and after each value, its kind, and whether a comma repeats an element
Layout: TypeAlias = "list[tuple[bytes, bytes, int, bool]]"


def rows(
    table: pa.Table,
    layout: Layout,
    row_open: bytes,
    row_close: bytes,
    allocate: Allocate = heap_buffer,
    keep: np.ndarray | None = None,
) -> tuple[pa.Buffer, np.ndarray]:
    """Each row of a table of strings as one line, by one compiled pass (``_speedups.rows``):
    ``row_open``, each column's value as its ``layout`` entry writes it, then ``row_close``; with
    ``keep`` (booleans, one per row), only the rows it marks.
    Returns the lines end to end (in a mutable buffer from ``allocate``, with some scratch room after
    them) and each row's length (0 for a row left out)."""
    fields = []
    for col, (before, after, kind, repeated) in zip(table.columns, layout, strict=True):
        values = to_arrow(col)
        fields.append((data_bytes(values), offsets_from_zero(values), before, after, kind, repeated))
    lengths = np.empty(table.num_rows, dtype=np.int64)
    flags = None if keep is None else np.ascontiguousarray(keep, dtype=bool)
    return _speedups.rows(fields, row_open, row_close, lengths, allocate, flags), lengths
