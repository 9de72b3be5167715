"""What each audience is shown next: upsell, cross-sell or downsell product sets with a reason per product.

Every member starts from one *anchor*: the product of their most recent qualifying purchase (or view, for
prospects), because the best moment is soon after it. Members whose anchors call for different sets (a
different line or tier bought, a different price paid) go to sub-audiences ``<audience>--<key>``, each
with one set that keeps every guardrail for every member in it:

- upsell: same line, a higher tier than the highest the member bought in it, at most
  ``(1 + max_price_increase)`` x the highest price they paid in it, available, in the feeds;
- cross-sell: a product of a line or category that ``related`` maps the anchor's line or category to,
  or of a line bought together with the anchor's line (co-purchase support, confidence and lift over
  completed orders, between product lines), never of the anchor's own line or category;
- downsell: same line as viewed, at least ``min_price_decrease`` cheaper than the cheapest product of it the
  person viewed in the window.

Prices are list prices in the shop currency (a sale only makes an offer better). Products are ranked by how
many members they serve (members who do not own it yet), then by lift or tier distance, then price and id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from audiences.products import group_key, label_columns
from audiences.rules import SUB_AUDIENCE_SEPARATOR, CoPurchase, Pairing
from audiences.select import Selection
from audiences.shopdata import ShopData, among, distinct

NO_PRODUCTS = "no_products"
_EPS = 1e-9


@dataclass
class Offer:
    """One (sub-)audience and the products it is shown."""

    name: str
    parent: str
    key: str  # "" when the audience is not split
    strategy: str | None
    members: np.ndarray  # person codes
    #: ranked: id, title, line, tier, category, price, served, reason (at most max_products rows)
    products: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def product_ids(self) -> list[str]:
        """The set's catalog ids, best first."""
        return [] if self.products.empty else self.products["id"].tolist()

    def meta_filter(self) -> dict[str, object]:
        """Meta's product-set filter for exactly these products."""
        return {"or": [{"retailer_id": {"eq": pid}} for pid in self.product_ids]}

    def google_labels(self) -> dict[str, str | list[str]]:
        """Per feed custom label, the value the set's products share, or the sorted values they have."""
        out: dict[str, str | list[str]] = {}
        for label in label_columns(self.products):
            values = sorted(set(self.products[label]) - {""})
            if values:
                out[label] = values[0] if len(values) == 1 else values
        return out


@dataclass(frozen=True)
class CoPurchaseRule:
    """ "Orders with a product of ``antecedent`` also hold one of ``consequent``" (between product lines)."""

    antecedent: str
    consequent: str
    orders_both: int
    support: float
    confidence: float
    lift: float


def pair(data: ShopData, selection: Selection, minimum: int = 0) -> list[Offer]:
    """The offers (sub-audiences with product sets) of one audience; members with nothing to be shown
    get the reason ``no_products`` in ``selection``.

    A sub-audience smaller than ``minimum`` joins a larger one of the same line whose whole candidate list
    keeps its members' guardrails too (a downsell floor or an upsell cap that is looser), so fewer sets
    fall below a platform's minimum without bending any rule.
    """
    audience = selection.audience
    pairing = audience.pairing
    keep = selection.reason == ""
    members, anchors = selection.candidates[keep], selection.anchor[keep]
    if pairing is None:
        return [Offer(audience.name, audience.name, "", None, members)]
    if pairing.strategy == "upsell":
        groups = _finish(
            data, _merge_small(_upsell(data, members, anchors, pairing), minimum), _upsell_reason
        )
    elif pairing.strategy == "cross_sell":
        groups = _cross_sell(data, members, anchors, pairing)
    else:
        window = audience.viewed.within_days if audience.viewed else None
        since = data.days_ago(window) if window else None
        found = _downsell(data, members, anchors, pairing, since)
        groups = _finish(data, _merge_small(found, minimum), _downsell_reason)
    offers: list[Offer] = []
    served = np.zeros(0, dtype=np.int64)
    for key, codes, products in groups:
        if products.empty:
            continue
        offers.append(
            Offer("", audience.name, key, pairing.strategy, codes, products.head(pairing.max_products))
        )
        served = np.concatenate([served, codes])
    selection.exclude(np.setdiff1d(members, served), NO_PRODUCTS)
    _name(offers, audience.name)
    return offers


def _name(offers: list[Offer], parent: str) -> None:
    """One offer keeps the audience's name; several become ``<parent>--<key>`` (unique, slugs)."""
    if len(offers) == 1:
        offers[0].name = parent
        return
    used: dict[str, int] = {}
    for offer in offers:
        base = slug(offer.key)
        used[base] = used.get(base, 0) + 1
        suffix = f"-{used[base]}" if used[base] > 1 else ""
        offer.name = f"{parent}{SUB_AUDIENCE_SEPARATOR}{base}{suffix}"


def slug(text: str) -> str:
    """A file-name-safe key: lowercase letters, digits and single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "other"


def _product_frame(data: ShopData, codes: np.ndarray) -> pd.DataFrame:
    columns = ["id", "title", "line", "tier", "category", "price", *label_columns(data.products)]
    return data.products.iloc[codes][columns].reset_index(drop=True).assign(_code=codes)


def _offerable(data: ShopData) -> np.ndarray:
    p = data.products
    return (p["available"] & p["in_feeds"] & p["price"].notna()).to_numpy(dtype=bool)


def _owned(data: ShopData, people: np.ndarray, products: np.ndarray) -> pd.DataFrame:
    """Distinct (person, product) pairs of the given people and products (completed lines up to as-of)."""
    o = data.orders
    assert o is not None
    rows = np.flatnonzero(o.completed & among(o.product, products, len(data.products)))
    person = o.person_at(rows)
    mine = among(person, people, _customer_count(data))
    return pd.DataFrame({"person": person[mine], "product": o.product[rows][mine]}).drop_duplicates()


def _customer_count(data: ShopData) -> int:
    return len(data.customers.ids) if data.customers is not None else 0


def _served(owned: pd.DataFrame, codes: np.ndarray, products: pd.DataFrame) -> pd.Series:
    """Per product row: members among ``codes`` who do not own it yet."""
    mine = owned[np.isin(owned["person"].to_numpy(), codes)]
    owners = mine.groupby("product").size()
    return len(codes) - products["_code"].map(owners).fillna(0).astype("int64")


@dataclass
class _Group:
    """Members who share one candidate list (ranked product codes) and the reference for the reasons."""

    line: str
    level: int  # upsell: highest tier bought; downsell: tier of the cheapest viewed (-1 when none)
    members: list[np.ndarray]
    codes: tuple[int, ...]
    #: upsell: the members' "highest price paid"; downsell: their floors (cheapest viewed)
    references: set[float] = field(default_factory=set)
    levels: set[int] = field(default_factory=set)

    @property
    def reference(self) -> float:
        """The lowest reference, so a reason's percentage holds for every member."""
        return min(self.references)

    def join(self, members: list[np.ndarray], references: set[float], levels: set[int]) -> None:
        """Take in more members (of the same candidate list) with their references and tiers."""
        self.members += members
        self.references |= references
        self.levels |= levels

    def tiers(self) -> str:
        """The members' tier (upsell: bought; downsell: viewed) in words: "1", "1-2" or "" when none."""
        known = sorted(t for t in self.levels | {self.level} if t >= 0)
        if not known:
            return ""
        return str(known[0]) if known[0] == known[-1] else f"{known[0]}-{known[-1]}"

    def name(self) -> str:
        """The sub-audience key: the line, and the tier(s) when known."""
        return f"{self.line}-t{self.tiers()}" if self.tiers() else self.line


def _merge_small(groups: list[_Group], minimum: int) -> list[_Group]:
    """Move each group under ``minimum`` members into the largest group of its line whose candidates all
    keep its guardrails (its candidate list is a subset of the small group's)."""
    groups = [g for g in groups if g.codes]
    while True:
        small = sorted((g for g in groups if _size(g) < minimum), key=_size)
        moved = False
        for group in small:
            allowed = set(group.codes)
            hosts = [h for h in groups if h is not group and h.line == group.line and set(h.codes) <= allowed]
            if hosts:
                host = max(hosts, key=_size)
                host.join(group.members, group.references, group.levels | {group.level})
                groups.remove(group)
                moved = True
                break
        if not moved:
            return groups


def _groups(frame: pd.DataFrame, by: list[str]) -> Iterator[tuple[tuple[Any, ...], np.ndarray]]:
    """(key values, index labels) of each group of ``frame`` by the ``by`` columns."""
    for key, labels in frame.groupby(by).groups.items():
        yield cast(tuple[Any, ...], key), np.asarray(labels, dtype=np.int64)


def _size(group: _Group) -> int:
    return sum(len(m) for m in group.members)


def _finish(
    data: ShopData, groups: list[_Group], reason: Callable[[_Group, pd.DataFrame], list[str]]
) -> list[tuple[str, np.ndarray, pd.DataFrame]]:
    out = []
    for group in groups:
        frame = _product_frame(data, np.asarray(group.codes, dtype=np.int64))
        who = np.sort(np.concatenate(group.members))
        frame["served"] = len(who)
        frame["reason"] = reason(group, frame)
        out.append((group.name(), who, frame))
    return out


# --- upsell -------------------------------------------------------------------------------------------


def _upsell(data: ShopData, members: np.ndarray, anchors: np.ndarray, pairing: Pairing) -> list[_Group]:
    """Members by (anchor line, highest tier bought in it, highest price paid in it)."""
    p = data.products
    line = p["line"].to_numpy(dtype=object)
    tier = p["tier"].to_numpy(dtype="float64", na_value=np.nan)
    known = anchors >= 0
    anchor_line = np.full(len(members), "", dtype=object)
    anchor_line[known] = line[anchors[known]]
    owned_lines = _owned_lines(data, members, anchors)
    per = pd.DataFrame({"person": members, "line": anchor_line})
    per = per[per["line"] != ""]
    history = owned_lines.merge(per, on=["person", "line"])
    best = history.groupby("person").agg(line=("line", "first"), tier=("tier", "max"), paid=("paid", "max"))
    best = best.dropna(subset=["tier", "paid"])
    offerable = _offerable(data)
    price = p["price"].to_numpy(dtype="float64")
    ids = p["id"].to_numpy()
    groups: dict[tuple[str, int, tuple[int, ...]], _Group] = {}
    for (name, top, paid), people in _groups(best, ["line", "tier", "paid"]):
        cap = (1 + pairing.max_price_increase) * paid
        codes = np.flatnonzero(offerable & (line == name) & (tier > top) & (price <= cap + _EPS))
        codes = codes[np.lexsort((ids[codes], price[codes], tier[codes]))]
        key = (str(name), int(top), tuple(codes.tolist()))
        who = np.asarray(people, dtype=np.int64)
        if key in groups:
            groups[key].join([who], {float(paid)}, set())
        else:
            groups[key] = _Group(str(name), int(top), [who], key[2], {float(paid)})
    return sorted(groups.values(), key=lambda g: (g.line, g.level, -g.reference))


def _upsell_reason(group: _Group, frame: pd.DataFrame) -> list[str]:
    rise = ((frame["price"] / group.reference - 1) * 100).round().astype("int64")
    bound = "at most " if len(group.references) > 1 else ""
    return [
        f"tier {group.tiers()} → {int(t)} of {group.line}, {bound}{r:+d}% on the highest price paid"
        for t, r in zip(frame["tier"], rise, strict=True)
    ]


def _owned_lines(data: ShopData, members: np.ndarray, anchors: np.ndarray) -> pd.DataFrame:
    """Completed lines of ``members`` in their anchors' lines: person, line, tier and unit price paid."""
    o, p = data.orders, data.products
    assert o is not None
    lines = p["line"].to_numpy(dtype=object)
    wanted = np.flatnonzero(np.isin(lines, np.unique(lines[anchors[anchors >= 0]])) & (lines != ""))
    rows = np.flatnonzero(o.completed & among(o.product, wanted, len(p)))
    person = o.person_at(rows)
    mine = among(person, members, _customer_count(data))
    rows, product = rows[mine], o.product[rows][mine]
    return pd.DataFrame(
        {
            "person": person[mine],
            "line": lines[product],
            "tier": p["tier"].to_numpy(dtype="float64", na_value=np.nan)[product],
            "paid": o.unit_price[rows],
        }
    )


# --- cross-sell ---------------------------------------------------------------------------------------


def co_purchase_rules(data: ShopData, antecedents: set[str], thresholds: CoPurchase) -> list[CoPurchaseRule]:
    """Line-to-line rules over completed orders that meet every threshold, for the given antecedents.

    A basket is an order's set of product lines (a product with no line counts as its category). With N
    baskets: support = n(A and B) / N, confidence = n(A and B) / n(A), lift = confidence / (n(B) / N).
    """
    o = data.orders
    assert o is not None
    codes, names = pd.factorize(group_key(data.products))
    width = max(len(names), 1)
    mask = o.completed & (o.product >= 0)
    basket = distinct(o.order[mask] * width + codes[o.product[mask]])  # distinct (order, line) pairs
    order, key = basket // width, basket % width
    total = int(np.count_nonzero(np.diff(order, prepend=-1)))  # baskets are sorted by order
    if not total:
        return []
    count = np.bincount(key, minlength=width)
    wanted = np.flatnonzero(np.isin(np.asarray(names, dtype=object), list(antecedents)))
    left = pd.DataFrame({"order": order, "a": key})[np.isin(key, wanted)]
    both = left.merge(pd.DataFrame({"order": order, "b": key}), on="order")
    pairs = both[both["a"] != both["b"]].groupby(["a", "b"]).size()
    rules = []
    for (a, b), n in zip(pairs.index.to_list(), pairs.to_numpy(), strict=True):
        support, confidence = n / total, n / count[a]
        lift = confidence / (count[b] / total)
        if (
            support >= thresholds.min_support - _EPS
            and confidence >= thresholds.min_confidence - _EPS
            and lift >= thresholds.min_lift - _EPS
        ):
            rules.append(CoPurchaseRule(str(names[a]), str(names[b]), int(n), support, confidence, lift))
    return sorted(rules, key=lambda r: (r.antecedent, -r.lift, r.consequent))


def _cross_sell(
    data: ShopData, members: np.ndarray, anchors: np.ndarray, pairing: Pairing
) -> list[tuple[str, np.ndarray, pd.DataFrame]]:
    p = data.products
    key_of = group_key(p).to_numpy(dtype=object)
    line = p["line"].to_numpy(dtype=object)
    category = p["category"].to_numpy(dtype=object)
    known = anchors >= 0
    per = pd.DataFrame(
        {"person": members[known], "key": key_of[anchors[known]], "category": category[anchors[known]]}
    )
    rules: dict[str, list[CoPurchaseRule]] = {}
    if pairing.co_purchase is not None:
        for rule in co_purchase_rules(data, set(per["key"]), pairing.co_purchase):
            rules.setdefault(rule.antecedent, []).append(rule)
    offerable = _offerable(data)
    out = []
    for group, people in per.groupby(["key", "category"], sort=True)["person"]:
        key, cat = cast(tuple[str, str], group)
        codes = people.to_numpy(dtype=np.int64)
        targets = list(dict.fromkeys([*pairing.related.get(key, []), *pairing.related.get(cat, [])]))
        related = np.isin(line, targets) | np.isin(category, targets) | np.isin(key_of, targets)
        lift = {r.consequent: r for r in rules.get(key, [])}
        associated = np.isin(key_of, list(lift))
        ok = offerable & (related | associated) & (key_of != key) & (category != cat) & (line != key)
        frame = _product_frame(data, np.flatnonzero(ok))
        if not frame.empty:
            frame["target"] = key_of[frame["_code"]]
            frame["served"] = _served(_owned(data, codes, frame["_code"].to_numpy()), codes, frame)
            frame = frame[frame["served"] > 0]
            frame["lift"] = frame["target"].map({k: r.lift for k, r in lift.items()}).fillna(0.0)
            frame = _interleave(
                frame.sort_values(["served", "lift", "price", "id"], ascending=[False, False, True, True])
            )
            frame["reason"] = [
                _cross_reason(key, t, t in targets or c in targets or ln in targets, lift.get(t))
                for t, c, ln in zip(frame["target"], frame["category"], frame["line"], strict=True)
            ]
        out.append((str(key), np.sort(codes), frame))
    return out


def _interleave(ranked: pd.DataFrame) -> pd.DataFrame:
    """Round-robin over target lines, so a short set covers several needs before repeating one."""
    ranked = ranked.reset_index(drop=True)
    turn = ranked.groupby("target", sort=False).cumcount()
    first = ranked.groupby("target", sort=False).ngroup()
    return (
        ranked.assign(_turn=turn, _first=first)
        .sort_values(["_turn", "_first"], kind="stable")
        .drop(columns=["_turn", "_first"])
    )


def _cross_reason(anchor: str, target: str, related: bool, rule: CoPurchaseRule | None) -> str:
    parts = []
    if related:
        parts.append(f"{target} goes with {anchor} (related)")
    if rule is not None:
        parts.append(
            f"bought together with {anchor} in {rule.confidence:.0%} of its orders (lift {rule.lift:.1f})"
        )
    return "; ".join(parts)


# --- downsell -----------------------------------------------------------------------------------------


def _downsell(
    data: ShopData, members: np.ndarray, anchors: np.ndarray, pairing: Pairing, since: int | None
) -> list[_Group]:
    """Per member, the cheapest product of the anchor's line they viewed in the window sets the floor."""
    p, views = data.products, data.views
    assert views is not None
    line = p["line"].to_numpy(dtype=object)
    tier = p["tier"].to_numpy(dtype="float64", na_value=np.nan)
    price = p["price"].to_numpy(dtype="float64")
    known = anchors >= 0
    per = pd.DataFrame({"person": members[known], "line": line[anchors[known]]})
    per = per[per["line"] != ""]
    v = views[(views["product"] >= 0) & np.isin(views["person"], per["person"])]
    if since is not None:
        v = v[v["time"] >= since]
    v = v.assign(line=line[v["product"]], price=price[v["product"]], tier=tier[v["product"]])
    v = v.merge(per, on=["person", "line"]).dropna(subset=["price"])
    v = v.sort_values(["person", "price", "tier"], kind="stable")
    cheapest = v.groupby("person").head(1).set_index("person")  # whole rows: first() skips blanks
    cheapest["level"] = cheapest["tier"].fillna(-1).astype("int64")
    offerable = _offerable(data)
    ids = p["id"].to_numpy()
    groups: dict[tuple[str, tuple[int, ...]], _Group] = {}
    factor = 1 - pairing.min_price_decrease
    for (name, floor, level), people in _groups(cheapest, ["line", "price", "level"]):
        codes = np.flatnonzero(offerable & (line == name) & (price <= factor * floor + _EPS))
        codes = codes[np.lexsort((ids[codes], -price[codes]))]
        key = (str(name), tuple(codes.tolist()))
        who = np.asarray(people, dtype=np.int64)
        if key in groups:
            groups[key].join([who], {float(floor)}, {int(level)})
        else:
            groups[key] = _Group(str(name), int(level), [who], key[1], {float(floor)})
    return sorted(groups.values(), key=lambda g: (g.line, -g.reference))


def _downsell_reason(group: _Group, frame: pd.DataFrame) -> list[str]:
    cut = ((1 - frame["price"] / group.reference) * 100).round().astype("int64")
    bound = "at least " if len(group.references) > 1 else ""
    return [
        (f"tier {int(t)} " if pd.notna(t) else "") + f"{bound}{c}% below the cheapest {group.line} viewed"
        for c, t in zip(cut, frame["tier"], strict=True)
    ]
