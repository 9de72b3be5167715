"""Read a table from CSV, Parquet or SQL in chunks, as strings under logical column names.

Every reader yields DataFrames whose columns are the requested logical names (missing ones filled
with ``""``), every value a string (``""`` for missing), plus ``ROW`` = the 1-based record number in
the source, so errors can name the row. Memory is bounded by ``chunk_size``, not by the table.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from feedgen import csvread
from feedgen.config import SourceConfig
from feedgen.errors import SourceError
from feedgen.text import as_str, blanks, to_series

ROW = "_row"
_CSV_BLOCK = 1 << 20


def read_chunks(
    source: SourceConfig,
    logical: Iterable[str],
    mapping: Mapping[str, str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the source in chunks with logical column names, string values and a ``_row`` column."""
    logical = list(logical)
    mapping = dict(mapping or {})
    start = 1
    for raw in _raw_chunks(source):
        chunk = _to_logical(raw, logical, mapping, source, start)
        start += len(chunk)
        yield chunk


def read_table(
    source: SourceConfig, logical: Iterable[str], mapping: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The whole source as one frame (for small tables)."""
    logical = list(logical)
    chunks = list(read_chunks(source, logical, mapping))
    if not chunks:
        return pd.DataFrame(
            {ROW: pd.Series([], dtype="int64"), **{c: pd.Series([], dtype="str") for c in logical}}
        )
    return pd.concat(chunks, ignore_index=True)


def source_columns(source: SourceConfig) -> list[str]:
    """The column names the source itself has (before mapping)."""
    kind = _kind(source)
    if kind == "csv":
        return _csv_header(source)
    if kind == "parquet":
        return list(_open_parquet(source).schema_arrow.names)
    for chunk in _sql_chunks(source.model_copy(update={"chunk_size": 1})):
        return list(chunk.columns)
    return []


def _kind(source: SourceConfig) -> str:
    if source.url is not None:
        return "sql"
    assert source.path is not None
    if source.format:
        return source.format
    suffix = source.path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    raise SourceError(
        f"{source.path}: cannot tell the format from the extension; set `format: csv` or `parquet`"
    )


#: a chunk as a reader yields it: Arrow columns (CSV, Parquet) or a frame of strings (SQL)
_Raw: TypeAlias = pa.Table | pd.DataFrame


def _raw_chunks(source: SourceConfig) -> Iterator[_Raw]:
    kind = _kind(source)
    if kind == "csv":
        yield from _csv_chunks(source)
    elif kind == "parquet":
        yield from _parquet_chunks(source)
    else:
        yield from _sql_chunks(source)


def _delimiter(source: SourceConfig) -> str:
    """The configured delimiter; a tab for a ``.tsv`` file when none was set."""
    assert source.path is not None
    if "delimiter" not in source.model_fields_set and source.path.suffix.lower() == ".tsv":
        return "\t"
    return source.delimiter


def _csv_header(source: SourceConfig) -> list[str]:
    assert source.path is not None
    try:
        with open(source.path, encoding=source.encoding, newline="") as fh:
            header = next(csv.reader(fh, delimiter=_delimiter(source)), None)
    except FileNotFoundError:
        raise SourceError(f"{source.path}: file not found") from None
    except UnicodeDecodeError:
        raise SourceError(
            f"{source.path}: not {source.encoding} text; set `encoding` in the source"
        ) from None
    if not header:
        raise SourceError(f"{source.path}: empty file, expected a header row")
    header[0] = header[0].lstrip("\ufeff")
    return header


def _has_data(source: SourceConfig) -> bool:
    """True when the CSV holds at least one record after its header."""
    assert source.path is not None
    with open(source.path, encoding=source.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=_delimiter(source))
        next(reader, None)
        return next(reader, None) is not None


def _csv_chunks(source: SourceConfig) -> Iterator[pa.Table]:
    """The rows after the header in chunks: by the compiled reader where it can (``csvread``), else
    (and from the first row it does not take) by Arrow's."""
    assert source.path is not None
    header = _csv_header(source)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise SourceError(f"{source.path}: duplicate column name(s) in the header: {dupes}")
    if not _has_data(source):
        return  # header only (pyarrow cannot skip a header that has no line break after it)
    delimiter = _delimiter(source)
    arrow = partial(_arrow_chunks, source, header)
    if csvread.supports(source.encoding, delimiter):
        yield from csvread.chunks(source.path, header, delimiter, source.chunk_size, arrow)
    else:
        yield from arrow(0)


def _arrow_chunks(source: SourceConfig, header: list[str], skip: int) -> Iterator[pa.Table]:
    """The rows after the header by Arrow's reader, in chunks, the first ``skip`` rows left out."""
    assert source.path is not None
    read = pacsv.ReadOptions(
        column_names=header,
        skip_rows=1,
        encoding=source.encoding,
        # pyarrow parses blocks ahead of the reader; small blocks keep that read-ahead (and memory) small
        block_size=_CSV_BLOCK,
    )
    parse = pacsv.ParseOptions(delimiter=_delimiter(source), newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.large_string() for name in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    try:
        reader = pacsv.open_csv(source.path, read_options=read, parse_options=parse, convert_options=convert)
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in reader:
            if skip:  # rows another reader gave already
                dropped = min(skip, batch.num_rows)
                batch, skip = batch.slice(dropped), skip - dropped
            pending.append(batch)
            size += batch.num_rows
            # a block holds many more rows than chunk_size; cut it so each chunk has at most chunk_size
            while size >= source.chunk_size:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, source.chunk_size)
                rest = table.slice(source.chunk_size)
                pending, size = rest.to_batches(), rest.num_rows
        if size:
            yield pa.Table.from_batches(pending)
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{source.path}: cannot parse CSV ({_first_line(exc)})") from None


def _open_parquet(source: SourceConfig) -> pq.ParquetFile:
    assert source.path is not None
    try:
        return pq.ParquetFile(source.path)
    except FileNotFoundError:
        raise SourceError(f"{source.path}: file not found") from None
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{source.path}: not a Parquet file ({_first_line(exc)})") from None


def _parquet_chunks(source: SourceConfig) -> Iterator[pa.Table]:
    parquet = _open_parquet(source)
    for batch in parquet.iter_batches(batch_size=source.chunk_size):
        yield pa.Table.from_batches([batch])


def _sql_chunks(source: SourceConfig) -> Iterator[pd.DataFrame]:
    import sqlalchemy as sa

    assert source.url is not None
    try:
        engine = sa.create_engine(source.url)
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:  # ValueError: a non-numeric port
        raise SourceError(f"{source.describe()}: bad database URL ({_first_line(exc)})") from None
    if source.table is not None:
        table = (
            sa.table(source.table)
            if "." not in source.table
            else sa.table(source.table.split(".", 1)[1], schema=source.table.split(".", 1)[0])
        )
        statement: sa.Executable = sa.select(sa.text("*")).select_from(table)
    else:
        statement = sa.text(source.query or "")
    try:
        # the result (a server-side cursor) closes before the connection, also when the caller stops early
        with (
            engine.connect().execution_options(stream_results=True) as conn,
            conn.execute(statement) as result,
        ):
            names = list(result.keys())
            while rows := result.fetchmany(source.chunk_size):
                # dtype=object: an int column with NULLs must not become float (big ids lose digits)
                frame = pd.DataFrame(list(rows), columns=names, dtype=object)
                yield _objects_to_strings(frame)
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"{source.describe()}: database error ({_first_line(exc)})") from None
    finally:
        engine.dispose()


def _text_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as strings, "" for a missing value."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    return column.fill_null("") if column.null_count else column


def _objects_to_strings(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name in frame.columns:
        col = frame[name]
        text = col.map(_cell_text, na_action="ignore").astype("str")
        out[name] = text.where(col.notna(), "")
    return pd.DataFrame(out)


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_logical(
    raw: _Raw, logical: list[str], mapping: dict[str, str], source: SourceConfig, start: int
) -> pd.DataFrame:
    """The chunk under its logical names, ``ROW`` first (records numbered from ``start``), made as one
    frame: Arrow columns go in as they are, each wrapped once."""
    names = [str(name) for name in (raw.column_names if isinstance(raw, pa.Table) else raw.columns)]
    missing = sorted({col for col in mapping.values() if col not in names})
    if missing:
        raise SourceError(
            f"{source.describe()}: mapped column(s) {missing} not in the source (it has: {', '.join(names)})"
        )
    n = len(raw)
    index = pd.RangeIndex(n)
    data: dict[str, pd.Series | np.ndarray] = {ROW: np.arange(start, start + n, dtype=np.int64)}
    for name in logical:
        column = mapping.get(name, name)
        if column not in names:
            data[name] = blanks(index)
        elif isinstance(raw, pa.Table):
            data[name] = to_series(_text_column(raw.column(names.index(column))), index)
        else:
            data[name] = as_str(raw[column]).set_axis(index)
    return pd.DataFrame(data, index=index, copy=False)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
