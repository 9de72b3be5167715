"""What each destination holds, the runs that changed it, and a ledger of every batch sent.

SQLite by default (``<out>/state.db``), PostgreSQL by URL when several hosts share it. Only hashes are
kept: a member is the digest of its export row plus the row's cells (64-hex digests; Meta's MADID and
EXTERN_ID are ids, not personal data), because a removal must send the row the platform was given.
Members change in the same transaction as the ledger entry of the batch that changed them, so a sync
that dies half-way resumes from exactly what was confirmed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from audiences.errors import ConfigError

STATE_NAME = "state.db"

metadata = sa.MetaData()

remote = sa.Table(
    "remote_audiences",
    metadata,
    sa.Column("destination", sa.String(200), primary_key=True),
    sa.Column("audience", sa.String(200), primary_key=True),
    sa.Column("remote_id", sa.String(200), nullable=False, default=""),
    sa.Column("schema", sa.Text, nullable=False, default="[]"),
    sa.Column("product_set_id", sa.String(200), nullable=True),
    sa.Column("product_set_digest", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
members = sa.Table(
    "members",
    metadata,
    sa.Column("destination", sa.String(200), primary_key=True),
    sa.Column("audience", sa.String(200), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("row", sa.Text, nullable=False),
)
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("command", sa.String(40), nullable=False),
    sa.Column("run_dir", sa.Text, nullable=False, default=""),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("ended_at", sa.String(40), nullable=True),
    sa.Column("outcome", sa.String(40), nullable=True),
    sa.Column("counts", sa.Text, nullable=False, default="{}"),
)
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("audience", sa.String(200), nullable=False),
    sa.Column("operation", sa.String(20), nullable=False),
    sa.Column("batch_digest", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # sent (confirmed) or failed
    sa.Column("received", sa.Integer, nullable=False, default=0),
    sa.Column("invalid", sa.Integer, nullable=False, default=0),
    sa.Column("at", sa.String(40), nullable=False),
)
pruned = sa.Table(
    "pruned_runs",
    metadata,
    sa.Column("run_dir", sa.Text, primary_key=True),
    sa.Column("at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Remote:
    """What the state knows of one audience at one destination."""

    remote_id: str
    schema: tuple[str, ...]
    product_set_id: str | None = None
    #: sha256 of the product-set filter last sent (an unchanged set is not sent again)
    product_set_digest: str | None = None


def default_url(out_root: Path) -> str:
    """SQLite next to the runs: ``<out>/state.db``."""
    return f"sqlite:///{out_root / STATE_NAME}"


class StateStore:
    """The state database; tables are created on first use."""

    def __init__(self, url: str) -> None:
        try:
            self.engine: Engine = sa.create_engine(url, future=True)
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            metadata.create_all(self.engine)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise ConfigError(
                f"state store: cannot open it ({type(exc).__name__}); check `state.url`"
            ) from None

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic change."""
        with self.engine.begin() as conn:
            yield conn

    # --- remote audiences -----------------------------------------------------------------------

    def remote(self, destination: str, audience: str) -> Remote | None:
        """The remote id, schema and product set of an audience at a destination, if ever synced."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(remote).where(remote.c.destination == destination, remote.c.audience == audience)
            ).first()
        if row is None:
            return None
        return Remote(
            row.remote_id, tuple(json.loads(row.schema)), row.product_set_id, row.product_set_digest
        )

    def save_remote(self, destination: str, audience: str, value: Remote) -> None:
        """Remember (or update) an audience's remote id, schema and product set."""
        values = {
            "destination": destination,
            "audience": audience,
            "remote_id": value.remote_id,
            "schema": json.dumps(list(value.schema)),
            "product_set_id": value.product_set_id,
            "product_set_digest": value.product_set_digest,
            "updated_at": _now(),
        }
        with self.transaction() as conn:
            conn.execute(
                remote.delete().where(remote.c.destination == destination, remote.c.audience == audience)
            )
            conn.execute(remote.insert().values(**values))

    # --- members --------------------------------------------------------------------------------

    def held(self, destination: str, audience: str) -> dict[str, tuple[str, ...]]:
        """Digest -> row of every member the destination holds for the audience."""
        query = sa.select(members.c.digest, members.c.row).where(
            members.c.destination == destination, members.c.audience == audience
        )
        with self.engine.connect() as conn:
            return {digest: tuple(json.loads(row)) for digest, row in conn.execute(query)}

    def record_batch(
        self,
        run_id: int,
        destination: str,
        audience: str,
        operation: str,
        batch_digest: str,
        rows: Sequence[tuple[str, tuple[str, ...]]],
        received: int,
        invalid: int,
    ) -> None:
        """A confirmed batch: the ledger entry and the member change, in one transaction.

        ``rows`` are (digest, row) pairs; ``operation`` is add, remove or replace (replace is recorded
        per batch; the members are swapped by ``replace_members`` when the session ends).
        """
        with self.transaction() as conn:
            conn.execute(
                ledger.insert().values(
                    run=run_id,
                    destination=destination,
                    audience=audience,
                    operation=operation,
                    batch_digest=batch_digest,
                    rows=len(rows),
                    status="sent",
                    received=received,
                    invalid=invalid,
                    at=_now(),
                )
            )
            if operation == "add":
                _insert_members(conn, destination, audience, rows)
            elif operation == "remove":
                _delete_members(conn, destination, audience, [d for d, _ in rows])

    def replace_members(
        self, destination: str, audience: str, rows: Iterable[tuple[str, tuple[str, ...]]]
    ) -> None:
        """After a completed replace session: the destination holds exactly ``rows``."""
        with self.transaction() as conn:
            conn.execute(
                members.delete().where(members.c.destination == destination, members.c.audience == audience)
            )
            _insert_members(conn, destination, audience, list(rows))

    def sent_batches(self, destination: str, audience: str) -> set[tuple[str, str]]:
        """(operation, batch digest) of every confirmed batch for an audience at a destination."""
        query = sa.select(ledger.c.operation, ledger.c.batch_digest).where(
            ledger.c.destination == destination, ledger.c.audience == audience, ledger.c.status == "sent"
        )
        with self.engine.connect() as conn:
            return {(op, digest) for op, digest in conn.execute(query)}

    # --- runs -----------------------------------------------------------------------------------

    def start_run(self, command: str, run_dir: str) -> int:
        """A new run in the history; its id."""
        with self.transaction() as conn:
            result = conn.execute(
                runs.insert().values(command=command, run_dir=run_dir, started_at=_now(), counts="{}")
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def end_run(self, run_id: int, outcome: str, counts: dict[str, Any]) -> None:
        """Close a run with its outcome (ok, failed, dry-run) and counts (no personal data)."""
        with self.transaction() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(ended_at=_now(), outcome=outcome, counts=json.dumps(counts, sort_keys=True))
            )

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) | {"counts": json.loads(row.counts)} for row in conn.execute(query)]

    def record_prune(self, run_dirs: Iterable[str]) -> None:
        """Remember run folders deleted by retention."""
        with self.transaction() as conn:
            for run_dir in run_dirs:
                conn.execute(pruned.delete().where(pruned.c.run_dir == run_dir))
                conn.execute(pruned.insert().values(run_dir=run_dir, at=_now()))


def _insert_members(
    conn: Connection, destination: str, audience: str, rows: Sequence[tuple[str, tuple[str, ...]]]
) -> None:
    if not rows:
        return
    digests = [d for d, _ in rows]
    _delete_members(conn, destination, audience, digests)  # re-adding a held row is not an error
    conn.execute(
        members.insert(),
        [
            {"destination": destination, "audience": audience, "digest": d, "row": json.dumps(list(r))}
            for d, r in rows
        ],
    )


def _delete_members(conn: Connection, destination: str, audience: str, digests: Sequence[str]) -> None:
    for start in range(0, len(digests), 500):  # keep the IN list within every database's limits
        chunk = digests[start : start + 500]
        conn.execute(
            members.delete().where(
                members.c.destination == destination,
                members.c.audience == audience,
                members.c.digest.in_(chunk),
            )
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
