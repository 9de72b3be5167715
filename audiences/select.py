"""Who is in an audience: the people its rule selects (candidates), less those excluded, with a reason each.

Every candidate ends as a member or with exactly one exclusion reason, the first that applies in
``REASONS`` order, so ``candidates == members + sum(excluded)`` always holds. Consent and suppression
come first: whatever else is true of a person, a missing consent or a suppression entry is what the
manifest reports. Pairing adds the last reason (``no_products``) when it finds nothing to show someone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audiences.products import matches
from audiences.rules import Audience, Selector
from audiences.shopdata import People, ShopData, among, distinct
from audiences.threads import parallel

NO_CONSENT = "no_consent"
SUPPRESSED = "suppressed"
#: the order in which reasons are checked; the first that applies is the one recorded
REASONS = (
    NO_CONSENT,
    SUPPRESSED,
    "already_customer",  # prospects: e-mail or phone of a customer (purchasers and prospects never mix)
    "refunded",
    "complaint",
    "low_satisfaction",
    "already_purchased",
    "in_excluded_audience",
    "no_identifier",  # no valid e-mail or phone: nothing a platform could match
    "no_products",  # pairing found nothing this person should see
)
#: candidates found in the orders whose customer id is not in the customers table (counted, not people)
UNKNOWN_CUSTOMER = "unknown_customer"


@dataclass(frozen=True)
class Members:
    """The members of an audience already built, for ``exclude.audiences``."""

    kind: str
    codes: np.ndarray
    hashes: frozenset[str]


@dataclass
class Selection:
    """One audience's candidates (person codes, ascending) and the reason each is left out ("" = member)."""

    audience: Audience
    people: People
    candidates: np.ndarray
    reason: np.ndarray
    #: per candidate: the product (code) of the qualifying purchase or view the pairing starts from
    anchor: np.ndarray
    #: excluded candidates that are not people of the table (orders of unknown customers), by reason
    unmatched: dict[str, int] = field(default_factory=dict)
    #: person codes found by reason while selecting (applied in ``REASONS`` order afterwards)
    excluding: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def members(self) -> np.ndarray:
        """Codes of the people in the audience."""
        return self.candidates[self.reason == ""]

    def exclude(self, codes: np.ndarray, reason: str) -> None:
        """Give ``reason`` to those of ``codes`` that are still members."""
        hit = among(self.candidates, codes, len(self.people.ids)) & (self.reason == "")
        self.reason[hit] = reason

    def excluded(self) -> dict[str, int]:
        """Excluded candidates by reason, in ``REASONS`` order (only reasons that occur)."""
        counts = pd.Series(self.reason[self.reason != ""]).value_counts()
        out = {r: int(counts[r]) for r in REASONS if r in counts.index}
        return out | {r: n for r, n in self.unmatched.items() if n}

    def counts(self) -> dict[str, object]:
        """Candidates, members and excluded by reason; candidates == members + sum(excluded)."""
        excluded = self.excluded()
        members = int((self.reason == "").sum())
        return {"candidates": members + sum(excluded.values()), "members": members, "excluded": excluded}


def select(data: ShopData, audience: Audience, built: Mapping[str, Members]) -> Selection:
    """Candidates and exclusions of ``audience``; ``built`` holds the audiences it may exclude."""
    selection = _purchasers(data, audience) if audience.who == "purchasers" else _prospects(data, audience)
    people = selection.people
    codes = selection.candidates
    selection.reason[~people.ads_ok[codes]] = NO_CONSENT
    selection.exclude(codes[people.suppressed[codes]], SUPPRESSED)
    selection.exclude(codes[people.is_customer[codes]], "already_customer")
    if audience.who == "purchasers":
        _purchaser_exclusions(data, audience, selection)
    for name in audience.exclude.audiences:
        other = built[name]
        hit = np.zeros(len(codes), dtype=bool)
        if other.kind == people.kind:
            hit |= np.isin(codes, other.codes)
        for column in people.hashes.columns:
            values = people.hashes[column].to_numpy()[codes]
            hit |= (values != "") & np.isin(values, list(other.hashes))
        selection.exclude(codes[hit], "in_excluded_audience")
    selection.exclude(codes[~people.has_identifier[codes]], "no_identifier")
    return selection


def members_of(selection: Selection) -> Members:
    """What another audience's ``exclude.audiences`` needs of this one."""
    codes = selection.members
    hashes = selection.people.hashes.iloc[codes]
    values = pd.concat([hashes[c] for c in hashes.columns])
    return Members(selection.people.kind, codes, frozenset(values[values != ""]))


def product_mask(
    data: ShopData, product: np.ndarray, product_id: pd.Series, selector: Selector
) -> np.ndarray:
    """True for each event (order line or view) whose product meets ``selector``.

    A selector of ``product_ids`` alone matches by id, so it works for products no longer in the catalog;
    any other condition needs the product's catalog attributes.
    """
    conditions = selector.conditions()
    if set(conditions) == {"product_ids"}:
        return product_id.isin(selector.product_ids or []).to_numpy(dtype=bool)
    matched = matches(data.products, selector).to_numpy(dtype=bool)
    return np.append(matched, False)[product]  # product -1 (not in the catalog) lands on the False


def _purchasers(data: ShopData, audience: Audience) -> Selection:
    rule, orders, people = audience.purchased, data.orders, data.customers
    assert rule is not None and orders is not None and people is not None  # the config guarantees them
    mask = orders.completed & (orders.time >= data.days_ago(rule.within_days))
    mask &= product_mask(data, orders.product, orders.product_id, rule)
    rows = np.flatnonzero(mask)
    # code the qualifying lines and the lines that exclude at once, on every core
    jobs: dict[str, Callable[[], np.ndarray]] = {"person": partial(orders.person_at, rows)}
    if rule.min_orders > 1:  # distinct orders matter only then; numbering them is not free
        jobs["order"] = partial(orders.order_at, rows)
    exclude = audience.exclude
    if exclude.refunded_within_days is not None:
        hit = orders.refunded & (orders.time >= data.days_ago(exclude.refunded_within_days))
        jobs["refunded"] = partial(orders.person_at, np.flatnonzero(hit))
    if exclude.purchased is not None:
        hit = orders.completed & product_mask(data, orders.product, orders.product_id, exclude.purchased)
        jobs["already_purchased"] = partial(orders.person_at, np.flatnonzero(hit))
    coded = parallel(jobs)
    person = coded.pop("person")
    order = coded.pop("order") if "order" in coded else np.zeros(len(rows), dtype=np.int64)
    known = person >= 0
    unknown = 0
    if not known.all():  # counted per distinct unknown customer id; they cannot be exported (no contact)
        strangers = rows[~known]
        ids = orders.customer_id.take(pa.array(strangers)).to_pandas()
        frame = pd.DataFrame({"id": ids.to_numpy(), "order": order[~known]})
        frame["amount"] = orders.amount[strangers]
        unknown = _unknown_qualifiers(frame, rule.min_orders, rule.min_spend)
    rows, person, order = rows[known], person[known], order[known]
    size = len(people.ids)
    spend = np.bincount(person, weights=orders.amount[rows], minlength=size)
    pairs = distinct(person * (int(order.max()) + 1 if len(order) else 1) + order)
    count = np.bincount(pairs // (int(order.max()) + 1 if len(order) else 1), minlength=size)
    codes = np.flatnonzero((count >= rule.min_orders) & (count > 0) & (spend >= rule.min_spend - 1e-9))
    last = np.lexsort((orders.time[rows], person))  # by person, then time: each person's last line is last
    ends = np.r_[person[last][1:] != person[last][:-1], True] if len(last) else np.zeros(0, dtype=bool)
    anchor_of = np.full(size, -1, dtype=np.int64)
    anchor_of[person[last][ends]] = orders.product[rows][last][ends]
    latest = anchor_of
    return Selection(
        audience=audience,
        people=people,
        candidates=codes,
        reason=np.full(len(codes), "", dtype=object),
        anchor=latest[codes],
        unmatched={UNKNOWN_CUSTOMER: unknown},
        excluding=coded,
    )


def _unknown_qualifiers(frame: pd.DataFrame, min_orders: int, min_spend: float) -> int:
    """How many distinct unknown customer ids (``frame``: id, order, amount) would qualify."""
    per = frame.groupby("id").agg(spend=("amount", "sum"), orders=("order", "nunique"))
    return int(((per["orders"] >= min_orders) & (per["spend"] >= min_spend - 1e-9)).sum())


def _prospects(data: ShopData, audience: Audience) -> Selection:
    people = data.prospects
    assert people is not None
    rule = audience.viewed
    if rule is None:  # everyone who signed up, anchored nowhere (no pairing needs an anchor)
        codes = np.arange(len(people.ids), dtype=np.int64)
        anchor = np.full(len(codes), -1, dtype=np.int64)
    else:
        views = data.views
        assert views is not None
        mask = (views["time"].to_numpy() >= data.days_ago(rule.within_days)) & (
            views["person"].to_numpy() >= 0
        )
        mask &= product_mask(data, views["product"].to_numpy(), views["product_id"], rule)
        seen = views[mask].sort_values("time", kind="stable").groupby("person")["product"].last()
        codes = seen.index.to_numpy(dtype=np.int64)
        anchor = seen.to_numpy(dtype=np.int64)
    return Selection(
        audience=audience,
        people=people,
        candidates=codes,
        reason=np.full(len(codes), "", dtype=object),
        anchor=anchor,
    )


def _purchaser_exclusions(data: ShopData, audience: Audience, selection: Selection) -> None:
    rule, orders = audience.exclude, data.orders
    assert orders is not None
    if "refunded" in selection.excluding:
        selection.exclude(selection.excluding["refunded"], "refunded")
    if rule.complaint_within_days is not None and data.complaints is not None:
        c = data.complaints
        recent = (c["time"] >= data.days_ago(rule.complaint_within_days)) | c["open"]
        _exclude_ids(selection, c.loc[recent, "customer_id"], "complaint")
    if rule.satisfaction_below is not None and data.latest_score is not None:
        low = data.latest_score[data.latest_score < rule.satisfaction_below]
        _exclude_ids(selection, low.index.to_series(), "low_satisfaction")
    if "already_purchased" in selection.excluding:
        selection.exclude(selection.excluding["already_purchased"], "already_purchased")


def _exclude_ids(selection: Selection, ids: pd.Series, reason: str) -> None:
    """Exclude the candidates whose id is among ``ids`` (matched in Arrow against the candidates only)."""
    codes = selection.candidates
    if not len(codes) or not len(ids):
        return
    mine = selection.people.id_array.take(pa.array(codes))
    hit = pc.is_in(mine, value_set=pa.array(ids.to_numpy(dtype=object), type=mine.type))
    selection.exclude(codes[pc.fill_null(hit, False).to_numpy(zero_copy_only=False)], reason)
