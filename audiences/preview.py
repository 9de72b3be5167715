"""What ``audiences preview`` shows: sizes, exclusions, overlaps and top products, with no personal data.

The same entries as ``plan.json`` (an audience, then its sub-audiences when split), reduced to counts,
product ids and reasons, plus a warning for every (sub-)audience below a destination's minimum.
"""

from __future__ import annotations

from typing import Any

from audiences.plan import Plan


def preview_data(plan: Plan, top: int | None = None) -> dict[str, Any]:
    """Counts, up to ``top`` products per set (all when None) and warnings; JSON-ready."""
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    for item in plan.audiences:
        audience, counts = item.audience, item.counts
        strategy = audience.pairing.strategy if audience.pairing else None
        split = [o for o in item.offers if o.name != audience.name]
        head = {
            "name": audience.name,
            "parent": None,
            "who": audience.who,
            "strategy": strategy,
            **counts,
            "product_set": None,
            "minimum": item.minimum,
        }
        if not split and item.offers and strategy:
            head["product_set"] = _products(item.offers[0].products, top)
            head["product_set_size"] = len(item.offers[0].products)
        entries.append(head)
        if counts["members"] < item.minimum and not split:
            warnings.append(
                f"{audience.name}: {counts['members']} members, below the minimum of {item.minimum}"
            )
        for offer in split:
            members = len(offer.members)
            entries.append(
                {
                    "name": offer.name,
                    "parent": audience.name,
                    "who": audience.who,
                    "strategy": strategy,
                    "candidates": members,
                    "members": members,
                    "excluded": {},
                    "product_set": _products(offer.products, top),
                    "product_set_size": len(offer.products),
                    "minimum": item.minimum,
                }
            )
            if members < item.minimum:
                warnings.append(f"{offer.name}: {members} members, below the minimum of {item.minimum}")
        for offer in item.offers:
            short = [d for d in item.below_minimum(offer) if len(offer.members) >= item.minimum]
            if short:
                names = ", ".join(f"{d} ({item.minimum_of(d)})" for d in short)
                warnings.append(f"{offer.name}: {len(offer.members)} members, below the minimum of {names}")
    return {
        "as_of": plan.as_of.isoformat(timespec="seconds"),
        "audiences": entries,
        "overlaps": plan.overlaps(),
        "warnings": warnings,
    }


def _products(products: Any, top: int | None) -> list[dict[str, Any]]:
    if products is None or len(products) == 0:
        return []
    rows = products.head(top) if top is not None else products
    return [{"id": pid, "reason": reason} for pid, reason in zip(rows["id"], rows["reason"], strict=True)]
