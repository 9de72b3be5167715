"""The demo catalog's deliberately bad rows each land where they should; the rest publish."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import pytest

from feedgen import build
from feedgen.config import load_config
from tests.feedgen.test_build import AS_OF

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
CASES = json.loads((DEMO / "catalog_cases.json").read_text(encoding="utf-8"))
ALL = ("meta", "google", "tiktok")

#: case -> (platforms that reject it, field, reason); None when the row must publish everywhere
REJECTED = {
    "missing_title": (ALL, "title", "missing"),
    "missing_price": (ALL, "price", "missing"),
    "missing_link": (ALL, "link", "missing"),
    "missing_image_link": (ALL, "image_link", "missing"),
    "missing_description": (ALL, "description", "missing"),
    "bad_gtin_check_digit": (("google",), "gtin", "invalid_gtin"),
    "over_long_title": (ALL, "title", "too_long"),
    "google_long_title": (("google",), "title", "too_long"),
    "relative_link": (ALL, "link", "invalid_url"),
    "bad_availability": (ALL, "availability", "invalid_value"),
    "negative_price": (ALL, "price", "invalid_price"),
    "duplicate_id": (ALL, "id", "duplicate_id"),
}
WARNED = {
    "sale_price_above_price": ("sale_price", "sale_price_not_lower"),
    "expired_sale": ("sale_price_effective_date", "sale_expired"),
    "bad_gtin_check_digit": ("gtin", "invalid_gtin"),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, build.FeedReport]:
    out = tmp_path_factory.mktemp("demo-feeds")
    job = build.FeedJob.from_config(load_config(DEMO / "retarget.yaml"), out)
    return out, build.run(job, as_of=AS_OF)


def rejects(out: Path) -> list[dict[str, str]]:
    with open(out / "rejects.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def meta_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "meta.csv", encoding="utf-8", newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_bad_rows_are_rejected_with_reason(demo: tuple[Path, build.FeedReport], case: str) -> None:
    out, _ = demo
    platforms, field, reason = REJECTED[case]
    sku = CASES[case]["sku"]
    errors = [r for r in rejects(out) if r["id"] == sku and r["severity"] == "error"]
    if case == "duplicate_id":
        errors = [r for r in errors if int(r["row"]) == CASES[case]["rows"][1]]
    assert {(r["platform"], r["field"], r["reason"]) for r in errors} >= {
        (p, field, reason) for p in platforms
    }
    assert {r["platform"] for r in errors} == set(platforms)
    published = meta_rows(out)
    if "meta" in platforms and case != "duplicate_id":
        assert sku not in published
    else:
        assert sku in published  # the first row of a duplicate, or a Google-only reject


@pytest.mark.parametrize("case", sorted(WARNED))
def test_warned_rows_still_publish(demo: tuple[Path, build.FeedReport], case: str) -> None:
    out, _ = demo
    field, reason = WARNED[case]
    sku = CASES[case]["sku"]
    assert any(r["id"] == sku and r["field"] == field and r["reason"] == reason for r in rejects(out))
    row = meta_rows(out)[sku]
    assert row["sale_price"] == "" if field.startswith("sale") else row["gtin"] == ""


def test_messy_text_is_cleaned_not_rejected(demo: tuple[Path, build.FeedReport]) -> None:
    out, _ = demo
    rows = meta_rows(out)
    html_desc = rows[CASES["html_description"]["sku"]]["description"]
    assert "<" not in html_desc and "&amp;" not in html_desc and "&#" not in html_desc
    control = rows[CASES["control_characters"]["sku"]]
    assert not any(
        unicodedata.category(ch) == "Cc" and ch not in "\n\t"
        for ch in control["title"] + control["description"]
    )
    title = rows[CASES["quotes_commas_newlines_title"]["sku"]]["title"]
    assert '"' in title and "," in title and "\n" not in title
    nfd = rows[CASES["nfd_text"]["sku"]]["title"]
    assert nfd == unicodedata.normalize("NFC", nfd) and "\u0301" not in nfd


def test_demo_counts_add_up(demo: tuple[Path, build.FeedReport]) -> None:
    _, report = demo
    for stats in report.formats.values():
        assert stats.rows_read == report.rows_read == stats.written + stats.rejected
        assert stats.written >= 0.9 * report.rows_read
