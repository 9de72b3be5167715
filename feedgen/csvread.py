"""A UTF-8 CSV file in chunks of Arrow columns, by the compiled reader (``feedgen/_csvscan.c``).

Arrow's CSV reader does what this one does, and more (other encodings, every quoting oddity); this
one does the common case in less time: two passes over the bytes, straight into one ``large_string``
column per field and one contiguous chunk of exactly ``chunk_size`` rows, so nothing downstream has to
join Arrow's read blocks. It reads the rows Arrow would read, to the same values. At the first row it
does not take (a stray quote, a row of another width, bytes that are not UTF-8) it hands over: the
caller's Arrow reader reads the file again from the start and skips the rows already given, so that
row is read, or rejected, exactly as before, with Arrow's own message.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from feedgen import _csvscan, text

#: bytes read from the file at a time; a chunk's rows stay in one buffer, which grows to hold them
READ = 1 << 22
#: the buffer's first size: the file's, up to this (its pages are only taken as bytes are read into
#: them). Grown by doubling from READ instead, the first chunk copied and faulted in about 60 MB more:
#: it took 44-150 ms instead of 55-240 ms, with the worker threads waiting for it.
RESERVE = 1 << 26

_BOM = b"\xef\xbb\xbf"

#: Arrow's reader from a number of rows on (the rows before are skipped), for the hand-over
Fallback = Callable[[int], Iterator[pa.Table]]


def supports(encoding: str, delimiter: str) -> bool:
    """True when this reader can read such a file: UTF-8 (``utf-8-sig`` is left to Arrow) and a one-byte
    delimiter other than a quote or a line end."""
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False
    return utf8 and len(delimiter) == 1 and delimiter.isascii() and delimiter not in '"\r\n'


def chunks(
    path: Path, names: list[str], delimiter: str, chunk_size: int, fallback: Fallback
) -> Iterator[pa.Table]:
    """The rows after the header, ``chunk_size`` at a time, as tables of large_string columns under
    ``names`` (the header's); from the first row this reader does not take, ``fallback`` yields the rest."""
    with open(path, "rb") as fh:
        capacity = first_capacity(os.fstat(fh.fileno()).st_size)
        reader = _Reader(fh.readinto, names, ord(delimiter), chunk_size, capacity)
        if not reader.skip_header():
            yield from fallback(0)
            return
        given = 0
        while (table := reader.next_chunk()) is not None:
            given += table.num_rows
            yield table
        if reader.irregular:
            yield from fallback(given)


def first_capacity(file_size: int) -> int:
    """The reading buffer's first size for a file of ``file_size`` bytes: room for all of it and one
    byte (to see the end), from READ to RESERVE."""
    return max(READ, min(RESERVE, file_size + 1))


class _Reader:
    """The file's bytes in one growing buffer; a chunk's rows are found, then copied out."""

    def __init__(
        self,
        readinto: Callable[[memoryview], int | None],
        names: list[str],
        delimiter: int,
        chunk_size: int,
        capacity: int = READ,
    ) -> None:
        """Read by ``readinto`` into a buffer of ``capacity`` bytes to start with; rows of as many
        fields as ``names``."""
        self._readinto = readinto
        self._names = names
        self._width = len(names)
        self._delimiter = delimiter
        self._chunk = chunk_size
        # numpy, not bytearray: pages beyond what was read are never touched, so never resident
        self._buf = np.empty(capacity, dtype=np.uint8)
        self._n = 0  # bytes in the buffer
        self._pos = 0  # where the next row starts
        self._start = 0  # where in the file the buffer starts
        self._eof = False
        self._spans = np.empty(2 * self._width * chunk_size, dtype=np.int64)
        self.irregular = False

    def skip_header(self) -> bool:
        """Step over the header row; False when it is one to leave to Arrow (any line break inside
        it: Arrow's ``skip_rows`` and a quoted line break need not agree)."""
        self._fill_buffer()
        if self._buf[: min(self._n, len(_BOM))].tobytes() == _BOM:  # Arrow's reader skips it too
            self._pos = len(_BOM)
        rows, _ = self._scan(1)
        if rows != 1 or self.irregular:
            return False
        header = self._buf[: self._pos].tobytes().rstrip(b"\r\n")
        return b"\r" not in header and b"\n" not in header

    def next_chunk(self) -> pa.Table | None:
        """The next ``chunk_size`` rows (fewer at the end of the file), or None when none are left or
        the next row is irregular."""
        if self.irregular:
            return None
        self._compact()
        rows, sizes = self._scan(self._chunk)
        if self.irregular or not rows:
            return None  # the rows found before an irregular one are the fallback's to give
        return self._table(rows, sizes)

    def _scan(self, max_rows: int) -> tuple[int, np.ndarray]:
        """Find up to ``max_rows`` rows from the current position, reading more as needed."""
        sizes = np.zeros(self._width, dtype=np.int64)
        rows = 0
        while True:
            view = self._buf.data[: self._n]
            rows, self._pos, irregular = _csvscan.scan(
                view, self._pos, self._eof, self._delimiter, self._width, self._spans, rows, max_rows, sizes
            )
            view.release()
            if irregular:
                self.irregular = True
                return rows, sizes
            if rows == max_rows or self._eof:
                return rows, sizes
            self._fill_buffer()

    def _fill_buffer(self) -> None:
        """Read more bytes, growing the buffer when it is full (a chunk's rows stay where they are)."""
        if self._n == len(self._buf):
            grown = np.empty(2 * len(self._buf), dtype=np.uint8)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        with self._buf.data as view:  # READ at most: what is left after a chunk is moved
            got = self._readinto(view[self._n : self._n + READ])
        if not got:
            self._eof = True
        else:
            self._n += got

    def _compact(self) -> None:
        """Move the bytes not yet read as rows to the front of the buffer."""
        rest = self._n - self._pos
        if self._pos and rest:
            self._buf[:rest] = self._buf[self._pos : self._n]  # numpy copies overlapping ranges correctly
        self._start += self._pos
        self._n, self._pos = rest, 0

    @property
    def consumed(self) -> int:
        """Where in the file the rows read so far end (the header's included)."""
        return self._start + self._pos

    def _table(self, rows: int, sizes: np.ndarray) -> pa.Table:
        columns = [  # the values from the C heap: a description column takes more than 8 MB
            (text.heap_buffer(int(size)), pa.allocate_buffer(8 * (rows + 1))) for size in sizes.tolist()
        ]
        with self._buf.data as view:
            _csvscan.fill(view[: self._n], self._spans, rows, columns)
        arrays = [
            pa.Array.from_buffers(pa.large_string(), rows, [None, offsets, data]) for data, offsets in columns
        ]
        return pa.Table.from_arrays(arrays, names=self._names)
