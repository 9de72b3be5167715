"""The marketers' rules file: who is in each audience, who is left out, and what products they see next.

Every model is strict (an unknown key is an error) and checks what one audience, or the list of them, can
check alone; ``audiences.config`` adds the checks that need the rest of the file (sections, destinations).
Cross-field problems are raised at the field they concern, so a message names the audience and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Annotated, Literal, Self

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]
#: a location below the model being validated, and the message for it
Problem = tuple[Loc, str]

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
#: joins an audience to its sub-audiences (``<audience>--<key>``), so no audience name may contain it
SUB_AUDIENCE_SEPARATOR = "--"
SELECTOR_FIELDS = ("product_ids", "category", "line", "tier", "brand", "min_price", "max_price")
#: exclusions that read customers' orders, complaints or scores: prospects have none
PURCHASER_EXCLUSIONS = ("refunded_within_days", "complaint_within_days", "satisfaction_below", "purchased")
#: the one strategy each strategy-specific pairing setting belongs to
STRATEGY_OF = {
    "max_price_increase": "upsell",
    "min_price_decrease": "downsell",
    "related": "cross_sell",
    "co_purchase": "cross_sell",
}


def raise_problems(title: str, problems: Iterable[Problem]) -> None:
    """Raise all problems at once, each as a pydantic error at its own location (nothing when none)."""
    details = [
        InitErrorDetails(type=PydanticCustomError("config_rule", message), loc=loc, input=None)
        for loc, message in problems
    ]
    if details:
        raise ValidationError.from_exception_data(title, details)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @pydantic.model_validator(mode="after")
    def _cross_field(self) -> Self:
        raise_problems(type(self).__name__, self.problems())
        return self

    def problems(self) -> Iterator[Problem]:
        """Rules between this model's fields, each at the field it concerns (none by default)."""
        return iter(())


class Selector(_Rule):
    """Products by any subset of attributes; a product matches when every condition given holds."""

    product_ids: list[str] | None = Field(None, min_length=1, description="Catalog ids; any of them matches.")
    category: str | None = Field(None, min_length=1, description="Catalog category (product_type), exactly.")
    line: str | None = Field(None, min_length=1, description="Product line, e.g. `health-drink`.")
    tier: int | None = Field(None, ge=1, description="Rank within the line (1 is the entry tier).")
    brand: str | None = Field(None, min_length=1, description="Catalog `brand`, exactly.")
    min_price: float | None = Field(None, ge=0, description="Lowest price, shop currency, inclusive.")
    max_price: float | None = Field(None, ge=0, description="Highest price, shop currency, inclusive.")

    def problems(self) -> Iterator[Problem]:
        low, high = self.min_price, self.max_price
        if low is not None and high is not None and low > high:
            yield ("min_price",), f"{low:g} is above max_price {high:g}; min_price must be at most max_price"

    def conditions(self) -> dict[str, object]:
        """The conditions given, by name; empty when the selector matches every product."""
        return {name: getattr(self, name) for name in SELECTOR_FIELDS if getattr(self, name) is not None}


class Purchased(Selector):
    """The order lines that qualify a purchaser: all conditions hold on one completed line."""

    within_days: int = Field(gt=0, description="Ordered within this many days before --as-of.")
    min_orders: int = Field(1, ge=1, description="Distinct completed orders with a qualifying line.")
    min_spend: float = Field(0, ge=0, description="Least total of the qualifying lines, shop currency.")


class Viewed(Selector):
    """The products a prospect looked at (prospects only)."""

    within_days: int = Field(gt=0, description="Viewed within this many days before --as-of.")


class Exclude(_Rule):
    """Who is left out of an audience even though its rule selects them."""

    refunded_within_days: int | None = Field(None, gt=0, description="Refunded or cancelled order in N days.")
    complaint_within_days: int | None = Field(None, gt=0, description="Complaint opened in N days, or open.")
    satisfaction_below: float | None = Field(None, ge=0, le=10, description="Latest score (0-10) below this.")
    purchased: Selector | None = Field(None, description="Bought a matching product (already own it).")
    audiences: list[str] = Field(default_factory=list, description="Members of these other audiences.")

    def problems(self) -> Iterator[Problem]:
        if self.purchased is not None and not self.purchased.conditions():
            fields = ", ".join(SELECTOR_FIELDS)
            yield ("purchased",), f"give at least one of {fields}; an empty selector excludes every buyer"


class CoPurchase(_Rule):
    """Thresholds for "frequently bought together", computed from completed orders."""

    min_support: float = Field(0.005, gt=0, le=1, description="Share of orders holding both products.")
    min_confidence: float = Field(0.05, gt=0, le=1, description="P(candidate | bought product) per order.")
    min_lift: float = Field(1.5, gt=0, description="Confidence over the candidate's own share of orders.")


class Pairing(_Rule):
    """Which products an audience is shown next, with the guardrails of its strategy."""

    strategy: Literal["upsell", "cross_sell", "downsell"] = Field(
        description="upsell: higher tier of the line bought; cross_sell: related product of another kind; "
        "downsell: cheaper product of the line viewed."
    )
    max_price_increase: float = Field(
        0.25, ge=0, description="upsell: price at most (1 + this) x the highest price paid in the line."
    )
    min_price_decrease: float = Field(
        0.10, ge=0, lt=1, description="downsell: at least this fraction cheaper than the cheapest viewed."
    )
    related: dict[str, Annotated[list[str], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="cross_sell: a category or line bought -> complementary ones, by the need behind it.",
    )
    co_purchase: CoPurchase | None = Field(
        None, description="cross_sell: also pair products frequently bought together."
    )
    max_products: int = Field(10, ge=1, le=50, description="Largest product set: do not overwhelm.")

    def problems(self) -> Iterator[Problem]:
        for name, strategy in STRATEGY_OF.items():
            if name in self.model_fields_set and self.strategy != strategy:
                yield (name,), f"only for strategy {strategy}, and this pairing is {self.strategy}; remove it"
        if self.strategy == "cross_sell" and not self.related and self.co_purchase is None:
            needs = "`related` (complementary categories) or `co_purchase` (frequently bought together)"
            yield (), f"strategy cross_sell needs {needs}, or both"
        for key in (key for key, values in self.related.items() if key in values):
            yield ("related", key), f"{key!r} is related to itself; a cross-sell is another kind of product"


class Audience(_Rule):
    """One audience: who is in it, who is left out, what it is shown and where it goes."""

    name: str = Field(description="Slug used in file names; sub-audiences are named <name>--<key>.")
    description: str = Field("", description="What the audience is, in the marketer's words.")
    who: Literal["purchasers", "prospects"] = Field(
        description="purchasers: bought before; prospects: signed up or browsed, never bought."
    )
    purchased: Purchased | None = Field(None, description="purchasers only: the qualifying order lines.")
    viewed: Viewed | None = Field(None, description="prospects only: the products they looked at.")
    exclude: Exclude = Field(default_factory=Exclude, description="Who is left out.")
    pairing: Pairing | None = Field(None, description="The products shown; none for a plain list.")
    destinations: list[str] = Field(description="Where the audience is uploaded (meta, google, tiktok, ...).")

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a slug: use 1-63 lowercase letters, digits and '-', starting with a "
                "letter or digit (it names output files)"
            )
        if SUB_AUDIENCE_SEPARATOR in value:
            raise ValueError(
                f"{value!r} contains '--', which joins an audience to its sub-audiences "
                "(<audience>--<key>); use a single '-'"
            )
        return value

    @field_validator("destinations")
    @classmethod
    def _some_destination(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one destination (meta, google, tiktok or a `destinations` key)")
        return list(dict.fromkeys(value))

    def problems(self) -> Iterator[Problem]:
        buyers, strategy = self.who == "purchasers", self.pairing.strategy if self.pairing else None
        if buyers and self.purchased is None:
            yield ("purchased",), "who: purchasers needs `purchased` (the qualifying order lines)"
        if buyers and self.viewed is not None:
            yield ("viewed",), "only for who: prospects; purchasers are selected by `purchased`"
        if buyers and strategy == "downsell":
            yield ("pairing", "strategy"), "downsell is for who: prospects; purchasers get upsell, cross_sell"
        if not buyers and self.purchased is not None:
            yield ("purchased",), "only for who: purchasers; prospects never bought (select them by `viewed`)"
        if not buyers and strategy in ("upsell", "cross_sell"):
            yield ("pairing", "strategy"), f"{strategy} is for who: purchasers; prospects get downsell"
        if not buyers and strategy == "downsell" and self.viewed is None:
            yield ("viewed",), "strategy downsell needs `viewed`: a cheaper product of a line viewed"
        why = "only for who: purchasers (prospects have no orders, complaints or scores)"
        for name in () if buyers else PURCHASER_EXCLUSIONS:
            if getattr(self.exclude, name) is not None:
                yield ("exclude", name), why


def check_audiences(audiences: list[Audience]) -> list[Audience]:
    """Names are unique, and ``exclude.audiences`` names other audiences of the file, without loops."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, audience in enumerate(audiences):
        if audience.name in first:
            message = f"audiences {first[audience.name] + 1} and {i + 1} are both named {audience.name!r}"
            problems.append(((i, "name"), f"{message}; names must be unique (they name output files)"))
        first.setdefault(audience.name, i)
    edges: dict[str, list[str]] = {}
    for i, audience in enumerate(audiences):
        others = ", ".join(name for name in first if name != audience.name) or "none"
        for name in audience.exclude.audiences:
            if name == audience.name:
                message = f"{name!r} is this audience itself; list other audiences whose members to leave out"
                problems.append(((i, "exclude", "audiences"), message))
            elif name not in first:
                message = f"{name!r} is not an audience in this file; others here: {others}"
                problems.append(((i, "exclude", "audiences"), message))
            elif first[audience.name] == i:
                edges.setdefault(audience.name, []).append(name)
    for cycle in _cycles(edges):
        loop = " -> ".join([*cycle, cycle[0]])
        message = f"exclusions loop ({loop}); an audience cannot exclude itself through others"
        problems.append(((first[cycle[0]], "exclude", "audiences"), message))
    raise_problems("audiences", problems)
    return audiences


def _cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """Loops in the exclusion graph (depth-first), each reported once, from where the search met it."""
    found: list[list[str]] = []
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt) :]
                if all(set(cycle) != set(known) for known in found):
                    found.append(cycle)
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in edges:
        if node not in state:
            visit(node)
    return found


#: the ``audiences`` section: a list of rules, checked as a whole once every rule is valid
AudienceList = Annotated[list[Audience], AfterValidator(check_audiences)]
