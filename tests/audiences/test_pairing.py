"""audiences.pairing on small hand-built shops: which products each (sub-)audience is shown, and why.

Every selection goes through ``run`` (counts add up), and is checked again after ``pair`` adds
``no_products``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from audiences.pairing import Offer, co_purchase_rules, pair
from audiences.rules import Audience, CoPurchase
from audiences.select import Selection
from audiences.shopdata import ShopData
from tests.audiences.shops import Shop, audience, catalog, check_counts, product, reasons, run

DRINK = "health-drink"


def upsell(**pairing: Any) -> Audience:
    return audience(
        who="purchasers",
        purchased={"line": DRINK, "within_days": 90},
        pairing={"strategy": "upsell"} | pairing,
    )


def cross_sell(**pairing: Any) -> Audience:
    return audience(
        who="purchasers",
        purchased={"line": "camera", "within_days": 90},
        pairing={"strategy": "cross_sell"} | pairing,
    )


def downsell(**pairing: Any) -> Audience:
    return audience(
        who="prospects",
        viewed={"line": DRINK, "within_days": 60},
        pairing={"strategy": "downsell"} | pairing,
    )


def offers_of(data: ShopData, spec: Audience, minimum: int = 0) -> tuple[list[Offer], Selection]:
    selection = run(data, spec)
    offers = pair(data, selection, minimum)
    check_counts(selection)
    served = sorted(code for offer in offers for code in offer.members.tolist())
    assert served == sorted(selection.members.tolist())  # every member is in exactly one offer
    return offers, selection


def who(selection: Selection, offer: Offer) -> list[str]:
    return sorted(selection.people.ids[offer.members])


# --- upsell -------------------------------------------------------------------------------------------


def test_upsell_keeps_every_guardrail() -> None:
    products = catalog(
        product("T1", DRINK, 1, 100.0),
        product("T1-cheap", DRINK, 1, 90.0),  # same tier: not an upsell
        product("T2", DRINK, 2, 120.0),
        product("T2-preorder", DRINK, 2, 115.0),  # preorder/backorder is available
        product("T2-out", DRINK, 2, 110.0, available=False),
        product("T2-rejected", DRINK, 2, 105.0, in_feeds=False),
        product("T3-at-cap", DRINK, 3, 125.0),  # (1 + 0.25) x 100
        product("T3-above-cap", DRINK, 3, 125.01),
        product("K2", "camera", 2, 110.0),  # another line
    )
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("T1", 100.0))
    offers, selection = offers_of(shop.data(products), upsell(max_price_increase=0.25))
    [offer] = offers
    assert offer.name == "test" and offer.key == "health-drink-t1" and who(selection, offer) == ["C1"]
    assert offer.product_ids == ["T2-preorder", "T2", "T3-at-cap"]


def test_upsell_starts_from_the_highest_tier_and_price_paid_in_the_line() -> None:
    products = catalog(
        product("T1", DRINK, 1, 100.0),
        product("T2", DRINK, 2, 120.0),
        product("T3", DRINK, 3, 140.0),
        product("T3-lite", DRINK, 3, 125.0),
        product("T4", DRINK, 4, 150.0),
    )
    shop = Shop()
    for cid in ("A1", "A2", "B1", "TOP"):
        shop.customer(cid)
    shop.order("A1", ("T1", 100.0))
    shop.order("A2", ("T1", 100.0))
    shop.order("B1", ("T1", 100.0), days=40)
    shop.order("B1", ("T2", 120.0), days=20)  # highest tier 2, highest price paid 120: cap 150
    shop.order("TOP", ("T4", 150.0))  # nothing above the top tier
    offers, selection = offers_of(shop.data(products), upsell())
    by_name = {offer.name: offer for offer in offers}
    assert list(by_name) == ["test--health-drink-t1", "test--health-drink-t2"]
    low, high = by_name["test--health-drink-t1"], by_name["test--health-drink-t2"]
    assert who(selection, low) == ["A1", "A2"] and low.product_ids == ["T2", "T3-lite"]
    assert who(selection, high) == ["B1"] and high.product_ids == ["T3-lite", "T3", "T4"]
    assert reasons(selection)["TOP"] == "no_products"
    assert selection.counts() == {"candidates": 4, "members": 3, "excluded": {"no_products": 1}}


def test_upsell_ranks_closer_tier_then_cheaper_then_id_and_caps_the_set() -> None:
    products = catalog(
        product("T1", DRINK, 1, 100.0),
        product("T3", DRINK, 3, 101.0),  # cheapest, but two tiers up
        product("T2-c", DRINK, 2, 110.0),
        product("T2-b", DRINK, 2, 105.0),
        product("T2-a", DRINK, 2, 105.0),
    )
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("T1", 100.0))
    data = shop.data(products)
    [offer], _ = offers_of(data, upsell())
    assert offer.product_ids == ["T2-a", "T2-b", "T2-c", "T3"]
    [capped], _ = offers_of(data, upsell(max_products=2))
    assert capped.product_ids == ["T2-a", "T2-b"]


def test_upsell_reason_names_the_tiers_and_the_price_rise() -> None:
    products = catalog(
        product("T1", DRINK, 1, 100.0), product("T2", DRINK, 2, 120.0), product("T3", DRINK, 3, 125.0)
    )
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("T1", 100.0))
    [offer], _ = offers_of(shop.data(products), upsell())
    assert offer.products["reason"].tolist() == [
        "tier 1 → 2 of health-drink, +20% on the highest price paid",
        "tier 1 → 3 of health-drink, +25% on the highest price paid",
    ]


def _two_upsell_groups(t1_buyers: int, t2_buyers: int) -> ShopData:
    """Tier-1 buyers (paid 100, may see T2 and T3) and tier-2 buyers (paid 120, may see only T3)."""
    products = catalog(
        product("T1", DRINK, 1, 100.0),
        product("T2", DRINK, 2, 120.0),
        product("T3", DRINK, 3, 125.0),
        product("T4", DRINK, 4, 200.0),  # above everyone's cap
    )
    shop = Shop()
    for i in range(t1_buyers):
        shop.order(shop.customer(f"A{i}"), ("T1", 100.0))
    for i in range(t2_buyers):
        shop.order(shop.customer(f"B{i}"), ("T2", 120.0))
    return shop.data(products)


def test_a_small_group_joins_a_group_whose_whole_set_it_may_see() -> None:
    data = _two_upsell_groups(t1_buyers=1, t2_buyers=3)
    apart, _ = offers_of(data, upsell(), minimum=0)
    assert [(o.name, o.product_ids) for o in apart] == [
        ("test--health-drink-t1", ["T2", "T3"]),
        ("test--health-drink-t2", ["T3"]),
    ]
    [merged], selection = offers_of(data, upsell(), minimum=2)
    assert merged.name == "test" and merged.product_ids == ["T3"]  # T3 is within the tier-1 buyers' cap
    assert who(selection, merged) == ["A0", "B0", "B1", "B2"]


def test_a_small_group_stays_apart_when_the_other_set_breaks_its_guardrails() -> None:
    data = _two_upsell_groups(t1_buyers=3, t2_buyers=1)  # T2 is no upsell for a tier-2 buyer
    offers, selection = offers_of(data, upsell(), minimum=2)
    assert [(o.name, who(selection, o)) for o in offers] == [
        ("test--health-drink-t1", ["A0", "A1", "A2"]),
        ("test--health-drink-t2", ["B0"]),
    ]


def test_merged_upsell_reason_bounds_the_rise_for_every_member() -> None:
    data = _two_upsell_groups(t1_buyers=1, t2_buyers=3)
    [merged], _ = offers_of(data, upsell(), minimum=2)
    # T3 costs 125: +4% for who paid 120, +25% for who paid 100; "at most" must cover the larger rise
    assert "at most +25% on the highest price paid" in merged.products["reason"][0]
    assert merged.products["reason"][0].startswith("tier 1-2 → 3 of ")  # both groups' tiers, in words


# --- cross-sell ---------------------------------------------------------------------------------------

CAMERA_SHOP = [
    product("K1", "camera", None, 500.0, category="Cameras"),
    product("M1", "memory-card", None, 20.0, category="Camera Accessories"),
    product("M2", "memory-card", None, 30.0, category="Camera Accessories"),
]


def test_cross_sell_offers_related_kinds_never_the_anchors_own() -> None:
    products = catalog(
        *CAMERA_SHOP,
        product("M-out", "memory-card", None, 25.0, category="Camera Accessories", available=False),
        product("M-rejected", "memory-card", None, 15.0, category="Camera Accessories", in_feeds=False),
        product("K-cap", "camera", None, 10.0, category="Camera Accessories"),  # the anchor's own line
        product("Bag", "camera-bag", None, 40.0, category="Cameras"),  # the anchor's own category
        product("Strap", "camera-strap", None, 12.0, category="Camera Accessories"),
        product("Drink", DRINK, 1, 5.0, category="Drinks"),  # not related
    )
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("K1", 500.0))
    related = {"camera": ["memory-card", "camera-bag", "Camera Accessories"]}
    [offer], selection = offers_of(shop.data(products), cross_sell(related=related))
    assert offer.name == "test" and offer.key == "camera" and who(selection, offer) == ["C1"]
    assert set(offer.product_ids) == {"M1", "M2", "Strap"}
    assert offer.product_ids == ["Strap", "M1", "M2"]  # cheapest first, one per target in turn
    assert offer.products["reason"].tolist() == [
        "camera-strap goes with camera (related)",  # by its category, Camera Accessories
        "memory-card goes with camera (related)",
        "memory-card goes with camera (related)",
    ]


def test_cross_sell_ranks_products_fewer_members_own_first_then_lift() -> None:
    products = catalog(
        *CAMERA_SHOP,
        product("T1", "tripod", None, 60.0, category="Tripods"),
        product("T2", "tripod", None, 40.0, category="Tripods"),
        product("D1", DRINK, 1, 5.0, category="Drinks"),
    )
    shop = Shop()
    for cid in ("C1", "C2", "C3"):
        shop.customer(cid)
        shop.order(cid, ("K1", 500.0))
    shop.order("C1", ("M1", 20.0))  # two of three members own M1: it serves one
    shop.order("C2", ("M1", 20.0))
    shop.customer("H")  # an old customer whose orders make camera -> tripod a co-purchase
    shop.order("H", ("K1", 500.0), ("T1", 60.0), days=200)
    shop.order("H", ("K1", 500.0), ("T2", 40.0), days=200)
    for _ in range(5):
        shop.order("H", ("D1", 5.0), days=200)
    # 12 baskets: camera in 5, tripod in 2, both in 2: confidence 2/5 = 0.4, lift 0.4 / (2/12) = 2.4
    spec = cross_sell(related={"camera": ["memory-card"]}, co_purchase={"min_lift": 1.5})
    [offer], _ = offers_of(shop.data(products), spec)
    # served 3: T2, T1 (lift 2.4, cheaper first), M2 (lift 0); served 1: M1; then one per target in turn
    assert offer.product_ids == ["T2", "M2", "T1", "M1"]
    assert offer.products["served"].tolist() == [3, 3, 3, 1]
    assert offer.products["reason"].tolist()[:2] == [
        "bought together with camera in 40% of its orders (lift 2.4)",
        "memory-card goes with camera (related)",
    ]


def test_cross_sell_leaves_out_what_every_member_owns() -> None:
    products = catalog(*CAMERA_SHOP)
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("K1", 500.0), ("M1", 20.0), ("M2", 30.0))
    shop.customer("C2")
    shop.order("C2", ("K1", 500.0), ("M1", 20.0))
    [offer], selection = offers_of(shop.data(products), cross_sell(related={"camera": ["memory-card"]}))
    assert offer.product_ids == ["M2"] and who(selection, offer) == ["C1", "C2"]
    alone = Shop()
    alone.customer("C1")
    alone.order("C1", ("K1", 500.0), ("M1", 20.0), ("M2", 30.0))
    offers, selection = offers_of(alone.data(products), cross_sell(related={"camera": ["memory-card"]}))
    assert offers == [] and reasons(selection) == {"C1": "no_products"}


def _baskets(newcomer: bool = False) -> ShopData:
    """Ten completed orders by product line (plus ones that are not baskets), all by C1:

    O1 camera, camera, memory-card   O6 memory-card
    O2 camera, memory-card           O7 drinks
    O3 camera, memory-card, tripod   O8 drinks, tripod
    O4 camera, tripod                O9 drinks
    O5 camera                        O10 drinks

    With ``newcomer``, C2 buys a camera alone (O11).
    """
    products = catalog(
        product("K1", "camera", 1, 500.0),
        product("K2", "camera", 2, 800.0),
        product("M1", "memory-card", None, 20.0),
        product("T1", "tripod", None, 60.0),
        product("DR", "", None, 5.0, category="drinks"),  # no line: the category is its kind
    )
    shop = Shop()
    shop.customer("C1")
    baskets = [
        ["K1", "K2", "M1"], ["K1", "M1"], ["K1", "M1", "T1"], ["K1", "T1"], ["K1"],
        ["M1"], ["DR"], ["DR", "T1"], ["DR"], ["DR"],
    ]  # fmt: skip
    for basket in baskets:
        shop.order("C1", *[(pid, 1.0) for pid in basket])
    shop.order("C1", ("K1", 1.0), ("M1", 1.0), status="refunded")  # not baskets
    shop.order("C1", ("K1", 1.0), ("T1", 1.0), status="cancelled")
    shop.order("C1", ("K1", 1.0), ("T1", 1.0), status="pending")
    shop.order("C1", ("K1", 1.0), ("M1", 1.0), days=-1)  # after as-of
    if newcomer:
        shop.customer("C2")
        shop.order("C2", ("K1", 1.0))
    return shop.data(products)


def test_co_purchase_rules_match_a_hand_computation() -> None:
    loose = CoPurchase(min_support=0.1, min_confidence=0.1, min_lift=0.5)
    rules = co_purchase_rules(_baskets(), {"camera", "drinks"}, loose)
    # N = 10; n(camera) = 5, n(memory-card) = 4, n(tripod) = 3, n(drinks) = 4
    # camera -> memory-card: both 3 (O1-O3): support 3/10, confidence 3/5, lift 0.6 / (4/10) = 1.5
    # camera -> tripod: both 2 (O3, O4): support 2/10, confidence 2/5, lift 0.4 / (3/10) = 4/3
    # drinks -> tripod: both 1 (O8): support 1/10, confidence 1/4, lift 0.25 / (3/10) = 5/6
    got = [(r.antecedent, r.consequent, r.orders_both, r.support, r.confidence, r.lift) for r in rules]
    assert got == [
        ("camera", "memory-card", 3, pytest.approx(0.3), pytest.approx(0.6), pytest.approx(1.5)),
        ("camera", "tripod", 2, pytest.approx(0.2), pytest.approx(0.4), pytest.approx(4 / 3)),
        ("drinks", "tripod", 1, pytest.approx(0.1), pytest.approx(0.25), pytest.approx(5 / 6)),
    ]


@pytest.mark.parametrize(
    "thresholds",
    [
        CoPurchase(min_support=0.1, min_confidence=0.1, min_lift=1.5),  # lift 1.5 is enough; 4/3 is not
        CoPurchase(min_support=0.3, min_confidence=0.1, min_lift=0.5),  # support 0.3 is enough; 0.2 is not
        CoPurchase(min_support=0.1, min_confidence=0.6, min_lift=0.5),  # confidence 0.6 is; 0.4 is not
    ],
)
def test_co_purchase_thresholds_filter_rules(thresholds: CoPurchase) -> None:
    rules = co_purchase_rules(_baskets(), {"camera", "drinks"}, thresholds)
    assert [(r.antecedent, r.consequent) for r in rules] == [("camera", "memory-card")]


def test_cross_sell_by_co_purchase_alone() -> None:
    # with O11: N = 11, n(camera) = 6, n(memory-card) = 4, n(tripod) = 3
    # camera -> memory-card: confidence 3/6, lift 0.5 / (4/11) = 1.375
    # camera -> tripod: confidence 2/6, lift (1/3) / (3/11) = 11/9 = 1.22, below min_lift 1.3
    spec = cross_sell(co_purchase={"min_support": 0.1, "min_confidence": 0.1, "min_lift": 1.3})
    [offer], selection = offers_of(_baskets(newcomer=True), spec)
    assert who(selection, offer) == ["C1", "C2"]
    assert offer.product_ids == ["M1"]
    assert offer.products["served"].tolist() == [1]  # C1 owns it already
    assert offer.products["reason"][0] == "bought together with camera in 50% of its orders (lift 1.4)"


# --- downsell -----------------------------------------------------------------------------------------

DRINKS = catalog(
    product("T1", DRINK, 1, 80.0),
    product("T1-out", DRINK, 1, 70.0, available=False),
    product("T2", DRINK, 2, 90.0),  # exactly (1 - 0.10) x 100
    product("T2-plus", DRINK, 2, 90.01),
    product("T3", DRINK, 3, 100.0),
    product("K1", "camera", 1, 50.0),
)


def test_downsell_shows_cheaper_products_of_the_line_viewed() -> None:
    shop = Shop()
    shop.prospect("P1")
    shop.view("P1", "T3", days=5)
    shop.view("P1", "K1", days=4)  # a cheap camera does not lower the drink floor
    offers, selection = offers_of(shop.data(DRINKS), downsell(min_price_decrease=0.10))
    [offer] = offers
    assert offer.name == "test" and who(selection, offer) == ["P1"]
    assert offer.product_ids == ["T2", "T1"]  # closest to the floor first
    assert offer.products["reason"].tolist() == [
        "tier 2 10% below the cheapest health-drink viewed",
        "tier 1 20% below the cheapest health-drink viewed",
    ]


def test_downsell_floor_is_the_cheapest_viewed_in_the_window() -> None:
    shop = Shop()
    shop.prospect("P1")
    shop.view("P1", "T3", days=10)
    shop.view("P1", "T2", days=70)  # outside the 60-day window: the floor stays 100
    shop.prospect("P2")
    shop.view("P2", "T3", days=10)
    shop.view("P2", "T2", days=20)  # floor 90: at most 81
    shop.prospect("P3")
    shop.view("P3", "T1", days=3)  # the cheapest product: nothing cheaper to show
    offers, selection = offers_of(shop.data(DRINKS), downsell())
    assert [(o.name, who(selection, o), o.product_ids) for o in offers] == [
        ("test--health-drink-t3", ["P1"], ["T2", "T1"]),
        ("test--health-drink-t2", ["P2"], ["T1"]),
    ]
    assert reasons(selection)["P3"] == "no_products"


def test_prospects_who_viewed_only_long_ago_are_not_candidates() -> None:
    shop = Shop()
    shop.prospect("P1")
    shop.view("P1", "T3", days=61)
    shop.prospect("P2")
    shop.view("P2", "T3", days=-1)  # after as-of
    offers, selection = offers_of(shop.data(DRINKS), downsell())
    assert offers == [] and selection.counts() == {"candidates": 0, "members": 0, "excluded": {}}


def test_downsell_key_is_the_tier_of_the_cheapest_viewed() -> None:
    products = catalog(
        product("T1", DRINK, 1, 80.0),
        product("Plain", DRINK, None, 100.0),  # no tier
        product("T3", DRINK, 3, 150.0),
    )
    shop = Shop()
    shop.prospect("P1")
    shop.view("P1", "Plain", days=3)  # the cheapest P1 viewed: floor 100
    shop.view("P1", "T3", days=2)
    shop.prospect("P2")
    shop.view("P2", "T3", days=2)  # floor 150
    offers, selection = offers_of(shop.data(products), downsell())
    assert [(o.name, who(selection, o)) for o in offers] == [
        ("test--health-drink-t3", ["P2"]),
        ("test--health-drink", ["P1"]),
    ]


# --- offers -------------------------------------------------------------------------------------------


def test_meta_filter_lists_the_set_in_order() -> None:
    products = pd.DataFrame({"id": ["B", "A", "C"]})
    offer = Offer("x", "x", "", "upsell", members=pd.Series([0]).to_numpy(), products=products)
    assert offer.meta_filter() == {
        "or": [{"retailer_id": {"eq": "B"}}, {"retailer_id": {"eq": "A"}}, {"retailer_id": {"eq": "C"}}]
    }


def test_google_labels_give_the_shared_value_or_the_sorted_values() -> None:
    products = catalog(
        product("T1", DRINK, 1, 100.0, custom_label_0=DRINK, custom_label_1="1", custom_label_2=""),
        product("T3", DRINK, 3, 120.0, custom_label_0=DRINK, custom_label_1="3", custom_label_2=""),
        product("T2", DRINK, 2, 110.0, custom_label_0=DRINK, custom_label_1="2", custom_label_2=""),
    )
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("T1", 100.0))
    [offer], _ = offers_of(shop.data(products), upsell())
    assert offer.product_ids == ["T2", "T3"]
    assert offer.google_labels() == {"custom_label_0": DRINK, "custom_label_1": ["2", "3"]}
