"""Small hand-built shops for selection and pairing tests: a catalog frame and typed tables, in memory.

``Shop`` collects rows the way the source files would hold them (every value a string) and types them
with ``audiences.load.type_table``, so the frames are what ``load_tables`` gives; ``catalog`` builds a
products frame shaped like ``load_products`` output. Times are given in days before ``AS_OF``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pandas as pd

from audiences.load import CONSENT_FLAGS, SPECS, Tables, consent_flags, type_table
from audiences.rules import Audience
from audiences.select import REASONS, Members, Selection, select
from audiences.shopdata import ShopData, prepare
from feedgen.sources import ROW

AS_OF = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
COUNTRY = "US"
TABLES = ("customers", "orders", "satisfaction", "complaints", "prospects", "views", "suppression")
#: the raw consent columns ``load_tables`` reads into ``CONSENT_FLAGS`` (the demo config's names)
CONSENT_COLUMNS = ("ads_consent", "ad_user_data", "ad_personalization")


def at(days: float) -> str:
    """ISO time ``days`` days before ``AS_OF`` (negative: after it)."""
    return (AS_OF - timedelta(days=days)).isoformat()


def person(
    id_column: str,
    id: str,
    *,
    email: str | None = None,
    phone: str = "",
    country: str = COUNTRY,
    consent: str = "yes",
) -> dict[str, str]:
    """A customer or prospect row: by default the e-mail ``<id>@example.com``, no phone, and "yes" in
    every consent column."""
    email = f"{id.lower()}@example.com" if email is None else email
    row = {id_column: id, "email": email, "phone": phone, "country": country}
    return row | dict.fromkeys(CONSENT_COLUMNS, consent)


def product(
    id: str,
    line: str,
    tier: int | None,
    price: float,
    *,
    category: str | None = None,
    available: bool = True,
    in_feeds: bool = True,
    brand: str = "Acme",
    **labels: str,
) -> dict[str, Any]:
    """One catalog row; the category defaults to the line."""
    return {
        "id": id,
        "title": f"Product {id}",
        "line": line,
        "tier": tier,
        "category": line if category is None else category,
        "brand": brand,
        "price": price,
        "available": available,
        "in_feeds": in_feeds,
        **labels,
    }


def catalog(*rows: dict[str, Any]) -> pd.DataFrame:
    """A products frame typed like ``load_products`` output."""
    frame = pd.DataFrame(list(rows))
    frame["tier"] = frame["tier"].astype("Int64")
    frame["price"] = frame["price"].astype("float64")
    frame["available"] = frame["available"].astype(bool)
    frame["in_feeds"] = frame["in_feeds"].astype(bool)
    for column in ["id", "title", "line", "category", "brand"] + [
        c for c in frame.columns if c.startswith("custom_label_")
    ]:
        frame[column] = frame[column].fillna("").astype("str")
    return frame


def typed(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` as the source would give them (strings, "" for missing), typed by ``type_table``."""
    columns = list(SPECS[name].columns)
    if name in ("customers", "prospects"):
        columns += [c for c in CONSENT_COLUMNS if c not in columns]
    raw = pd.DataFrame(
        {
            ROW: pd.Series(range(1, len(rows) + 1), dtype="int64"),
            **{c: pd.Series([str(r.get(c, "")) for r in rows], dtype="str") for c in columns},
        }
    )
    frame, problems = type_table(name, raw)
    assert problems.empty, problems  # a hand-built shop has no bad rows
    if name in ("customers", "prospects"):
        for flag, column in zip(CONSENT_FLAGS, CONSENT_COLUMNS, strict=True):
            frame[flag] = consent_flags(frame[column])
    return frame


@dataclass
class Shop:
    """Rows of each table; ``tables()`` types them. Orders get ids O1, O2, ... unless given one."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    satisfaction: list[dict[str, Any]] = field(default_factory=list)
    complaints: list[dict[str, Any]] = field(default_factory=list)
    prospects: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    suppression: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def customer(self, id: str, **identity: str) -> str:
        """A customer; see ``person`` for the defaults."""
        self.customers.append(person("customer_id", id, **identity))
        return id

    def prospect(self, id: str, **identity: str) -> str:
        self.prospects.append(person("prospect_id", id, **identity))
        return id

    def order(
        self,
        customer: str,
        *lines: tuple[str, float] | tuple[str, float, int],
        days: float = 10,
        status: str = "completed",
        order_id: str | None = None,
    ) -> str:
        """One order of ``(product_id, unit_price[, quantity])`` lines, ``days`` before ``AS_OF``."""
        order_id = order_id or f"O{next(self._ids)}"
        for line in lines:
            product_id, price, quantity = (*line, 1)[:3]
            self.orders.append(
                {
                    "order_id": order_id,
                    "customer_id": customer,
                    "ordered_at": at(days),
                    "status": status,
                    "product_id": product_id,
                    "quantity": quantity,
                    "unit_price": price,
                    "currency": "USD",
                }
            )
        return order_id

    def view(self, prospect: str, product_id: str, *, days: float = 5) -> None:
        self.views.append({"prospect_id": prospect, "product_id": product_id, "viewed_at": at(days)})

    def complaint(self, customer: str, *, days: float, status: str) -> None:
        self.complaints.append({"customer_id": customer, "opened_at": at(days), "status": status})

    def score(self, customer: str, score: float, *, days: float) -> None:
        self.satisfaction.append({"customer_id": customer, "score": score, "surveyed_at": at(days)})

    def suppress(self, **identifiers: str) -> None:
        """A suppression entry: any of email, phone, email_sha256, phone_sha256."""
        self.suppression.append(identifiers)

    def tables(self) -> Tables:
        """Typed frames; a table with no rows is left out (None), like a section the config lacks,
        except customers and orders, which every purchaser audience reads."""
        frames: dict[str, Any] = {}
        for name in TABLES:
            rows = getattr(self, name)
            if rows or name in ("customers", "orders"):
                frames[name] = typed(name, rows)
        return Tables(**frames)

    def data(self, products: pd.DataFrame, as_of: datetime = AS_OF) -> ShopData:
        return prepare(self.tables(), products, as_of, COUNTRY)


def audience(**spec: Any) -> Audience:
    """An audience from a dict like the rules file's, with a name and destination filled in."""
    return Audience.model_validate({"name": "test", "destinations": ["meta"]} | spec)


def run(data: ShopData, spec: Audience, built: dict[str, Members] | None = None) -> Selection:
    """``select`` that also checks the counts add up (every selection of every test)."""
    selection = select(data, spec, built or {})
    check_counts(selection)
    return selection


def check_counts(selection: Selection) -> None:
    """Every candidate is a member or has one known reason: candidates == members + sum(excluded)."""
    counts = selection.counts()
    excluded = cast(dict[str, int], counts["excluded"])
    candidates = len(selection.candidates) + sum(selection.unmatched.values())
    members = len(selection.members)
    assert counts["candidates"] == candidates == members + sum(excluded.values())
    assert counts["members"] == members
    assert set(selection.reason.tolist()) <= {"", *REASONS}
    assert len(selection.reason) == len(selection.candidates) == len(selection.anchor)


def reasons(selection: Selection) -> dict[str, str]:
    """Candidate id -> its exclusion reason ("" for a member)."""
    ids = selection.people.ids[selection.candidates]
    return dict(zip(ids, selection.reason.tolist(), strict=True))


def member_ids(selection: Selection) -> list[str]:
    return sorted(selection.people.ids[selection.members])
