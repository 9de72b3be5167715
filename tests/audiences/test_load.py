"""Loading the people-side tables: row counts, typing, consent, problems and suppression hashes."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from audiences.config import load_config
from audiences.load import (
    Tables,
    consent_flags,
    load_tables,
    parse_timestamps,
    person_hashes,
    suppression_hashes,
)

DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo"
SECTIONS = ("customers", "orders", "satisfaction", "complaints", "prospects", "views", "suppression")


def _records(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo() -> Tables:
    return load_tables(load_config(DEMO / "retarget.yaml"))


def _write(path: Path, text: str) -> None:
    path.write_text(text.strip() + "\n", encoding="utf-8")


def _shop(tmp_path: Path, orders: str, customers: str = "customer_id,email\nC1,a@example.com") -> Tables:
    _write(tmp_path / "customers.csv", customers)
    _write(tmp_path / "orders.csv", orders)
    _write(
        tmp_path / "shop.yaml",
        "shop: {name: T, currency: JPY, default_country: JP}\n"
        "customers: {source: {path: customers.csv}}\norders: {source: {path: orders.csv}}\n",
    )
    return load_tables(load_config(tmp_path / "shop.yaml"))


def test_demo_loads_every_table_with_the_csv_row_counts(demo: Tables) -> None:
    assert len(_records(DEMO / "customers.csv")) == 5000
    assert len(_records(DEMO / "prospects.csv")) == 1500
    for name in SECTIONS:
        frame = getattr(demo, name)
        assert frame is not None, name
        expected = len(_records(DEMO / f"{name}.csv"))
        assert demo.counts[name]["read"] == expected, name
        assert len(frame) == demo.counts[name]["kept"]
        assert demo.counts[name]["read"] == demo.counts[name]["kept"] + demo.counts[name]["problems"]
        assert int((demo.problems["table"] == name).sum()) >= demo.counts[name]["problems"]


def test_demo_types(demo: Tables) -> None:
    assert demo.orders is not None and demo.customers is not None
    assert str(demo.orders["ordered_at"].dt.tz) == "UTC"
    assert pd.api.types.is_numeric_dtype(demo.orders["unit_price"])
    assert set(demo.orders["status"]) <= {"completed", "refunded", "cancelled"}
    for flag in ("ads_ok", "ad_user_data_ok", "ad_personalization_ok"):
        assert demo.customers[flag].dtype == bool
    assert "_row" in demo.orders.columns


def test_consent_values() -> None:
    values = pd.Series(["TRUE", "yes", "Y", "1", " y ", "no", "0", "", "maybe", "True", "false"])
    expected = [True, True, True, True, True, False, False, False, False, True, False]
    assert consent_flags(values).tolist() == expected


def test_timestamps_with_offsets_and_naive() -> None:
    parsed = parse_timestamps(
        pd.Series(["2025-06-11T09:14:19+09:00", "2025-06-11 09:14:19", "2025-06-11", "2025/06/11 10:00Z", ""])
    )
    assert str(parsed.dt.tz) == "UTC"
    assert parsed[0] == pd.Timestamp("2025-06-11T00:14:19Z")
    assert parsed[1] == pd.Timestamp("2025-06-11T09:14:19Z")  # naive is taken as UTC
    assert parsed[2] == pd.Timestamp("2025-06-11T00:00:00Z")
    assert parsed[3] == pd.Timestamp("2025-06-11T10:00:00Z")
    assert pd.isna(parsed[4])
    mixed = parse_timestamps(pd.Series(["2025-06-11T09:14:19+09:00", "June 11, 2025 10:00 +0900", "junk"]))
    assert mixed[1] == pd.Timestamp("2025-06-11T01:00:00Z") and pd.isna(mixed[2])  # the mixed-format path


def test_bad_rows_land_in_problems_without_values(tmp_path: Path) -> None:
    orders = """
order_id,customer_id,ordered_at,status,product_id,quantity,unit_price,currency
O1,C1,2025-06-11T09:14:19+09:00, Completed ,P1,1,100,JPY
O2,C1,not-a-date-secret,completed,P1,1,100,JPY
 ,C1,2025-06-11T09:14:19,completed,P1,1,100,JPY
O4,C1,2025-06-12,refunded,P1,two,100,JPY
O5,C1,,completed,P1,1,,JPY
"""
    customers = "customer_id,email,ads_consent\nC1,a@example.com,yes\n  ,b@example.com,no"
    tables = _shop(tmp_path, orders, customers)
    assert tables.orders is not None and tables.customers is not None
    assert tables.orders["order_id"].tolist() == ["O1"]
    assert tables.orders["status"].tolist() == ["completed"]
    assert tables.customers["customer_id"].tolist() == ["C1"]
    assert tables.counts["orders"] == {"read": 5, "kept": 1, "problems": 4}
    assert tables.counts["customers"] == {"read": 2, "kept": 1, "problems": 1}
    got = {tuple(r) for r in tables.problems[["table", "row", "field", "reason"]].itertuples(index=False)}
    assert got == {
        ("orders", 2, "ordered_at", "not a date/time"),
        ("orders", 3, "order_id", "blank"),
        ("orders", 4, "quantity", "not a number"),
        ("orders", 5, "ordered_at", "blank"),
        ("orders", 5, "unit_price", "blank"),
        ("customers", 2, "customer_id", "blank"),
    }
    text = tables.problems.to_csv()
    assert "secret" not in text and "example.com" not in text and "two" not in text
    assert tables.satisfaction is None and tables.suppression is None and "views" not in tables.counts


def test_suppression_row_without_identifier_is_a_problem(tmp_path: Path) -> None:
    _write(tmp_path / "suppression.csv", "email,phone,email_sha256,phone_sha256\na@b.co,,,\n,,nothex,\n,,,")
    _write(
        tmp_path / "s.yaml", "shop: {name: T, currency: JPY}\nsuppression: {source: {path: suppression.csv}}"
    )
    tables = load_tables(load_config(tmp_path / "s.yaml"))
    assert tables.counts["suppression"] == {"read": 3, "kept": 1, "problems": 2}
    assert tables.problems["row"].tolist() == [2, 3]


def test_messy_email_and_its_prehash_give_the_same_hash() -> None:
    digest = hashlib.sha256(b"foo@example.com").hexdigest()
    frame = pd.DataFrame(
        {
            "email": [" Foo@Example.COM ", ""],
            "phone": ["", "090-1234-5678"],
            "email_sha256": ["", digest.upper()],
            "phone_sha256": ["", "not-a-hash"],
        }
    )
    hashes = suppression_hashes(Tables(suppression=frame), "JP")
    phone = hashlib.sha256(b"819012345678").hexdigest()
    assert sorted(hashes) == sorted({digest, phone})
    person = person_hashes(pd.DataFrame({"email": ["foo@example.com"], "phone": [""]}), "JP")
    assert person.loc[0, "email_sha256"] == digest and person.loc[0, "phone_sha256"] == ""
    assert person["email_sha256"].isin(hashes).all()


def test_demo_suppression_entry_matches_its_customer(demo: Tables) -> None:
    customers = {r["email"].strip().lower(): r["customer_id"] for r in _records(DEMO / "customers.csv")}
    entries = [r["email"].strip().lower() for r in _records(DEMO / "suppression.csv") if r["email"].strip()]
    email = next(e for e in entries if e in customers)
    assert demo.customers is not None
    hashes = suppression_hashes(demo, "JP")
    assert hashlib.sha256(email.encode()).hexdigest() in hashes
    person = person_hashes(demo.customers, "JP")
    suppressed = demo.customers.loc[person["email_sha256"].isin(hashes), "customer_id"]
    assert customers[email] in set(suppressed)
    assert all(len(h) == 64 and h == h.lower() for h in hashes)
