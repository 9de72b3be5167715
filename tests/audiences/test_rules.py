"""audiences.rules: the marketers' rule models on their own, located errors, and the list-level checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from audiences import rules
from audiences.rules import Audience, CoPurchase, Exclude, Pairing, Purchased, Selector, check_audiences

UPSELL: dict[str, Any] = {
    "name": "drink-upsell",
    "who": "purchasers",
    "purchased": {"line": "health-drink", "within_days": 90},
    "pairing": {"strategy": "upsell"},
    "destinations": ["meta"],
}
DOWNSELL: dict[str, Any] = {
    "name": "drink-downsell",
    "who": "prospects",
    "viewed": {"line": "health-drink", "within_days": 60},
    "pairing": {"strategy": "downsell"},
    "destinations": ["meta"],
}


def errors(model: type[BaseModel], data: Any) -> dict[str, str]:
    """Validation errors as ``{"dotted.loc": message}``."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return {
        ".".join(str(p) for p in e["loc"]): e["msg"].removeprefix("Value error, ")
        for e in info.value.errors()
    }


def audience(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` with top-level keys replaced (``None`` removes the key)."""
    merged = {**base, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def test_issue_example_parses_with_its_defaults() -> None:
    parsed = Audience.model_validate(
        audience(
            UPSELL,
            exclude={
                "refunded_within_days": 90,
                "complaint_within_days": 60,
                "satisfaction_below": 7,
                "purchased": {"line": "health-drink", "tier": 3},
                "audiences": ["vip-list"],
            },
        )
    )
    assert parsed.purchased is not None and parsed.pairing is not None
    assert (parsed.purchased.min_orders, parsed.purchased.min_spend) == (1, 0)
    assert parsed.pairing.max_price_increase == 0.25
    assert parsed.pairing.min_price_decrease == 0.10
    assert parsed.pairing.max_products == 10
    assert parsed.exclude.purchased is not None
    assert parsed.exclude.purchased.conditions() == {"line": "health-drink", "tier": 3}
    assert CoPurchase() == CoPurchase(min_support=0.005, min_confidence=0.05, min_lift=1.5)


def test_models_are_frozen() -> None:
    parsed = Audience.model_validate(UPSELL)
    with pytest.raises(ValidationError, match="frozen"):
        parsed.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "model",
    [Selector, Purchased, rules.Viewed, Exclude, CoPurchase, Pairing, Audience],
)
def test_every_field_is_described_and_unknown_keys_are_rejected(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"


def test_selector_price_range() -> None:
    assert errors(Selector, {"min_price": 5000, "max_price": 100}) == {
        "min_price": "5000 is above max_price 100; min_price must be at most max_price"
    }
    assert Selector(min_price=100, max_price=100).conditions() == {"min_price": 100, "max_price": 100}
    assert Selector().conditions() == {}


@pytest.mark.parametrize(
    ("data", "loc", "fragment"),
    [
        ({"line": "x"}, "within_days", "Field required"),
        ({"within_days": 0}, "within_days", "greater than 0"),
        ({"within_days": 9, "min_orders": 0}, "min_orders", "greater than or equal to 1"),
        ({"within_days": 9, "min_spend": -1}, "min_spend", "greater than or equal to 0"),
        ({"within_days": 9, "tier": 0}, "tier", "greater than or equal to 1"),
        ({"within_days": 9, "product_ids": []}, "product_ids", "at least 1 item"),
        ({"within_days": 9, "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_purchased_bounds(data: dict[str, Any], loc: str, fragment: str) -> None:
    assert fragment in errors(Purchased, data)[loc]


@pytest.mark.parametrize(
    ("data", "loc", "fragment"),
    [
        ({"satisfaction_below": 11}, "satisfaction_below", "less than or equal to 10"),
        ({"satisfaction_below": -1}, "satisfaction_below", "greater than or equal to 0"),
        ({"refunded_within_days": 0}, "refunded_within_days", "greater than 0"),
        ({"complaint_within_days": -3}, "complaint_within_days", "greater than 0"),
        (
            {"purchased": {}},
            "purchased",
            "give at least one of product_ids, category, line, tier, brand, min_price, max_price; "
            "an empty selector excludes every buyer",
        ),
    ],
)
def test_exclude_bounds(data: dict[str, Any], loc: str, fragment: str) -> None:
    assert fragment in errors(Exclude, data)[loc]


@pytest.mark.parametrize(
    ("data", "loc", "fragment"),
    [
        ({"min_support": 0}, "min_support", "greater than 0"),
        ({"min_confidence": 1.5}, "min_confidence", "less than or equal to 1"),
        ({"min_lift": 0}, "min_lift", "greater than 0"),
    ],
)
def test_co_purchase_bounds(data: dict[str, Any], loc: str, fragment: str) -> None:
    assert fragment in errors(CoPurchase, data)[loc]


@pytest.mark.parametrize(
    ("data", "loc", "fragment"),
    [
        ({"strategy": "upsel"}, "strategy", "Input should be 'upsell', 'cross_sell' or 'downsell'"),
        ({"strategy": "upsell", "max_products": 0}, "max_products", "greater than or equal to 1"),
        ({"strategy": "upsell", "max_products": 51}, "max_products", "less than or equal to 50"),
        ({"strategy": "upsell", "max_price_increase": -0.1}, "max_price_increase", "greater than or equal"),
        ({"strategy": "downsell", "min_price_decrease": 1}, "min_price_decrease", "less than 1"),
        ({"strategy": "cross_sell", "related": {"camera": []}}, "related.camera", "at least 1 item"),
    ],
)
def test_pairing_bounds(data: dict[str, Any], loc: str, fragment: str) -> None:
    assert fragment in errors(Pairing, data)[loc]


@pytest.mark.parametrize(
    ("strategy", "field", "value", "owner"),
    [
        ("downsell", "max_price_increase", 0.3, "upsell"),
        ("cross_sell", "max_price_increase", 0.25, "upsell"),  # even the default value, when written out
        ("upsell", "min_price_decrease", 0.1, "downsell"),
        ("upsell", "related", {"camera": ["tripod"]}, "cross_sell"),
        ("downsell", "co_purchase", {"min_lift": 2}, "cross_sell"),
    ],
)
def test_strategy_settings_belong_to_their_strategy(
    strategy: str, field: str, value: Any, owner: str
) -> None:
    data: dict[str, Any] = {"strategy": strategy, field: value}
    if strategy == "cross_sell":
        data["co_purchase"] = {}
    assert errors(Pairing, data) == {
        field: f"only for strategy {owner}, and this pairing is {strategy}; remove it"
    }


def test_strategy_defaults_are_fine_when_not_written() -> None:
    for strategy in ("upsell", "downsell"):
        assert Pairing(strategy=strategy).max_products == 10
    assert Pairing(strategy="cross_sell", related={"camera": ["tripod"]}).co_purchase is None
    assert Pairing(strategy="cross_sell", co_purchase=CoPurchase()).related == {}


def test_cross_sell_needs_related_or_co_purchase() -> None:
    assert errors(Pairing, {"strategy": "cross_sell"}) == {
        "": "strategy cross_sell needs `related` (complementary categories) or `co_purchase` "
        "(frequently bought together), or both"
    }


def test_related_category_cannot_be_related_to_itself() -> None:
    assert errors(Pairing, {"strategy": "cross_sell", "related": {"camera": ["tripod", "camera"]}}) == {
        "related.camera": "'camera' is related to itself; a cross-sell is another kind of product"
    }


@pytest.mark.parametrize("name", ["a", "2", "drink-upsell", "x" * 63, "a-"])
def test_good_names(name: str) -> None:
    assert Audience.model_validate(audience(UPSELL, name=name)).name == name


@pytest.mark.parametrize("name", ["Drink", "-a", "a_b", "a b", "ドリンク", "", "x" * 64])
def test_names_must_be_slugs(name: str) -> None:
    assert errors(Audience, audience(UPSELL, name=name)) == {
        "name": f"{name!r} is not a slug: use 1-63 lowercase letters, digits and '-', starting with a letter "
        "or digit (it names output files)"
    }


def test_name_cannot_hold_the_sub_audience_separator() -> None:
    assert errors(Audience, audience(UPSELL, name="drink--upsell")) == {
        "name": "'drink--upsell' contains '--', which joins an audience to its sub-audiences "
        "(<audience>--<key>); use a single '-'"
    }


def test_destinations_must_not_be_empty_and_duplicates_are_dropped() -> None:
    assert errors(Audience, audience(UPSELL, destinations=[])) == {
        "destinations": "list at least one destination (meta, google, tiktok or a `destinations` key)"
    }
    assert "Field required" in errors(Audience, audience(UPSELL, destinations=None))["destinations"]
    parsed = Audience.model_validate(audience(UPSELL, destinations=["google", "meta", "google"]))
    assert parsed.destinations == ["google", "meta"]


PURCHASERS_NEED = "who: purchasers needs `purchased` (the qualifying order lines)"
PROSPECTS_ONLY = "only for who: prospects; purchasers are selected by `purchased`"
NO_DOWNSELL = "downsell is for who: prospects; purchasers get upsell, cross_sell"
PURCHASERS_ONLY = "only for who: purchasers; prospects never bought (select them by `viewed`)"
DOWNSELL_VIEWED = "strategy downsell needs `viewed`: a cheaper product of a line viewed"
NO_ORDERS = "only for who: purchasers (prospects have no orders, complaints or scores)"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (audience(UPSELL, purchased=None), {"purchased": PURCHASERS_NEED}),
        (audience(UPSELL, viewed={"line": "x", "within_days": 3}), {"viewed": PROSPECTS_ONLY}),
        (audience(UPSELL, pairing={"strategy": "downsell"}), {"pairing.strategy": NO_DOWNSELL}),
        (audience(DOWNSELL, purchased={"within_days": 3}), {"purchased": PURCHASERS_ONLY}),
        (
            audience(DOWNSELL, pairing={"strategy": "upsell"}),
            {"pairing.strategy": "upsell is for who: purchasers; prospects get downsell"},
        ),
        (
            audience(DOWNSELL, pairing={"strategy": "cross_sell", "co_purchase": {}}),
            {"pairing.strategy": "cross_sell is for who: purchasers; prospects get downsell"},
        ),
        (audience(DOWNSELL, viewed=None), {"viewed": DOWNSELL_VIEWED}),
        (
            audience(DOWNSELL, exclude={"refunded_within_days": 9}),
            {"exclude.refunded_within_days": NO_ORDERS},
        ),
        (audience(DOWNSELL, exclude={"satisfaction_below": 5}), {"exclude.satisfaction_below": NO_ORDERS}),
        (audience(DOWNSELL, exclude={"purchased": {"line": "x"}}), {"exclude.purchased": NO_ORDERS}),
        (
            audience(UPSELL, purchased=None, viewed={"within_days": 3}, pairing={"strategy": "downsell"}),
            {"purchased": PURCHASERS_NEED, "viewed": PROSPECTS_ONLY, "pairing.strategy": NO_DOWNSELL},
        ),
    ],
)
def test_cross_field_rules(data: dict[str, Any], expected: dict[str, str]) -> None:
    assert errors(Audience, data) == expected


def test_prospects_without_pairing_or_views_are_a_plain_list() -> None:
    parsed = Audience.model_validate(audience(DOWNSELL, viewed=None, pairing=None))
    assert parsed.pairing is None and parsed.viewed is None
    assert Audience.model_validate(audience(DOWNSELL, exclude={"audiences": ["vip"]})).exclude.audiences == [
        "vip"
    ]


def _list_errors(*items: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        check_audiences([Audience.model_validate(item) for item in items])
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}


def _named(name: str, *excluded: str) -> dict[str, Any]:
    return audience(UPSELL, name=name, exclude={"audiences": list(excluded)})


def test_names_are_unique() -> None:
    assert _list_errors(_named("a"), _named("b"), _named("a")) == {
        "2.name": "audiences 1 and 3 are both named 'a'; names must be unique (they name output files)"
    }


def test_excluded_audiences_must_exist_and_be_others() -> None:
    assert _list_errors(_named("a", "a"), _named("b", "vip-list")) == {
        "0.exclude.audiences": "'a' is this audience itself; list other audiences whose members to leave out",
        "1.exclude.audiences": "'vip-list' is not an audience in this file; others here: a",
    }


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ((_named("a", "b"), _named("b", "a")), {"0.exclude.audiences": "exclusions loop (a -> b -> a)"}),
        (
            (_named("x"), _named("a", "b"), _named("b", "c"), _named("c", "a", "x")),
            {"1.exclude.audiences": "exclusions loop (a -> b -> c -> a)"},
        ),
        (
            (_named("a", "b"), _named("b", "a"), _named("c", "d"), _named("d", "c")),
            {"0.exclude.audiences": "exclusions loop (a -> b -> a)", "2.exclude.audiences": "(c -> d -> c)"},
        ),
    ],
)
def test_exclusion_loops_are_reported_once(
    items: tuple[dict[str, Any], ...], expected: dict[str, str]
) -> None:
    found = _list_errors(*items)
    assert sorted(found) == sorted(expected)
    for loc, fragment in expected.items():
        assert fragment in found[loc]
        assert found[loc].endswith("; an audience cannot exclude itself through others")


def test_exclusions_without_loops_pass() -> None:
    items = [_named("a", "b", "c"), _named("b", "c"), _named("c"), _named("d", "a", "c")]
    assert [a.name for a in check_audiences([Audience.model_validate(i) for i in items])] == [
        "a",
        "b",
        "c",
        "d",
    ]
