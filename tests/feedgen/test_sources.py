"""feedgen.sources: CSV, Parquet and SQL tables read in chunks, as strings under logical names."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from feedgen.config import CATALOG_COLUMNS, SourceConfig, load_config
from feedgen.errors import SourceError
from feedgen.sources import ROW, read_chunks, read_table, source_columns

# Five records; record 2 has a quoted comma and doubled quotes, record 3 a newline inside quotes,
# gtin keeps its leading zeros, empty cells stay empty, and "NA"/"null" are text, not missing.
CSV_TEXT = (
    "sku,name,price,gtin,brand\r\n"
    "A1,Plain shirt,1200,0012345678905,Acme\r\n"
    'A2,"Shirt, ""deluxe""",3400.50,,\r\n'
    'A3,"Two\nlines",0500,00000000,NA\r\n'
    "A4,Café 日本語,,4006381333931,null\r\n"
    "A5,Last,99,,\r\n"
)
LOGICAL = ["id", "title", "price", "gtin", "brand", "color"]
MAPPING = {"id": "sku", "title": "name"}
EXPECTED = [
    {"id": "A1", "title": "Plain shirt", "price": "1200", "gtin": "0012345678905", "brand": "Acme"},
    {"id": "A2", "title": 'Shirt, "deluxe"', "price": "3400.50", "gtin": "", "brand": ""},
    {"id": "A3", "title": "Two\nlines", "price": "0500", "gtin": "00000000", "brand": "NA"},
    {"id": "A4", "title": "Café 日本語", "price": "", "gtin": "4006381333931", "brand": "null"},
    {"id": "A5", "title": "Last", "price": "99", "gtin": "", "brand": ""},
]
BIG = 9007199254740993  # 2**53 + 1: a float cannot hold it


def _write_csv(tmp_path: Path, text: str = CSV_TEXT, name: str = "catalog.csv", bom: bool = True) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    return [{c: row[c] for c in columns} for row in frame.to_dict("records")]


def _assert_all_strings(frame: pd.DataFrame) -> None:
    for name in frame.columns.drop(ROW):
        assert not frame[name].isna().any(), name
        assert all(isinstance(value, str) for value in frame[name]), name


def _assert_chunked(chunks: list[pd.DataFrame], sizes: list[int]) -> pd.DataFrame:
    """Chunk sizes as given, each chunk indexed from 0, ``_row`` numbered 1..n across chunks."""
    assert [len(chunk) for chunk in chunks] == sizes
    for chunk in chunks:
        assert list(chunk.index) == list(range(len(chunk)))
    frame = pd.concat(chunks, ignore_index=True)
    assert frame[ROW].tolist() == list(range(1, sum(sizes) + 1))
    return frame


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_in_chunks_keeps_text_exactly(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_csv(tmp_path), chunk_size=2)

    chunks = list(read_chunks(source, LOGICAL, MAPPING))

    frame = _assert_chunked(chunks, [2, 2, 1])
    assert list(frame.columns) == [ROW, *LOGICAL]
    assert _records(frame, ["id", "title", "price", "gtin", "brand"]) == EXPECTED
    assert frame["color"].tolist() == [""] * 5  # a logical column the source lacks
    _assert_all_strings(frame)


def test_csv_without_bom_and_one_chunk(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_csv(tmp_path, bom=False))

    chunks = list(read_chunks(source, ["sku", "name"]))

    frame = _assert_chunked(chunks, [5])
    assert frame["sku"].tolist() == ["A1", "A2", "A3", "A4", "A5"]


def test_csv_rows_a_multiple_of_chunk_size_give_no_empty_chunk(tmp_path: Path) -> None:
    text = "id\n" + "".join(f"{i}\n" for i in range(4))
    source = SourceConfig(path=_write_csv(tmp_path, text), chunk_size=2)

    _assert_chunked(list(read_chunks(source, ["id"])), [2, 2])


def test_csv_chunks_stay_bounded_across_read_blocks(tmp_path: Path) -> None:
    # ~2.6 MB: pyarrow reads it in several 1 MB blocks, each far more rows than chunk_size
    rows = 40_000
    text = "id,title\n" + "".join(f"{i:07d},{'x' * 55}\n" for i in range(rows))
    source = SourceConfig(path=_write_csv(tmp_path, text, bom=False), chunk_size=3_000)

    chunks = list(read_chunks(source, ["id"]))

    sizes = [3_000] * (rows // 3_000) + [rows % 3_000]
    frame = _assert_chunked(chunks, sizes)
    assert frame["id"].tolist() == [f"{i:07d}" for i in range(rows)]


def test_csv_mapped_column_missing_names_it(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_csv(tmp_path))

    with pytest.raises(SourceError) as info:
        list(read_chunks(source, LOGICAL, {"id": "sku", "title": "product_name"}))

    assert info.value.exit_code == 2
    message = str(info.value)
    assert "['product_name']" in message
    assert "it has: sku, name, price, gtin, brand" in message


def test_csv_delimiter_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "catalog.txt"
    path.write_bytes("id;title\n1;Crème brûlée\n2;\n".encode("cp1252"))
    source = SourceConfig(path=path, delimiter=";", encoding="cp1252")

    frame = read_table(source, ["id", "title"])

    assert _records(frame, [ROW, "id", "title"]) == [
        {ROW: 1, "id": "1", "title": "Crème brûlée"},
        {ROW: 2, "id": "2", "title": ""},
    ]


def test_tsv_extension_defaults_to_tab(tmp_path: Path) -> None:
    path = tmp_path / "catalog.tsv"
    path.write_text("id\ttitle\n001\tA, B\n", encoding="utf-8")

    frame = read_table(SourceConfig(path=path), ["id", "title"])

    assert _records(frame, ["id", "title"]) == [{"id": "001", "title": "A, B"}]


def test_format_overrides_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_text("id\n7\n", encoding="utf-8")

    with pytest.raises(SourceError, match="cannot tell the format"):
        list(read_chunks(SourceConfig(path=path), ["id"]))
    frame = read_table(SourceConfig(path=path, format="csv"), ["id"])

    assert frame["id"].tolist() == ["7"]


def test_header_only_csv_gives_an_empty_table(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_csv(tmp_path, "id,title\n"))

    assert list(read_chunks(source, ["id", "title"])) == []
    frame = read_table(source, ["id", "title"])
    assert list(frame.columns) == [ROW, "id", "title"]
    assert frame.empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file, expected a header row"),
        ("id,id\n1,2\n", "duplicate column name(s) in the header: ['id']"),
        ("id,title\n1,a\n2,b,extra\n", "cannot parse CSV"),
    ],
)
def test_bad_csv_is_a_source_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write_csv(tmp_path, text, bom=False)

    with pytest.raises(SourceError) as info:
        list(read_chunks(SourceConfig(path=path), ["id"]))

    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_csv_in_the_wrong_encoding_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes("id,title\n1,Crème\n".encode("cp1252"))

    with pytest.raises(SourceError, match="not utf-8 text; set `encoding`"):
        list(read_chunks(SourceConfig(path=path), ["id"]))


@pytest.mark.parametrize("name", ["missing.csv", "missing.parquet"])
def test_missing_file_is_a_source_error(tmp_path: Path, name: str) -> None:
    source = SourceConfig(path=tmp_path / name)

    with pytest.raises(SourceError, match="file not found"):
        list(read_chunks(source, ["id"]))
    with pytest.raises(SourceError, match="file not found"):
        source_columns(source)


# --- Parquet -----------------------------------------------------------------------------------------


def _write_parquet(tmp_path: Path, name: str = "catalog.parquet") -> Path:
    table = pa.table(
        {
            "sku": pa.array(["P1", "P2", "P3", "P4", "P5"]),
            "gtin": pa.array(["0012345678905", None, "", "4006381333931", None]),
            "price": pa.array([1200.0, 12.5, None, 0.1, 3e20], pa.float64()),
            "stock": pa.array([3, None, 0, -1, BIG], pa.int64()),
            "nothing": pa.array([None] * 5, pa.null()),
            "active": pa.array([True, False, None, True, True]),
            "title": pa.array(["日本語", "é", "two\nlines", None, "x"]),
        }
    )
    path = tmp_path / name
    pq.write_table(table, path, row_group_size=3)
    return path


def test_parquet_in_chunks_as_strings(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_parquet(tmp_path), chunk_size=2)
    logical = ["id", "gtin", "price", "stock", "nothing", "active", "title", "brand"]

    frame = _assert_chunked(list(read_chunks(source, logical, {"id": "sku"})), [2, 2, 1])

    assert list(frame.columns) == [ROW, *logical]
    assert frame["id"].tolist() == ["P1", "P2", "P3", "P4", "P5"]
    assert frame["gtin"].tolist() == ["0012345678905", "", "", "4006381333931", ""]
    assert frame["price"].tolist() == ["1200", "12.5", "", "0.1", "3e+20"]
    assert frame["stock"].tolist() == ["3", "", "0", "-1", str(BIG)]
    assert frame["nothing"].tolist() == [""] * 5
    assert frame["active"].tolist() == ["true", "false", "", "true", "true"]
    assert frame["title"].tolist() == ["日本語", "é", "two\nlines", "", "x"]
    assert frame["brand"].tolist() == [""] * 5
    _assert_all_strings(frame)


def test_parquet_mapped_column_missing_names_it(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_parquet(tmp_path))

    with pytest.raises(SourceError, match=r"mapped column\(s\) \['name'\] not in the source"):
        list(read_chunks(source, ["id", "title"], {"id": "sku", "title": "name"}))


def test_pq_extension_and_not_a_parquet_file(tmp_path: Path) -> None:
    good = _write_parquet(tmp_path, "catalog.pq")
    bad = tmp_path / "fake.parquet"
    bad.write_text("id\n1\n", encoding="utf-8")

    assert read_table(SourceConfig(path=good), ["sku"])["sku"].tolist() == ["P1", "P2", "P3", "P4", "P5"]
    with pytest.raises(SourceError, match="not a Parquet file"):
        list(read_chunks(SourceConfig(path=bad), ["id"]))
    with pytest.raises(SourceError, match="not a Parquet file"):
        source_columns(SourceConfig(path=bad))


# --- source_columns ----------------------------------------------------------------------------------


def test_source_columns_of_csv_strips_the_bom(tmp_path: Path) -> None:
    assert source_columns(SourceConfig(path=_write_csv(tmp_path))) == [
        "sku",
        "name",
        "price",
        "gtin",
        "brand",
    ]


def test_source_columns_of_parquet(tmp_path: Path) -> None:
    source = SourceConfig(path=_write_parquet(tmp_path))

    assert source_columns(source) == ["sku", "gtin", "price", "stock", "nothing", "active", "title"]


# --- SQL: shared expectations ------------------------------------------------------------------------

# id, title, price (exact decimal), stock (int, with a NULL), big (int beyond float precision, with a NULL),
# note (text with a newline / NULL). Read back in this order.
SQL_ROWS: list[dict[str, Any]] = [
    {
        "id": "S1",
        "title": "日本語の商品",
        "price": Decimal("1200.00"),
        "stock": 5,
        "big": BIG,
        "note": "a\nb",
    },
    {"id": "S2", "title": "Café é", "price": None, "stock": None, "big": None, "note": None},
    {"id": "S3", "title": "", "price": Decimal("0.50"), "stock": 0, "big": 1, "note": "plain"},
    {"id": "S4", "title": "x", "price": Decimal("19.99"), "stock": -3, "big": None, "note": ""},
    {"id": "S5", "title": "y", "price": Decimal("7.00"), "stock": 12, "big": 42, "note": "z"},
]
SQL_EXPECTED = [
    {"id": "S1", "title": "日本語の商品", "price": "1200.00", "stock": "5", "big": str(BIG), "note": "a\nb"},
    {"id": "S2", "title": "Café é", "price": "", "stock": "", "big": "", "note": ""},
    {"id": "S3", "title": "", "price": "0.50", "stock": "0", "big": "1", "note": "plain"},
    {"id": "S4", "title": "x", "price": "19.99", "stock": "-3", "big": "", "note": ""},
    {"id": "S5", "title": "y", "price": "7.00", "stock": "12", "big": "42", "note": "z"},
]
SQL_LOGICAL = ["id", "title", "price", "inventory", "big", "note", "brand"]
SQL_MAPPING = {"inventory": "stock"}


def _check_sql_read(source: SourceConfig, *, ordered: bool) -> None:
    """Read ``source`` (the five SQL_ROWS) in chunks of 2 and compare with SQL_EXPECTED."""
    chunks = list(read_chunks(source.model_copy(update={"chunk_size": 2}), SQL_LOGICAL, SQL_MAPPING))

    frame = _assert_chunked(chunks, [2, 2, 1])
    assert list(frame.columns) == [ROW, *SQL_LOGICAL]
    _assert_all_strings(frame)
    # inventory was mapped from the "stock" column; compare under the source's name
    got = [
        {("stock" if k == "inventory" else k): v for k, v in r.items()}
        for r in _records(frame, SQL_LOGICAL[:-1])
    ]
    if not ordered:
        got.sort(key=lambda r: r["id"])
    assert got == SQL_EXPECTED
    assert frame["brand"].tolist() == [""] * 5


def _insert(engine: sa.Engine, table: sa.Table) -> None:
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), SQL_ROWS)


def _products(metadata: sa.MetaData, name: str = "products", **kwargs: Any) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("title", sa.String(100)),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("stock", sa.Integer),
        sa.Column("big", sa.BigInteger),
        sa.Column("note", sa.Text),
        **kwargs,
    )


# --- SQLite ------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """A SQLite file with the five SQL_ROWS in ``products`` (price as REAL text, as SQLite stores it)."""
    path = tmp_path / "shop.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "CREATE TABLE products (id TEXT PRIMARY KEY, title TEXT, price TEXT, stock INTEGER,"
            " big INTEGER, note TEXT)"
        )
        conn.executemany(
            "INSERT INTO products VALUES (:id, :title, :price, :stock, :big, :note)",
            [{**row, "price": None if row["price"] is None else str(row["price"])} for row in SQL_ROWS],
        )
    return path


def test_sqlite_table(sqlite_db: Path) -> None:
    _check_sql_read(SourceConfig(url=f"sqlite:///{sqlite_db}", table="products"), ordered=False)


def test_sqlite_query(sqlite_db: Path) -> None:
    query = "SELECT * FROM products ORDER BY id"

    _check_sql_read(SourceConfig(url=f"sqlite:///{sqlite_db}", query=query), ordered=True)


def test_sqlite_numbers_are_written_without_float_noise(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE t (n INTEGER, r REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, 1200.0), (None, 12.5), (BIG, None)])

    frame = read_table(
        SourceConfig(url=f"sqlite:///{path}", query="SELECT * FROM t ORDER BY rowid"), ["n", "r"]
    )

    assert frame["n"].tolist() == ["1", "", str(BIG)]
    assert frame["r"].tolist() == ["1200", "12.5", ""]


def test_sqlite_relative_url_from_config_is_read_from_any_cwd(
    sqlite_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "retarget.yaml"
    config_path.write_text(
        "shop: {name: Demo, currency: JPY}\n"
        "catalog:\n"
        "  source: {url: 'sqlite:///shop.db', table: products}\n"
        "  columns: {inventory: stock}\n",
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(config_path)

    frame = read_table(config.catalog.source, CATALOG_COLUMNS, config.catalog.columns)

    assert sorted(frame["id"]) == ["S1", "S2", "S3", "S4", "S5"]
    assert sorted(frame["inventory"]) == ["", "-3", "0", "12", "5"]
    assert not (elsewhere / "shop.db").exists()


def test_sqlite_empty_result_gives_an_empty_table(sqlite_db: Path) -> None:
    source = SourceConfig(url=f"sqlite:///{sqlite_db}", query="SELECT * FROM products WHERE 1 = 0")

    frame = read_table(source, ["id"])

    assert list(frame.columns) == [ROW, "id"]
    assert frame.empty


def test_source_columns_of_sql(sqlite_db: Path) -> None:
    source = SourceConfig(url=f"sqlite:///{sqlite_db}", table="products")

    assert source_columns(source) == ["id", "title", "price", "stock", "big", "note"]


@pytest.mark.parametrize(
    ("table", "query", "described"),
    [("no_such_table", None, "table no_such_table"), (None, "SELECT nope FROM products", "SQL query")],
)
def test_sqlite_unknown_table_or_bad_query(
    sqlite_db: Path, table: str | None, query: str | None, described: str
) -> None:
    source = SourceConfig(url=f"sqlite:///{sqlite_db}", table=table, query=query)

    with pytest.raises(SourceError) as info:
        list(read_chunks(source, ["id"]))

    message = str(info.value)
    assert message.startswith(f"{described}: database error (")
    assert str(sqlite_db) not in message
    assert info.value.exit_code == 2


def test_sql_mapped_column_missing_names_it(sqlite_db: Path) -> None:
    source = SourceConfig(url=f"sqlite:///{sqlite_db}", table="products")

    with pytest.raises(SourceError, match=r"table products: mapped column\(s\) \['qty'\] not in the source"):
        list(read_chunks(source, ["inventory"], {"inventory": "qty"}))


# --- bad URLs never show the password ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test",
        "mysql+pymysql://root:s3cret@127.0.0.1:1/test",
        "postgresql+psycopg://postgres:s3cret@127.0.0.1:notaport/test",
        "nosuchdialect://postgres:s3cret@127.0.0.1/test",
        "not a url s3cret",
    ],
)
def test_bad_sql_url_is_a_source_error_without_the_password(url: str) -> None:
    source = SourceConfig(url=url, table="products")

    with pytest.raises(SourceError) as info:
        list(read_chunks(source, ["id"]))

    message = str(info.value)
    assert message.startswith("table products: ")
    assert "s3cret" not in message
    assert info.value.exit_code == 2


def test_password_from_env_never_reaches_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PASSWORD", "s3cret")
    config_path = tmp_path / "retarget.yaml"
    config_path.write_text(
        "shop: {name: Demo, currency: JPY}\n"
        "catalog: {source: {url: 'postgresql+psycopg://postgres:${PG_PASSWORD}@127.0.0.1:1/test',"
        " query: 'select 1'}}\n",
        encoding="utf-8",
    )
    source = load_config(config_path).catalog.source
    assert source.url is not None and "s3cret" in source.url

    with pytest.raises(SourceError) as info:
        list(read_chunks(source, ["id"]))

    assert str(info.value).startswith("SQL query: database error (")
    assert "s3cret" not in str(info.value)


# --- PostgreSQL --------------------------------------------------------------------------------------


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_postgres_table_and_query(pg_schema: tuple[sa.Engine, str]) -> None:
    engine, schema = pg_schema
    _insert(engine, _products(sa.MetaData(schema=schema)))
    url = _url(engine)

    _check_sql_read(SourceConfig(url=url, table=f"{schema}.products"), ordered=False)
    query = f'SELECT * FROM "{schema}".products ORDER BY id'
    _check_sql_read(SourceConfig(url=url, query=query), ordered=True)
    assert source_columns(SourceConfig(url=url, table=f"{schema}.products")) == [
        "id",
        "title",
        "price",
        "stock",
        "big",
        "note",
    ]


@pytest.mark.postgres
def test_postgres_unknown_table(pg_schema: tuple[sa.Engine, str]) -> None:
    engine, schema = pg_schema
    source = SourceConfig(url=_url(engine), table=f"{schema}.no_such_table")

    with pytest.raises(SourceError) as info:
        list(read_chunks(source, ["id"]))

    assert str(info.value).startswith(f"table {schema}.no_such_table: database error (")
    assert "does not exist" in str(info.value)


# --- MariaDB -----------------------------------------------------------------------------------------


@pytest.mark.mariadb
def test_mariadb_table_and_query(mariadb_table: tuple[sa.Engine, str]) -> None:
    engine, name = mariadb_table
    _insert(engine, _products(sa.MetaData(), name, mysql_charset="utf8mb4"))
    url = _url(engine)

    _check_sql_read(SourceConfig(url=url, table=name), ordered=False)
    _check_sql_read(SourceConfig(url=url, query=f"SELECT * FROM `{name}` ORDER BY id"), ordered=True)
    assert source_columns(SourceConfig(url=url, table=name)) == [
        "id",
        "title",
        "price",
        "stock",
        "big",
        "note",
    ]


@pytest.mark.mariadb
def test_mariadb_unknown_table(mariadb_table: tuple[sa.Engine, str]) -> None:
    engine, name = mariadb_table
    source = SourceConfig(url=_url(engine), table=name)  # the fixture names it but never creates it

    with pytest.raises(SourceError) as info:
        list(read_chunks(source, ["id"]))

    assert str(info.value).startswith(f"table {name}: database error (")
    assert "doesn't exist" in str(info.value)
