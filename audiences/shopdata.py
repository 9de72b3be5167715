"""The shop's tables made ready for selection: people and products as integer codes, times as numbers.

``prepare`` runs once per build; every audience then works on numpy arrays (a 10-million-line order
table is filtered and grouped without touching a string). People carry the flags every audience applies
first: ad consent, suppression, a usable identifier, and for prospects whether they are also customers.
Nothing here keeps a plaintext identifier outside the people frames the exports read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property, partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audiences.hashing import arrow_text
from audiences.load import HASH_COLUMNS, Tables, person_hashes, suppression_hashes
from audiences.threads import parallel

#: order statuses; anything else (pending, on hold, ...) neither qualifies nor excludes
COMPLETED, REFUNDED, CANCELLED = "completed", "refunded", "cancelled"
#: complaint statuses that count as closed; any other status is an open complaint
CLOSED_COMPLAINTS = frozenset({"closed", "resolved", "done"})
_NS_PER_DAY = 86_400 * 10**9


@dataclass
class Orders:
    """Order lines up to ``as_of`` as parallel arrays (row i of each is one line).

    Customer and order ids stay strings until a rule needs them: coding ten million ids is the costly
    part, and most rules keep a small share of the lines, so ``person_at``/``order_at`` code only the
    lines asked for; ``order`` numbers all of them once, when co-purchase statistics need every basket.
    """

    customer_id: pa.Array  # the raw customer id
    order_id: pa.Array  # the raw order id
    customer_ids: pa.Array  # the customers table's ids; a person code is a position in it
    product: np.ndarray  # int64 code into products, -1 when the product is not in the catalog
    product_id: pd.Series  # the raw product id (selectors by product_ids work without the catalog)
    time: np.ndarray  # int64 ns since the epoch, UTC
    completed: np.ndarray  # bool
    refunded: np.ndarray  # bool: refunded or cancelled
    amount: np.ndarray  # float64 quantity x unit price
    unit_price: np.ndarray  # float64

    def person_at(self, rows: np.ndarray) -> np.ndarray:
        """Person codes of the lines at positions ``rows`` (-1: customer not in the customers table)."""
        return _positions(self.customer_id.take(pa.array(rows, type=pa.int64())), self.customer_ids)

    def order_at(self, rows: np.ndarray) -> np.ndarray:
        """Order codes of the lines at ``rows``; equal codes mean the same order (within this call only)."""
        return _indices(pc.dictionary_encode(self.order_id.take(pa.array(rows, type=pa.int64()))))

    @cached_property
    def order(self) -> np.ndarray:
        """Order code of every line."""
        return _indices(pc.dictionary_encode(self.order_id))


@dataclass(frozen=True)
class People:
    """Customers or prospects: the frame the exports read, plus per-person flags (aligned arrays)."""

    kind: str  # "purchasers" (customers) or "prospects"
    frame: pd.DataFrame  # identifier and consent columns, one row per person, RangeIndex = code
    ids: pd.Index  # customer_id / prospect_id by code
    id_array: pa.Array  # the same ids as one Arrow array (for lookups)
    ads_ok: np.ndarray
    suppressed: np.ndarray
    has_identifier: np.ndarray  # a valid e-mail or phone (Meta normalization)
    hashes: pd.DataFrame  # email_sha256, phone_sha256 (Meta normalization; "" where none)
    is_customer: np.ndarray  # prospects only: an e-mail or phone hash shared with a customer


@dataclass(frozen=True)
class ShopData:
    """Everything selection and pairing read, for one ``as_of``."""

    as_of: datetime
    as_of_ns: int
    products: pd.DataFrame
    customers: People | None
    prospects: People | None
    orders: Orders | None
    views: pd.DataFrame | None  # person (prospect code), product (code), product_id, time (ns)
    complaints: pd.DataFrame | None  # customer_id, time (opened, ns), open (bool); up to as_of
    latest_score: pd.Series | None  # per customer_id with a survey up to as_of: the latest score

    def days_ago(self, days: int) -> int:
        """The instant ``days`` days before ``as_of``, in ns."""
        return self.as_of_ns - days * _NS_PER_DAY


@dataclass(frozen=True)
class Persons:
    """Customers and prospects with their flags; the slow part (hashing for suppression), done once."""

    customers: People | None
    prospects: People | None


def prepare_people(tables: Tables, default_country: str | None) -> Persons:
    """Hash everyone's e-mail and phone once, to match suppression entries and customers to prospects."""
    suppressed = suppression_hashes(tables, default_country)
    customers = _people("purchasers", tables.customers, "customer_id", suppressed, default_country)
    prospects = _people("prospects", tables.prospects, "prospect_id", suppressed, default_country)
    if customers is not None and prospects is not None:
        known = pc.unique(pa.concat_arrays([arrow_text(customers.hashes[c]) for c in HASH_COLUMNS]))
        shared = np.zeros(len(prospects.ids), dtype=bool)
        for column in HASH_COLUMNS:
            values = prospects.hashes[column]
            shared |= (values != "").to_numpy() & _isin(values, known)
        prospects = replace(prospects, is_customer=shared)
    return Persons(customers, prospects)


def prepare(
    tables: Tables,
    products: pd.DataFrame,
    as_of: datetime,
    default_country: str | None,
    persons: Persons | None = None,
) -> ShopData:
    """Code people, products and orders once; drop events after ``as_of`` (the run looks back from it)."""
    as_of_ns = pd.Timestamp(as_of).tz_convert("UTC").value
    product_ids = arrow_text(products["id"])
    persons = persons or prepare_people(tables, default_country)
    customers, prospects = persons.customers, persons.prospects
    customer_ids = customers.id_array if customers is not None else pa.array([], pa.string())
    jobs: dict[str, Callable[[], Any]] = {}
    if tables.orders is not None:
        jobs["orders"] = partial(_orders, tables.orders, customer_ids, product_ids, as_of_ns)
    if tables.views is not None and prospects is not None:
        jobs["views"] = partial(_views, tables.views, prospects.id_array, product_ids, as_of_ns)
    if tables.complaints is not None and customers is not None:
        jobs["complaints"] = partial(_complaints, tables.complaints, as_of_ns)
    if tables.satisfaction is not None and customers is not None:
        jobs["latest_score"] = partial(_latest_scores, tables.satisfaction, as_of_ns)
    done = parallel(jobs)
    return ShopData(
        as_of=as_of,
        as_of_ns=as_of_ns,
        products=products,
        customers=customers,
        prospects=prospects,
        orders=done.get("orders"),
        views=done.get("views"),
        complaints=done.get("complaints"),
        latest_score=done.get("latest_score"),
    )


def _views(v: pd.DataFrame, prospect_ids: pa.Array, product_ids: pa.Array, as_of_ns: int) -> pd.DataFrame:
    time = _ns(v["viewed_at"])
    keep = time <= as_of_ns
    return pd.DataFrame(
        {
            "person": _positions(arrow_text(v["prospect_id"]), prospect_ids)[keep],
            "product": _positions(arrow_text(v["product_id"]), product_ids)[keep],
            "product_id": v["product_id"].to_numpy()[keep],
            "time": time[keep],
        }
    )


def _complaints(c: pd.DataFrame, as_of_ns: int) -> pd.DataFrame:
    time = _ns(c["opened_at"])
    keep = time <= as_of_ns
    return pd.DataFrame(
        {
            "customer_id": c["customer_id"].to_numpy()[keep],
            "time": time[keep],
            "open": ~c["status"].isin(CLOSED_COMPLAINTS).to_numpy()[keep],
        }
    )


def _latest_scores(s: pd.DataFrame, as_of_ns: int) -> pd.Series:
    """Per customer id, the score of the latest survey up to as-of."""
    frame = pd.DataFrame(
        {"customer_id": s["customer_id"], "time": _ns(s["surveyed_at"]), "score": s["score"]}
    )
    frame = frame[frame["time"] <= as_of_ns].sort_values("time", kind="stable")
    return frame.drop_duplicates("customer_id", keep="last").set_index("customer_id")["score"]


def among(codes: np.ndarray, chosen: np.ndarray, size: int) -> np.ndarray:
    """True where ``codes`` (person or product codes, -1 for unknown) is one of ``chosen``.

    A lookup table of ``size`` flags: one pass over ``codes``, where ``np.isin`` would sort both.
    """
    flags = np.zeros(size + 1, dtype=bool)  # the extra last slot is where -1 lands; it stays False
    flags[chosen[chosen >= 0]] = True
    return flags[codes]


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values: a sort and a neighbour test, far faster than ``np.unique`` (hash-based in
    numpy 2.4) on millions of integers."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _people(
    kind: str, frame: pd.DataFrame | None, id_column: str, suppressed: pd.Index, default_country: str | None
) -> People | None:
    if frame is None:
        return None
    frame = frame.drop_duplicates(id_column, keep="first").reset_index(drop=True)
    hashes = person_hashes(frame, default_country)
    suppressed_set = arrow_text(suppressed.to_series())
    hit = np.zeros(len(frame), dtype=bool)
    has = np.zeros(len(frame), dtype=bool)
    for column in HASH_COLUMNS:
        values = hashes[column]
        present = (values != "").to_numpy()
        has |= present
        hit |= present & _isin(values, suppressed_set)
    return People(
        kind=kind,
        frame=frame,
        ids=pd.Index(frame[id_column]),
        id_array=arrow_text(frame[id_column]),
        ads_ok=frame["ads_ok"].to_numpy(dtype=bool),
        suppressed=hit,
        has_identifier=has,
        hashes=hashes,
        is_customer=np.zeros(len(frame), dtype=bool),
    )


def _orders(frame: pd.DataFrame, customer_ids: pa.Array, product_ids: pa.Array, as_of_ns: int) -> Orders:
    """Arrays of every line; a line after ``as_of`` is neither completed nor refunded, so no rule sees it
    (cheaper than copying ten million rows to drop a few)."""
    time = _ns(frame["ordered_at"])
    known = time <= as_of_ns
    status = _arrow(frame["status"])
    product_id = _arrow(frame["product_id"])
    quantity = frame["quantity"].to_numpy(dtype="float64")
    unit_price = frame["unit_price"].to_numpy(dtype="float64")
    return Orders(
        customer_id=_arrow(frame["customer_id"]),
        order_id=_arrow(frame["order_id"]),
        customer_ids=customer_ids,
        product=_positions(product_id, product_ids),
        product_id=frame["product_id"].reset_index(drop=True),
        time=time,
        completed=_flag(pc.equal(status, COMPLETED)) & known,
        refunded=_flag(pc.is_in(status, value_set=pa.array([REFUNDED, CANCELLED]))) & known,
        amount=quantity * unit_price,
        unit_price=unit_price,
    )


def _positions(values: pa.Array, ids: pa.Array) -> np.ndarray:
    """Position of each value in ``ids`` (unique), -1 where absent; hashed in Arrow, not in Python.

    Arrow builds a hash table of the value set on every call, which costs more per element than a
    lookup; so when ``values`` is the shorter side, the table is built from its distinct values instead
    and ``ids`` is looked up in it.
    """
    if len(values) >= len(ids):
        found = pc.index_in(values, value_set=ids.cast(values.type))
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
    where = pc.index_in(ids, value_set=encoded.dictionary.cast(ids.type))
    valid = where.is_valid().to_numpy(zero_copy_only=False)
    code_of = np.full(len(encoded.dictionary), -1, dtype=np.int64)
    code_of[where.to_numpy(zero_copy_only=False)[valid].astype(np.int64)] = np.flatnonzero(valid)
    return (
        code_of[encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
        if len(values)
        else np.zeros(0, dtype=np.int64)
    )


def _arrow(values: pd.Series) -> pa.Array:
    """The column as one Arrow array in the type pandas holds it (no cast: a copy of ten million strings)."""
    array = pa.array(values)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _indices(encoded: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _flag(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False).astype(bool)


def _isin(values: pd.Series, known: pa.Array) -> np.ndarray:
    """``values.isin(known)`` hashed in Arrow (pandas turns every value of ``known`` into a Python str)."""
    return _flag(pc.is_in(arrow_text(values), value_set=known))


def _ns(values: pd.Series) -> np.ndarray:
    """Tz-aware timestamps as int64 ns since the epoch (UTC)."""
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[ns]").view(np.int64)
