"""Plan a build: select every audience, apply its exclusions and pair it with products; nothing written.

``make_plan`` is what ``audiences preview`` shows and what ``audiences build`` writes. Audiences are
evaluated so that one named in another's ``exclude.audiences`` is complete first (the rules file cannot
loop; ``rules.check_audiences`` refuses that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from audiences.config import PipelineConfig
from audiences.load import Tables, load_tables
from audiences.pairing import Offer, pair
from audiences.products import load_products
from audiences.rules import Audience
from audiences.select import Members, Selection, members_of, select
from audiences.shopdata import ShopData, prepare

log = logging.getLogger(__name__)

#: platform of each destination type (the mock speaks Meta's API and takes Meta's template)
PLATFORM_OF_TYPE = {
    "meta": "meta",
    "google": "google",
    "google-file": "google",
    "tiktok": "tiktok",
    "mock": "meta",
}
#: members a platform needs before it serves an audience (specs/audiences.md); a destination may set its own
MINIMUM_MEMBERS = {"meta": 100, "google": 1000, "tiktok": 1000}


@dataclass
class AudiencePlan:
    """One audience of the rules file: its selection and its offers (one, or one per sub-audience)."""

    audience: Audience
    selection: Selection
    offers: list[Offer]
    #: destination name -> platform
    platforms: dict[str, str]
    #: destination name -> members it needs
    minimums: dict[str, int]

    @property
    def minimum(self) -> int:
        """The smallest destination's minimum: below it, no destination serves the audience."""
        return min(self.minimums.values(), default=0)

    def minimum_of(self, destination: str) -> int:
        """Members ``destination`` needs."""
        return self.minimums[destination]

    @property
    def counts(self) -> dict[str, Any]:
        """Candidates, members and excluded by reason (they add up)."""
        return self.selection.counts()

    def below_minimum(self, offer: Offer) -> list[str]:
        """The destinations whose minimum ``offer`` does not reach."""
        return [name for name, need in self.minimums.items() if len(offer.members) < need]


@dataclass
class Plan:
    """Every audience, in rules-file order, with what they were computed from."""

    as_of: datetime
    data: ShopData
    tables: Tables
    audiences: list[AudiencePlan] = field(default_factory=list)

    def overlaps(self) -> list[dict[str, Any]]:
        """Members shared by each pair of audiences (same kind by id, across kinds by e-mail/phone hash)."""
        out = []
        for i, a in enumerate(self.audiences):
            for b in self.audiences[i + 1 :]:
                shared = _shared(a.selection, b.selection)
                out.append({"audiences": [a.audience.name, b.audience.name], "shared_members": shared})
        return out


def make_plan(config: PipelineConfig, as_of: datetime) -> Plan:
    """Load every table, then select and pair each audience."""
    if config.catalog is None:
        products = pd.DataFrame(
            {c: pd.Series([], dtype="str") for c in ("id", "title", "line", "category", "brand")}
            | {"tier": pd.Series([], dtype="Int64"), "price": pd.Series([], dtype="float64")}
            | {"available": pd.Series([], dtype=bool), "in_feeds": pd.Series([], dtype=bool)}
        )
    else:
        products = load_products(config.shop, config.catalog, config.feeds, as_of)
    tables = load_tables(config)
    for table, counts in tables.counts.items():
        if counts["problems"]:
            log.warning("%s: %d rows skipped (see input_problems.csv in the run)", table, counts["problems"])
    data = prepare(tables, products, as_of, config.shop.default_country)
    plan = Plan(as_of=as_of, data=data, tables=tables)
    built: dict[str, Members] = {}
    by_name = {a.name: a for a in config.audiences}
    for audience in _evaluation_order(config.audiences):
        platforms = {name: platform_of(config, name) for name in audience.destinations}
        minimums = {name: _minimum_for(config, name, p) for name, p in platforms.items()}
        selection = select(data, audience, built)
        offers = pair(data, selection, min(minimums.values(), default=0))
        built[audience.name] = members_of(selection)
        plan.audiences.append(AudiencePlan(audience, selection, offers, platforms, minimums))
    order = {name: i for i, name in enumerate(by_name)}
    plan.audiences.sort(key=lambda a: order[a.audience.name])
    return plan


def platform_of(config: PipelineConfig, destination: str) -> str:
    """The upload template a destination takes: its ``type`` in ``destinations``, else its own name."""
    settings = config.destinations.get(destination)
    kind = settings.type if settings is not None else destination
    return PLATFORM_OF_TYPE.get(kind, kind)


def _minimum_for(config: PipelineConfig, destination: str, platform: str) -> int:
    settings = config.destinations.get(destination)
    return settings.minimum if settings is not None else MINIMUM_MEMBERS.get(platform, 100)


def _evaluation_order(audiences: list[Audience]) -> list[Audience]:
    """Each audience after the ones it excludes (depth-first; the file has no loops)."""
    by_name = {a.name: a for a in audiences}
    done: dict[str, Audience] = {}

    def visit(audience: Audience) -> None:
        for name in audience.exclude.audiences:
            if name not in done:
                visit(by_name[name])
        done.setdefault(audience.name, audience)

    for audience in audiences:
        visit(audience)
    return list(done.values())


def _shared(a: Selection, b: Selection) -> int:
    if a.people.kind == b.people.kind:
        return int(np.intersect1d(a.members, b.members).size)
    left, right = members_of(a), members_of(b)
    if not left.hashes or not right.hashes:
        return 0
    hashes = b.people.hashes.iloc[right.codes]
    found = np.zeros(len(right.codes), dtype=bool)
    for column in hashes.columns:
        found |= hashes[column].isin(left.hashes).to_numpy()
    return int(found.sum())
