"""Fixtures for the catalog side's tests: config files in tmp_path and throw-away SQL tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

#: The development servers (design.md "Real parts"); tests fail, not skip, when they are down.
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


def _unique_name() -> str:
    return f"feedgen_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write YAML text to ``tmp_path/<folder>/retarget.yaml`` and return its path."""

    def write(text: str, folder: str = "conf") -> Path:
        path = tmp_path / folder / "retarget.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def pg_schema() -> Iterator[tuple[sa.Engine, str]]:
    """A fresh PostgreSQL schema ``feedgen_test_<random>``, dropped with everything in it afterwards."""
    engine = sa.create_engine(POSTGRES_URL)
    schema = _unique_name()
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield engine, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def mariadb_table() -> Iterator[tuple[sa.Engine, str]]:
    """A fresh table name ``feedgen_test_<random>`` in MariaDB's ``test`` database, dropped afterwards."""
    engine = sa.create_engine(MARIADB_URL)
    table = _unique_name()
    # connect now so a server that is down fails the test here, with the reason
    with engine.connect():
        pass
    try:
        yield engine, table
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS `{table}`"))
        engine.dispose()
