"""The state store on SQLite and on the PostgreSQL server of the machine (its own schema, dropped after)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from audiences.errors import ConfigError
from audiences.state import Remote, StateStore, default_url, ledger

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "sqlite":
        found = StateStore(default_url(tmp_path / "out"))
        yield found
        found.close()
        return
    schema = f"state_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    found = StateStore(f"{POSTGRES}?options=-csearch_path%3D{schema}")
    try:
        yield found
    finally:
        found.close()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


ROWS = [(f"{i:064x}", (f"{i:064x}", "")) for i in range(1, 1201)]  # more than one IN-list chunk


def test_members_follow_confirmed_batches(store: StateStore) -> None:
    run = store.start_run("sync", "/runs/1")
    store.record_batch(run, "meta", "a", "add", "d1", ROWS, received=len(ROWS), invalid=2)
    held = store.held("meta", "a")
    assert len(held) == 1200 and held[ROWS[0][0]] == ROWS[0][1]
    assert store.held("meta", "b") == {} and store.held("tiktok", "a") == {}
    store.record_batch(run, "meta", "a", "remove", "d2", ROWS[:700], received=700, invalid=0)
    assert set(store.held("meta", "a")) == {d for d, _ in ROWS[700:]}
    store.record_batch(
        run, "meta", "a", "add", "d3", ROWS[650:710], received=60, invalid=0
    )  # re-adds are fine
    assert len(store.held("meta", "a")) == 550
    assert store.sent_batches("meta", "a") == {("add", "d1"), ("remove", "d2"), ("add", "d3")}
    store.end_run(run, "ok", {"adds": 1260, "removes": 700})
    (last,) = store.history(limit=1)
    assert last["outcome"] == "ok" and last["counts"] == {"adds": 1260, "removes": 700} and last["ended_at"]
    with store.engine.connect() as conn:
        invalid = conn.execute(sa.select(sa.func.sum(ledger.c.invalid))).scalar()
    assert invalid == 2


def test_replace_members_swaps_everything(store: StateStore) -> None:
    run = store.start_run("sync", "/runs/1")
    store.record_batch(run, "meta", "a", "add", "d1", ROWS[:10], received=10, invalid=0)
    store.replace_members("meta", "a", ROWS[5:20])
    assert set(store.held("meta", "a")) == {d for d, _ in ROWS[5:20]}


def test_remote_ids_and_schema_are_remembered(store: StateStore) -> None:
    assert store.remote("meta", "a") is None
    store.save_remote("meta", "a", Remote("123", ("EMAIL", "PHONE")))
    store.save_remote("meta", "a", Remote("123", ("EMAIL", "PHONE"), "77", "f" * 64))
    assert store.remote("meta", "a") == Remote("123", ("EMAIL", "PHONE"), "77", "f" * 64)
    store.record_prune(["/runs/old", "/runs/old"])


def test_an_unreachable_state_store_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        StateStore("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test")
    assert "state.url" in str(caught.value) and "s3cret" not in str(caught.value)
