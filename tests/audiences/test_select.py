"""audiences.select on small hand-built shops: who is a candidate, who is left out and why.

Every selection goes through ``run``, which also checks ``candidates == members + sum(excluded)``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import numpy as np

from audiences.rules import Audience
from audiences.select import REASONS, UNKNOWN_CUSTOMER, members_of
from tests.audiences.shops import AS_OF, Shop, audience, catalog, member_ids, product, reasons, run

PRODUCTS = catalog(
    product("D1", "health-drink", 1, 100.0),
    product("D2", "health-drink", 2, 120.0),
    product("D3", "health-drink", 3, 150.0),
    product("K1", "camera", 1, 500.0),
)


def buyers(**changes: Any) -> Audience:
    """Bought a health drink in the last 90 days (what each test changes is given as keyword)."""
    purchased = {"line": "health-drink", "within_days": 90} | changes.pop("purchased", {})
    return audience(who="purchasers", purchased=purchased, **changes)


def test_reasons_order_puts_consent_and_suppression_first() -> None:
    assert REASONS[:3] == ("no_consent", "suppressed", "already_customer")
    assert REASONS[-2:] == ("no_identifier", "no_products")


def test_a_person_without_ads_consent_is_never_a_member() -> None:
    shop = Shop()
    for cid, consent in [("C1", "yes"), ("C2", "no"), ("C3", ""), ("C4", " TRUE ")]:
        shop.customer(cid, consent=consent)
        shop.order(cid, ("D1", 100.0))
    selection = run(shop.data(PRODUCTS), buyers())
    assert reasons(selection) == {"C1": "", "C2": "no_consent", "C3": "no_consent", "C4": ""}
    assert selection.counts() == {"candidates": 4, "members": 2, "excluded": {"no_consent": 2}}


def test_suppression_by_raw_email_raw_phone_and_prehashed_email() -> None:
    shop = Shop()
    shop.customer("C1", email="alice@example.com")
    shop.customer("C2", email="", phone="(650) 555-0100", country="US")
    shop.customer("C3", email="carol@example.com")
    shop.customer("C4", email="dave@example.com", phone="(650) 555-0199")
    for cid in ("C1", "C2", "C3", "C4"):
        shop.order(cid, ("D1", 100.0))
    shop.suppress(email=" Alice@Example.COM ")
    shop.suppress(phone="+1 650-555-0100")  # other formatting than the customer's, same number
    shop.suppress(email_sha256=hashlib.sha256(b"carol@example.com").hexdigest().upper())
    selection = run(shop.data(PRODUCTS), buyers())
    assert reasons(selection) == {"C1": "suppressed", "C2": "suppressed", "C3": "suppressed", "C4": ""}
    assert selection.counts()["excluded"] == {"suppressed": 3}


def test_suppression_applies_to_prospects_too_before_already_customer() -> None:
    shop = Shop()
    shop.customer("C1", email="kim@example.com")
    shop.prospect("P1", email="pat@example.com")
    shop.prospect("P2", email="sam@example.com")
    shop.prospect("P3", email="kim@example.com")  # a customer, and suppressed
    shop.suppress(email="pat@example.com")
    shop.suppress(email="kim@example.com")
    selection = run(shop.data(PRODUCTS), audience(who="prospects"))
    assert reasons(selection) == {"P1": "suppressed", "P2": "", "P3": "suppressed"}


def test_consent_comes_before_suppression() -> None:
    shop = Shop()
    shop.customer("C1", email="alice@example.com", consent="no")
    shop.order("C1", ("D1", 100.0))
    shop.suppress(email="alice@example.com")
    selection = run(shop.data(PRODUCTS), buyers())
    assert reasons(selection) == {"C1": "no_consent"}


def test_a_prospect_who_is_a_customer_is_left_out() -> None:
    shop = Shop()
    shop.customer("C1", email="alice@example.com")
    shop.customer("C2", email="", phone="(650) 555-0100")
    shop.prospect("P1", email=" ALICE@example.com")
    shop.prospect("P2", email="", phone="+1 650 555 0100")
    shop.prospect("P3", email="bob@example.com")
    selection = run(shop.data(PRODUCTS), audience(who="prospects"))
    assert reasons(selection) == {"P1": "already_customer", "P2": "already_customer", "P3": ""}


def test_only_completed_lines_qualify() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3", "C4"):
        shop.customer(cid)
    shop.order("C1", ("D1", 100.0), status="refunded")
    shop.order("C2", ("D1", 100.0), status="cancelled")
    shop.order("C3", ("D1", 100.0), status="pending")
    shop.order("C3", ("K1", 500.0))  # completed, but not a health drink
    shop.order("C4", ("D1", 100.0))
    selection = run(shop.data(PRODUCTS), buyers())
    assert reasons(selection) == {"C4": ""}


def test_refunds_and_cancellations_in_the_window_exclude() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3", "C4"):
        shop.customer(cid)
        shop.order(cid, ("D1", 100.0), days=5)
    shop.order("C1", ("K1", 500.0), days=30, status="refunded")  # any order counts, not only the line
    shop.order("C2", ("D2", 120.0), days=59, status="cancelled")
    shop.order("C3", ("D2", 120.0), days=61, status="refunded")  # before the 60-day window
    shop.order("C4", ("D2", 120.0), days=-1, status="refunded")  # after as-of: not seen yet
    selection = run(shop.data(PRODUCTS), buyers(exclude={"refunded_within_days": 60}))
    assert reasons(selection) == {"C1": "refunded", "C2": "refunded", "C3": "", "C4": ""}


def test_recency_window_counts_back_from_as_of() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3", "C4"):
        shop.customer(cid)
    shop.order("C1", ("D1", 100.0), days=91)
    shop.order("C2", ("D1", 100.0), days=89)
    shop.order("C3", ("D1", 100.0), days=-1)  # after as-of: ignored
    shop.order("C4", ("D1", 100.0), days=90.5)  # half a day too old
    selection = run(shop.data(PRODUCTS), buyers())
    assert reasons(selection) == {"C2": ""}
    later = run(shop.data(PRODUCTS, AS_OF + timedelta(days=2)), buyers())
    assert reasons(later) == {"C3": ""}  # two days later, C2's order is 91 days old and C3's 1 day


def test_same_as_of_gives_the_same_selection() -> None:
    shop = Shop()
    for i, days in enumerate([1, 30, 80, 95, -3]):
        cid = shop.customer(f"C{i}", consent="no" if i == 2 else "yes")
        shop.order(cid, ("D1", 100.0), ("D2", 120.0), days=days)
    spec = buyers()
    first, second = run(shop.data(PRODUCTS), spec), run(shop.data(PRODUCTS), spec)
    assert first.counts() == second.counts() == {"candidates": 3, "members": 2, "excluded": {"no_consent": 1}}
    assert np.array_equal(first.candidates, second.candidates)
    assert first.reason.tolist() == second.reason.tolist()
    assert np.array_equal(first.anchor, second.anchor)


def test_min_orders_counts_distinct_orders_not_lines() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3"):
        shop.customer(cid)
    shop.order("C1", ("D1", 100.0), ("D2", 120.0), ("D3", 150.0))  # one order, three lines
    shop.order("C2", ("D1", 100.0), days=10)
    shop.order("C2", ("D1", 100.0), days=20)
    shop.order("C3", ("D1", 100.0), days=10)
    shop.order("C3", ("D1", 100.0), days=100)  # outside the window
    selection = run(shop.data(PRODUCTS), buyers(purchased={"min_orders": 2}))
    assert reasons(selection) == {"C2": ""}


def test_min_spend_is_quantity_times_unit_price_of_qualifying_lines() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3", "C4"):
        shop.customer(cid)
    shop.order("C1", ("D1", 60.0, 2))  # 2 x 60 = 120
    shop.order("C2", ("D1", 119.99))
    shop.order("C3", ("D1", 50.0), ("K1", 500.0))  # the camera does not count: 50
    shop.order("C4", ("D1", 70.0), days=10)
    shop.order("C4", ("D2", 50.0), days=20)  # 70 + 50 = 120, exactly the minimum
    selection = run(shop.data(PRODUCTS), buyers(purchased={"min_spend": 120}))
    assert reasons(selection) == {"C1": "", "C4": ""}


def test_complaints_opened_in_the_window_or_still_open_exclude() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6"):
        shop.customer(cid)
        shop.order(cid, ("D1", 100.0))
    shop.complaint("C1", days=10, status="closed")  # opened in the 60-day window
    shop.complaint("C2", days=200, status="open")  # old, but still open
    shop.complaint("C3", days=200, status="closed")
    shop.complaint("C4", days=200, status="resolved")
    shop.complaint("C5", days=-5, status="open")  # opened after as-of
    selection = run(shop.data(PRODUCTS), buyers(exclude={"complaint_within_days": 60}))
    expected = {"C1": "complaint", "C2": "complaint", "C3": "", "C4": "", "C5": "", "C6": ""}
    assert reasons(selection) == expected


def test_satisfaction_uses_the_latest_score() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3", "C4", "C5"):
        shop.customer(cid)
        shop.order(cid, ("D1", 100.0))
    shop.score("C1", 9, days=10)  # listed first, but the latest: recovered
    shop.score("C1", 3, days=200)
    shop.score("C2", 9, days=200)
    shop.score("C2", 3, days=10)  # fell
    shop.score("C3", 7, days=10)  # not below 7
    shop.score("C4", 9, days=10)
    shop.score("C4", 2, days=-5)  # after as-of
    selection = run(shop.data(PRODUCTS), buyers(exclude={"satisfaction_below": 7}))
    assert reasons(selection) == {"C1": "", "C2": "low_satisfaction", "C3": "", "C4": "", "C5": ""}


def test_exclude_purchased_leaves_out_who_already_owns_it() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3"):
        shop.customer(cid)
        shop.order(cid, ("D1", 100.0))
    shop.order("C1", ("D3", 150.0), days=400)  # owned long ago still counts
    shop.order("C3", ("D3", 150.0), status="refunded")  # returned: does not own it
    spec = buyers(exclude={"purchased": {"line": "health-drink", "tier": 3}})
    selection = run(shop.data(PRODUCTS), spec)
    assert reasons(selection) == {"C1": "already_purchased", "C2": "", "C3": ""}


def test_exclude_audiences_leaves_out_members_of_the_other_audience() -> None:
    shop = Shop()
    for cid in ("C1", "C2", "C3"):
        shop.customer(cid)
        shop.order(cid, ("D1", 100.0))
    shop.order("C1", ("K1", 500.0))
    shop.order("C2", ("K1", 500.0))  # a camera buyer, but not a member of the cameras audience:
    shop.order("C2", ("K1", 500.0), status="refunded")  # it leaves out who returned something
    data = shop.data(PRODUCTS)
    cameras = audience(
        name="cameras",
        who="purchasers",
        purchased={"line": "camera", "within_days": 90},
        exclude={"refunded_within_days": 90},
    )
    built = {"cameras": members_of(run(data, cameras))}
    selection = run(data, buyers(exclude={"audiences": ["cameras"]}), built)
    assert reasons(selection) == {"C1": "in_excluded_audience", "C2": "", "C3": ""}


def test_a_candidate_without_a_usable_email_or_phone_has_no_identifier() -> None:
    shop = Shop()
    shop.customer("C1", email="not-an-email", phone="")
    shop.customer("C2", email="", phone="(650) 555-0100")
    shop.customer("C3", email="", phone="12")
    shop.customer("C4", email="c4@example.com", phone="junk")
    for cid in ("C1", "C2", "C3", "C4"):
        shop.order(cid, ("D1", 100.0))
    selection = run(shop.data(PRODUCTS), buyers())
    assert reasons(selection) == {"C1": "no_identifier", "C2": "", "C3": "no_identifier", "C4": ""}


def test_orders_of_unknown_customers_are_counted_but_never_members() -> None:
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("D1", 100.0))
    shop.order("GHOST1", ("D1", 100.0), ("D2", 120.0))  # two lines, one unknown customer
    shop.order("GHOST1", ("D1", 100.0))
    shop.order("GHOST2", ("D1", 100.0))
    shop.order("GHOST3", ("K1", 500.0))  # not a health drink
    selection = run(shop.data(PRODUCTS), buyers())
    assert member_ids(selection) == ["C1"]
    assert selection.counts() == {"candidates": 3, "members": 1, "excluded": {UNKNOWN_CUSTOMER: 2}}
    twice = run(shop.data(PRODUCTS), buyers(purchased={"min_orders": 2}))  # only GHOST1 has two orders
    assert twice.counts() == {"candidates": 1, "members": 0, "excluded": {UNKNOWN_CUSTOMER: 1}}


def test_each_candidate_gets_the_first_reason_that_applies() -> None:
    shop = Shop()
    shop.customer("C1", email="", consent="no")  # no consent and no identifier
    shop.customer("C2", email="c2@example.com")  # suppressed and refunded
    shop.customer("C3", email="")  # refunded and no identifier
    shop.customer("C4")  # complaint and low satisfaction
    shop.customer("C5")
    for cid in ("C1", "C2", "C3", "C4", "C5"):
        shop.order(cid, ("D1", 100.0))
    shop.suppress(email="c2@example.com")
    shop.order("C2", ("D2", 120.0), status="refunded")
    shop.order("C3", ("D2", 120.0), status="refunded")
    shop.complaint("C4", days=5, status="open")
    shop.score("C4", 1, days=5)
    spec = buyers(exclude={"refunded_within_days": 90, "complaint_within_days": 90, "satisfaction_below": 7})
    selection = run(shop.data(PRODUCTS), spec)
    expected = {"C1": "no_consent", "C2": "suppressed", "C3": "refunded", "C4": "complaint", "C5": ""}
    assert reasons(selection) == expected
    excluded = selection.counts()["excluded"]
    assert isinstance(excluded, dict)
    assert list(excluded) == ["no_consent", "suppressed", "refunded", "complaint"]  # in REASONS order


def test_the_anchor_is_the_latest_qualifying_purchase() -> None:
    shop = Shop()
    shop.customer("C1")
    shop.order("C1", ("D2", 120.0), days=30)
    shop.order("C1", ("D1", 100.0), days=10)
    shop.order("C1", ("K1", 500.0), days=1)  # later, but not a qualifying line
    selection = run(shop.data(PRODUCTS), buyers())
    assert PRODUCTS["id"][selection.anchor].tolist() == ["D1"]
