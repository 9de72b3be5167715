"""``audiences build`` and ``audiences preview`` end to end on the demo shop (fixtures/demo)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from audiences.cli import main
from audiences.config import load_config
from audiences.load import person_hashes
from audiences.plan import make_plan
from feedgen.clitools import DateParam

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
CONFIG = DEMO / "retarget.yaml"
AS_OF = "2026-11-20"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _build(out: Path, *extra: str) -> Path:
    result = CliRunner().invoke(
        main, ["build", "--config", str(CONFIG), "--as-of", AS_OF, "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (out / "runs").iterdir() if not p.name.startswith(".")]
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


@pytest.fixture(scope="module")
def plan(run: Path) -> dict:
    return json.loads((run / "plan.json").read_text())


def test_the_run_folder_and_every_file_are_owner_only(run: Path) -> None:
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    files = [p for p in run.rglob("*") if p.is_file()]
    assert files
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in run.rglob("*") if p.is_dir()} == {0o700}


def test_every_file_is_listed_with_its_checksum_and_rows(run: Path, manifest: dict) -> None:
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(listed) == on_disk
    for path, entry in listed.items():
        data = (run / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], path
        if path.endswith(".csv"):
            assert data.count(b"\n") - 1 == entry["rows"], path


def test_counts_add_up_and_each_demo_audience_clears_meta_minimum(manifest: dict) -> None:
    assert set(manifest["audiences"]) == {"drink-upsell", "camera-cross-sell", "drink-downsell"}
    for name, audience in manifest["audiences"].items():
        assert audience["candidates"] == audience["members"] + sum(audience["excluded"].values()), name
        assert audience["adds_up"] is True
        assert sum(audience["sub_audiences"].values()) == audience["members"]
        assert min(audience["sub_audiences"].values()) >= 100, name
        assert audience["normalization_spec_version"] == manifest["normalization_spec_version"]
        assert audience["config_digest"] == hashlib.sha256(CONFIG.read_bytes()).hexdigest()


def test_demo_strategies_and_exclusions_are_sensible(manifest: dict) -> None:
    upsell, cross, down = (
        manifest["audiences"][n] for n in ("drink-upsell", "camera-cross-sell", "drink-downsell")
    )
    assert (upsell["strategy"], cross["strategy"], down["strategy"]) == ("upsell", "cross_sell", "downsell")
    # the demo data holds opt-outs, suppressed people, refunds, complaints and unhappy customers
    for reason in ("no_consent", "suppressed", "refunded", "complaint", "low_satisfaction"):
        assert upsell["excluded"].get(reason, 0) > 0, reason
    # tier-3 buyers have nothing higher to be shown; the upsell splits by the tier bought
    assert upsell["excluded"]["no_products"] > 0
    assert sorted(upsell["sub_audiences"]) == [
        "drink-upsell--health-drink-t1",
        "drink-upsell--health-drink-t2",
    ]
    assert down["who"] == "prospects" and "refunded" not in down["excluded"]


def test_plan_lists_each_audience_and_sub_audience(plan: dict) -> None:
    entries = {e["name"]: e for e in plan["audiences"]}
    parent = entries["drink-upsell"]
    assert parent["parent"] is None and parent["product_set"] is None
    assert parent["sub_audiences"] == ["drink-upsell--health-drink-t1", "drink-upsell--health-drink-t2"]
    for name in parent["sub_audiences"]:
        sub = entries[name]
        assert sub["parent"] == "drink-upsell"
        assert sub["product_set"]["file"] == f"product_sets/{name}.json"
        assert sub["destinations"] == ["meta", "google", "tiktok"]
        assert sub["below_minimum"] is False
        assert sub["below_destination_minimum"] == []  # the demo config lowers TikTok's and Google's to 100
    assert entries["camera-cross-sell"]["product_set"]["size"] <= 10


def test_product_sets_carry_ids_reasons_and_platform_selectors(run: Path, plan: dict) -> None:
    files = sorted((run / "product_sets").glob("*.json"))
    assert [f.stem for f in files] == sorted(e["name"] for e in plan["audiences"] if e["product_set"])
    for path in files:
        data = json.loads(path.read_text())
        assert set(data) >= {
            "audience",
            "strategy",
            "members",
            "product_ids",
            "reasons",
            "meta_filter",
            "google_labels",
        }
        assert 0 < len(data["product_ids"]) <= 10
        assert set(data["reasons"]) == set(data["product_ids"]) and all(data["reasons"].values())
        assert data["meta_filter"] == {"or": [{"retailer_id": {"eq": pid}} for pid in data["product_ids"]]}
        assert data["google_labels"]["custom_label_0"]  # the feed's line label


def test_upsell_sets_keep_the_price_cap_and_tier_rule(run: Path) -> None:
    catalog = pd.read_csv(DEMO / "catalog.csv", dtype=str).set_index("sku")
    for tier in (1, 2):
        data = json.loads((run / f"product_sets/drink-upsell--health-drink-t{tier}.json").read_text())
        tiers = {int(catalog.loc[pid, "tier"]) for pid in data["product_ids"]}
        assert tiers == {tier + 1}
        assert all(f"tier {tier} → {tier + 1} of health-drink" in r for r in data["reasons"].values())


def test_exports_hold_only_hashes_and_the_plain_columns_platforms_require(run: Path, manifest: dict) -> None:
    plain_allowed = {p: set(cols) for p, cols in manifest["plain_columns"].items()}
    for audience in manifest["audiences"].values():
        for path, export in audience["exports"].items():
            frame = pd.read_csv(run / path, dtype=str, keep_default_na=False)
            assert set(export["plain_columns"]) <= plain_allowed[export["platform"]]
            for column in export["hashed_columns"]:
                values = frame[column]
                assert values.map(lambda v: v == "" or bool(HEX64.match(v))).all(), (path, column)
                assert not (values == EMPTY_SHA256).any()
            assert len(frame) == export["rows"]
            assert export["rows"] + sum(export["not_exported"].values()) == export["members"]


def test_no_plaintext_contact_data_anywhere_in_the_run(run: Path) -> None:
    customers = pd.read_csv(DEMO / "customers.csv", dtype=str, keep_default_na=False)
    prospects = pd.read_csv(DEMO / "prospects.csv", dtype=str, keep_default_na=False)
    people = pd.concat([customers, prospects])
    emails = {v.strip() for v in people["email"] if "@" in v}
    phones = {v.strip() for v in people["phone"] if len(re.sub(r"\D", "", v)) >= 7}
    names = {v.strip() for v in pd.concat([people["first_name"], people["last_name"]]) if len(v.strip()) >= 4}
    text = "\n".join(p.read_text(encoding="utf-8") for p in run.rglob("*") if p.is_file())
    text = re.sub(r"[0-9a-f]{64}", "", text)  # hashes may contain any short digit run
    assert "@" not in text
    assert emails and not [n for n in emails if n in text]
    assert phones and not [n for n in phones if n in text]
    found = [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]
    assert not found


def test_excluded_people_are_in_no_export(run: Path) -> None:
    config = load_config(CONFIG)
    plan = make_plan(config, DateParam(end_of_day=True).convert(AS_OF, None, None))
    exported: set[str] = set()
    for path in run.glob("audiences/*/meta.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        exported |= set(frame["email"]) | set(frame["phone"])
    exported.discard("")
    checked = 0
    for item in plan.audiences:
        selection = item.selection
        for reason in ("no_consent", "suppressed"):
            codes = selection.candidates[selection.reason == reason]
            hashes = person_hashes(selection.people.frame.iloc[codes], config.shop.default_country)
            members = selection.people.hashes.iloc[selection.members]
            shared = set(members["email_sha256"]) | set(members["phone_sha256"])  # a shared inbox stays
            leaked = (set(hashes["email_sha256"]) | set(hashes["phone_sha256"])) - {""} - shared
            assert not leaked & exported, (item.audience.name, reason)
            checked += len(codes)
    assert checked > 50


def test_the_same_as_of_gives_the_same_files(tmp_path: Path, run: Path, manifest: dict) -> None:
    again = _build(tmp_path)
    second = json.loads((again / "manifest.json").read_text())
    first_files = {
        f["path"]: f["sha256"] for f in manifest["files"] if f["path"] not in ("plan.json", "report.html")
    }
    second_files = {
        f["path"]: f["sha256"] for f in second["files"] if f["path"] not in ("plan.json", "report.html")
    }
    assert first_files == second_files
    strip = lambda p: {k: v for k, v in json.loads(p.read_text()).items() if k != "run_id"}  # noqa: E731
    assert strip(run / "plan.json") == strip(again / "plan.json")
    assert second["audiences"] == manifest["audiences"]


def test_a_later_as_of_sees_a_different_window(tmp_path: Path, manifest: dict) -> None:
    result = CliRunner().invoke(main, ["preview", "--config", str(CONFIG), "--as-of", "2026-03-01", "--json"])
    assert result.exit_code == 0, result.output
    earlier = {e["name"]: e for e in json.loads(result.output)["audiences"]}
    assert earlier["drink-upsell"]["candidates"] != manifest["audiences"]["drink-upsell"]["candidates"]


def test_two_builds_get_two_run_folders(tmp_path: Path) -> None:
    first, out = _build(tmp_path), tmp_path
    result = CliRunner().invoke(main, ["build", "--config", str(CONFIG), "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 2 and first.name in runs
    assert not [p for p in (out / "runs").iterdir() if p.name.endswith(".partial")]


def test_preview_json_has_sizes_exclusions_overlaps_and_reasons(manifest: dict) -> None:
    result = CliRunner().invoke(main, ["preview", "--config", str(CONFIG), "--as-of", AS_OF, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    entries = {e["name"]: e for e in data["audiences"]}
    for name, audience in manifest["audiences"].items():
        assert entries[name]["members"] == audience["members"]
        assert entries[name]["excluded"] == audience["excluded"]
    cross = entries["camera-cross-sell"]["product_set"]
    assert len(cross) == 3 and all(p["reason"] for p in cross)
    assert entries["camera-cross-sell"]["product_set_size"] == 10  # the whole set, of which 3 are shown
    pairs = {tuple(o["audiences"]): o["shared_members"] for o in data["overlaps"]}
    assert pairs[("drink-upsell", "drink-downsell")] == 0  # purchasers and prospects never mix
    assert data["warnings"] == []
    assert "@" not in result.output


def test_preview_warns_about_audiences_below_a_destination_minimum(tmp_path: Path) -> None:
    text = CONFIG.read_text().replace("path: ", f"path: {DEMO}/").replace(", min_members: 100", "")
    (tmp_path / "retarget.yaml").write_text(text)
    args = ["preview", "--config", str(tmp_path / "retarget.yaml"), "--as-of", AS_OF, "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.output)["warnings"]
    assert "camera-cross-sell: 345 members, below the minimum of google (1000), tiktok (1000)" in warnings
    assert len(warnings) == 4  # two upsell sub-audiences, the cross-sell and the downsell


def test_preview_table_writes_nothing(tmp_path: Path) -> None:
    before = sorted(DEMO.rglob("*"))
    result = CliRunner().invoke(main, ["preview", "--config", str(CONFIG), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "drink-upsell--health-drink-t1" in result.output and "overlaps" in result.output
    assert sorted(DEMO.rglob("*")) == before


def test_a_bad_as_of_or_config_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["preview", "--config", str(CONFIG), "--as-of", "20.11.2026"])
    assert result.exit_code == 2 and "2026-11-20" in result.output
    bad = tmp_path / "bad.yaml"
    text = CONFIG.read_text().replace("max_price_increase: 0.25", "max_price_rise: 0.25")
    bad.write_text(text.replace("path: ", f"path: {DEMO}/"))
    result = CliRunner().invoke(main, ["build", "--config", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "audiences[drink-upsell].pairing.max_price_rise" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_run_carries_its_audit_and_the_reviewer_page(run: Path, manifest: dict) -> None:
    assert manifest["audit"] == {"passed": True, "failed_checks": []}
    page = (run / "report.html").read_text(encoding="utf-8")
    assert manifest["run_id"] in page and "excluded_people_absent" in page
    result = CliRunner().invoke(main, ["audit", str(run), "--config", str(CONFIG)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"audit of {run}: PASS")


def test_audit_command_fails_on_a_tampered_run(tmp_path: Path, run: Path) -> None:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    (copy / "notes.txt").write_text("call +81 90-1234-5678\n")
    result = CliRunner().invoke(main, ["audit", str(copy), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    failed = {c["name"]: c["failures"] for c in data["checks"] if not c["passed"]}
    assert set(failed) == {"files", "no_plaintext"}
    assert any(f.startswith("notes.txt:1:") for f in failed["no_plaintext"])
    assert "1234" not in result.output  # the finding names the place, never the value


def test_a_build_that_fails_its_audit_exits_1_and_is_never_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiences import build as build_module
    from audiences.audit import AuditReport, Check

    def failing(run_dir: Path, config: object = None) -> AuditReport:
        return AuditReport(
            str(run_dir), [Check("no_plaintext", "test", 1, ["plan.json:3: an e-mail address"])]
        )

    monkeypatch.setattr(build_module, "audit_run", failing)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", "--config", str(CONFIG), "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 1
    assert "failed its audit" in result.output and "plan.json:3: an e-mail address" in result.output
    result = CliRunner().invoke(main, ["sync", "--config", str(CONFIG), "--out", str(out), "--dry-run"])
    assert result.exit_code == 1 and "failed its audit (no_plaintext)" in result.output


def test_tiktok_phones_are_hashed_in_the_form_the_destination_asks_for(tmp_path: Path, run: Path) -> None:
    text = CONFIG.read_text().replace("path: ", f"path: {DEMO}/")
    text = text.replace('advertiser_id: "7001",', 'advertiser_id: "7001", phone_format: digits,')
    (tmp_path / "retarget.yaml").write_text(text)
    args = [
        "build",
        "--config",
        str(tmp_path / "retarget.yaml"),
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "out"),
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    (digits,) = (tmp_path / "out" / "runs").iterdir()
    name = "audiences/camera-cross-sell/tiktok.csv"
    e164 = pd.read_csv(run / name, dtype=str, keep_default_na=False)
    plain = pd.read_csv(digits / name, dtype=str, keep_default_na=False)
    assert (e164["EMAIL_SHA256"] == plain["EMAIL_SHA256"]).all()  # e-mails do not depend on it
    phones = e164["PHONE_SHA256"] != ""
    assert (
        phones.sum() > 100
        and not (e164.loc[phones, "PHONE_SHA256"] == plain.loc[phones, "PHONE_SHA256"]).any()
    )
    result = CliRunner().invoke(main, ["audit", str(digits), "--config", str(tmp_path / "retarget.yaml")])
    assert result.exit_code == 0, result.output
