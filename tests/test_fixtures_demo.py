"""The demo fixtures are generated, not hand-edited: regenerating them must reproduce the committed bytes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
GENERATOR = DEMO / "generate.py"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    # run from an unrelated working directory: the generator must not depend on cwd
    subprocess.run([sys.executable, str(GENERATOR), str(out)], check=True, cwd=out, timeout=300)
    return out


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_regenerating_reproduces_the_committed_files(regenerated: Path) -> None:
    produced = sorted(p.name for p in regenerated.iterdir())
    assert "catalog.csv" in produced and "catalog_cases.json" in produced
    for name in produced:
        committed = DEMO / name
        assert committed.exists(), f"{name} is generated but not committed; run fixtures/demo/generate.py"
        assert committed.read_bytes() == (regenerated / name).read_bytes(), (
            f"fixtures/demo/{name} differs from the generator's output; run .venv/bin/python "
            "fixtures/demo/generate.py and commit the result"
        )


def test_catalog_cases_point_at_catalog_rows() -> None:
    rows = _read(DEMO / "catalog.csv")
    skus = [r["sku"] for r in rows]
    cases = json.loads((DEMO / "catalog_cases.json").read_text(encoding="utf-8"))
    assert len(cases) >= 18
    for name, case in cases.items():
        assert case["sku"] in skus, name
        assert case["note"], name
    dup = cases["duplicate_id"]
    first, second = dup["rows"]
    assert first < second
    assert skus[first - 1] == skus[second - 1] == dup["sku"]
    assert skus.count(dup["sku"]) == 2
    assert len(set(skus)) == len(skus) - 1  # the only repeated id is the duplicate_id case


def test_orders_use_clean_catalog_products_and_known_customers() -> None:
    skus = {r["sku"] for r in _read(DEMO / "catalog.csv")}
    bad = {c["sku"] for c in json.loads((DEMO / "catalog_cases.json").read_text(encoding="utf-8")).values()}
    customers = {r["customer_id"] for r in _read(DEMO / "customers.csv")}
    orders = _read(DEMO / "orders.csv")
    assert {o["product_id"] for o in orders} <= skus - bad
    assert {o["customer_id"] for o in orders} <= customers
    prospects = {r["prospect_id"] for r in _read(DEMO / "prospects.csv")}
    assert {v["prospect_id"] for v in _read(DEMO / "views.csv")} <= prospects
    assert not prospects & customers


def test_demo_audiences_have_enough_recent_consenting_buyers() -> None:
    line = {r["sku"]: r["line"] for r in _read(DEMO / "catalog.csv")}
    consent = {
        r["customer_id"]
        for r in _read(DEMO / "customers.csv")
        if r["ads_consent"].strip().lower() in {"true", "yes", "y", "1"}
    }
    buyers: dict[str, set[str]] = {"health-drink": set(), "camera": set()}
    for o in _read(DEMO / "orders.csv"):
        if o["ordered_at"] >= "2026-08-22" and o["status"] == "completed" and line[o["product_id"]] in buyers:
            buyers[line[o["product_id"]]].add(o["customer_id"])
    assert len(buyers["health-drink"] & consent) >= 400
    assert len(buyers["camera"] & consent) >= 200
