"""``audiences hash``: a customer file in, one platform's hashed upload file out, in bounded memory.

The input is read in chunks; chunks are normalized and hashed on every core, in order (threads within a
chunk, and worker processes on machines with more than two cores), and the output is written to a
temporary file that replaces the target only when the whole file is done.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from audiences.config import IDENTIFIER_COLUMNS
from audiences.errors import ConfigError, DataError
from audiences.exports import ExportResult, export_frame
from feedgen import publish
from feedgen.config import SourceConfig
from feedgen.errors import FeedgenError
from feedgen.sources import ROW, read_chunks, source_columns

#: rows per chunk: large enough that repeated values (names, places) are normalized once per chunk
CHUNK_ROWS = 100_000
_QUOTE_NONE = pacsv.WriteOptions(include_header=False, quoting_style="none", eol="\n")
_QUOTE_NEEDED = pacsv.WriteOptions(include_header=False, quoting_style="needed", eol="\n")


@dataclass
class HashSummary:
    """What ``hash_file`` did, with no values: rows, per-column counts, and the columns written."""

    platform: str
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    hashed_columns: tuple[str, ...] = ()
    plain_columns: tuple[str, ...] = ()
    empty_rows: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, result: ChunkOut) -> None:
        """Fold one chunk's result into the totals."""
        self.rows += result.rows
        self.empty_rows += result.empty_rows
        for column, counts in result.counts.items():
            totals = self.counts.setdefault(column, {"valid": 0, "blank": 0, "invalid": 0})
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n


@dataclass(frozen=True)
class ChunkOut:
    """One chunk, exported and already serialised (workers send bytes, not frames: far cheaper to pass)."""

    csv: pa.Buffer
    rows: int
    empty_rows: int
    columns: tuple[str, ...]
    hashed_columns: tuple[str, ...]
    plain_columns: tuple[str, ...]
    counts: dict[str, dict[str, int]]

    @classmethod
    def of(cls, result: ExportResult) -> ChunkOut:
        """Serialise an export result."""
        return cls(
            csv=csv_buffer(result.frame) if len(result.frame) else pa.py_buffer(b""),
            rows=len(result.frame),
            empty_rows=int(result.empty_rows.sum()),
            columns=tuple(result.frame.columns),
            hashed_columns=result.hashed_columns,
            plain_columns=result.plain_columns,
            counts=result.counts,
        )


@dataclass(frozen=True)
class HashOptions:
    """How to hash: the platform, the country for numbers and addresses without one, the phone form."""

    platform: str
    default_country: str | None
    tiktok_phone_format: str = "e164"

    def export(self, frame: pd.DataFrame) -> ExportResult:
        """The platform's upload frame for ``frame`` (logical identifier columns)."""
        return export_frame(
            frame, self.platform, self.default_country, tiktok_phone_format=self.tiktok_phone_format
        )


def hash_file(
    input_path: Path,
    output_path: Path,
    options: HashOptions,
    mapping: Mapping[str, str] | None = None,
    *,
    chunk_size: int = CHUNK_ROWS,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> HashSummary:
    """Hash ``input_path`` (CSV or Parquet, logical or mapped columns) into ``output_path``."""
    mapping = dict(mapping or {})
    source = SourceConfig(path=input_path, chunk_size=chunk_size)
    try:
        have = set(source_columns(source))
    except FeedgenError as exc:
        raise ConfigError(str(exc)) from None
    present = [c for c in IDENTIFIER_COLUMNS if mapping.get(c, c) in have]
    if not present:
        raise ConfigError(
            f"{input_path}: no identifier column; expected any of {', '.join(IDENTIFIER_COLUMNS)} "
            "(or map the file's names with customers.columns in --config)"
        )
    summary = HashSummary(platform=options.platform)
    staged, fd = publish.stage(output_path)
    try:
        with open(fd, "wb") as out:
            for result in _results(source, present, mapping, options, jobs):
                if not summary.columns:
                    _start(summary, result, out)
                out.write(result.csv)
                summary.add(result)
                if progress:
                    progress(result.rows)
            if not summary.columns:  # no data rows: still write the header of the columns we have
                empty = pd.DataFrame({c: pd.Series([], dtype="str") for c in present})
                _start(summary, ChunkOut.of(options.export(empty)), out)
        publish.publish([staged], mode=0o600)
    except FeedgenError as exc:
        raise DataError(str(exc)) from None
    finally:
        staged.discard()
    return summary


def _start(summary: HashSummary, first: ChunkOut, out: BinaryIO) -> None:
    """Take the columns from the first chunk and write the header."""
    summary.columns = list(first.columns)
    summary.hashed_columns, summary.plain_columns = first.hashed_columns, first.plain_columns
    out.write((",".join(summary.columns) + "\n").encode())


def _export(chunk: pd.DataFrame, options: HashOptions) -> ChunkOut:
    return ChunkOut.of(options.export(chunk.drop(columns=[ROW])))


def _results(
    source: SourceConfig,
    present: list[str],
    mapping: dict[str, str],
    options: HashOptions,
    jobs: int | None,
) -> Iterator[ChunkOut]:
    """Export results in input order; with more than one job, chunks run in worker processes."""
    chunks = read_chunks(source, present, mapping)
    workers = jobs if jobs is not None else default_jobs()
    pool: Executor
    if workers <= 1:
        # One chunk is hashed (on every core: export_frame runs its keys in threads) while this thread
        # reads the next and writes the last.
        pool = ThreadPoolExecutor(max_workers=1)
    else:
        # forkserver, not fork: this process may have run DuckDB's and Arrow's thread pools, whose locks
        # a fork would copy mid-use (a worker then hangs)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    pending: deque[Future[ChunkOut]] = deque()
    with pool:
        for chunk in chunks:
            pending.append(pool.submit(_export, chunk, options))
            if len(pending) > workers:  # bounded: at most workers + 1 chunks in flight
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def default_jobs() -> int:
    """Worker processes when none are asked for: one per two cores (each hashes on two threads)."""
    return max(1, (os.cpu_count() or 1) // 2)


def csv_rows(frame: pd.DataFrame) -> bytes:
    """Rows without quotes (hashes never need them); quoted only when a plain value needs it."""
    return csv_buffer(frame).to_pybytes()


def csv_buffer(frame: pd.DataFrame) -> pa.Buffer:
    """``csv_rows`` as an Arrow buffer (written or sent as it is, without a copy into ``bytes``)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    try:
        pacsv.write_csv(table, sink, _QUOTE_NONE)
    except pa.ArrowInvalid:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, _QUOTE_NEEDED)
    return sink.getvalue()
