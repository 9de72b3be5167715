"""``audit_run`` on the demo shop's run folder: clean, then tampered one way at a time.

The demo is built once; each tampering test works on its own copy of the run folder and asserts the check
that must fail and the exact ``file:line`` it names.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from audiences.audit import AuditReport, Check, audit_run, format_report, is_phone, plaintext_hits
from audiences.build import build
from audiences.config import PipelineConfig, load_config
from audiences.exports import export_frame
from audiences.load import load_tables
from audiences.shopdata import People, prepare_people
from feedgen.clitools import DateParam

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
CONFIG = DEMO / "retarget.yaml"
AS_OF = "2026-11-20"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHECKS = ["files", "hashed_columns", "plain_columns", "no_plaintext", "counts_add_up"]
CAMERA = "audiences/camera-cross-sell"


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return load_config(CONFIG)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, config: PipelineConfig) -> Path:
    as_of = DateParam(end_of_day=True).convert(AS_OF, None, None)
    return build(config, CONFIG, as_of, tmp_path_factory.mktemp("audit")).run_dir


@pytest.fixture(scope="module")
def customers(config: PipelineConfig) -> People:
    people = prepare_people(load_tables(config), config.shop.default_country).customers
    assert people is not None
    return people


@pytest.fixture
def run(clean: Path, tmp_path: Path) -> Path:
    """A copy of the clean run folder to tamper with."""
    return Path(shutil.copytree(clean, tmp_path / clean.name))


def check(report: AuditReport, name: str) -> Check:
    (found,) = [c for c in report.checks if c.name == name]
    return found


def failing(report: AuditReport) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def set_cell(file: Path, line: int, column: str, value: str) -> None:
    """Put ``value`` in ``column`` of ``line`` (1-based, header = 1) of an unquoted CSV."""
    lines = file.read_text().split("\n")
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    file.write_text("\n".join(lines))


def meta_email_hashes(people: People) -> pd.Series:
    """Meta's e-mail hash of every person, as the audit computes it ("" where none)."""
    return export_frame(people.frame[["email"]], "meta", "JP").frame["email"]


# ---------------------------------------------------------------------------------------------------------
# The clean build


def test_the_clean_build_passes_every_check_without_config(clean: Path) -> None:
    report = audit_run(clean)
    assert [c.name for c in report.checks] == CHECKS
    assert report.passed, format_report(report)
    assert all(c.checked > 0 for c in report.checks)


def test_the_clean_build_passes_every_check_with_config(clean: Path, config: PipelineConfig) -> None:
    report = audit_run(clean, config)
    assert [c.name for c in report.checks] == [*CHECKS, "excluded_people_absent"]
    assert report.passed, format_report(report)
    assert check(report, "excluded_people_absent").checked > 0
    assert "names, e-mails and phones of the source" in check(report, "no_plaintext").description


# ---------------------------------------------------------------------------------------------------------
# Tampering, one way at a time


def test_a_plaintext_email_in_an_export_cell(run: Path) -> None:
    set_cell(run / CAMERA / "meta.csv", 17, "email", "someone@example.org")
    report = audit_run(run)
    where = f"{CAMERA}/meta.csv:17:"
    assert f"{where} an e-mail address in column email" in check(report, "no_plaintext").failures
    assert check(report, "hashed_columns").failures == [
        f"{where} hashed column email holds a value that is not 64-hex"
    ]
    assert failing(report) == {"files", "no_plaintext", "hashed_columns"}
    assert "someone@example.org" not in format_report(report)


def test_a_phone_number_in_the_plan(run: Path) -> None:
    plan = run / "plan.json"
    text = plan.read_text()
    line = text[: text.index('"description"')].count("\n") + 1
    plan.write_text(text.replace("Bought a health drink", "Call +81 90-1234-5678", 1))
    report = audit_run(run)
    assert check(report, "no_plaintext").failures == [f"plan.json:{line}: a phone number"]
    assert failing(report) == {"files", "no_plaintext"}
    assert "1234-5678" not in format_report(report)


def test_a_phone_number_in_an_export_cell(run: Path) -> None:
    set_cell(run / CAMERA / "google.csv", 5, "Phone", "090-1234-5678")
    report = audit_run(run)
    assert check(report, "no_plaintext").failures == [
        f"{CAMERA}/google.csv:5: a phone number in column Phone"
    ]
    assert f"{CAMERA}/google.csv:5: hashed column Phone holds a value that is not 64-hex" in (
        check(report, "hashed_columns").failures
    )


def test_a_changed_byte_breaks_the_checksum(run: Path) -> None:
    file = run / CAMERA / "tiktok.csv"
    data = bytearray(file.read_bytes())
    position = data.index(b"\n") + 1  # first byte of the first data row: a hex digit
    data[position] = ord("a") if data[position] != ord("a") else ord("b")
    file.write_bytes(bytes(data))
    report = audit_run(run)
    assert check(report, "files").failures == [f"{CAMERA}/tiktok.csv: sha256 differs from the manifest"]
    assert failing(report) == {"files"}


def test_an_extra_file_is_not_listed(run: Path) -> None:
    (run / "notes.txt").write_text("to do\nwrite to someone@example.org\n")
    report = audit_run(run)
    assert check(report, "files").failures == ["notes.txt: not listed in the manifest"]
    assert check(report, "no_plaintext").failures == ["notes.txt:2: an e-mail address"]


def test_a_hashed_blank(run: Path) -> None:
    set_cell(run / CAMERA / "tiktok.csv", 5, "EMAIL_SHA256", EMPTY_SHA256)
    report = audit_run(run)
    assert check(report, "hashed_columns").failures == [
        f"{CAMERA}/tiktok.csv:5: hashed column EMAIL_SHA256 holds the SHA-256 of the empty string"
    ]
    assert failing(report) == {"files", "hashed_columns"}


def test_a_column_neither_hashed_nor_plain(run: Path) -> None:
    file = run / CAMERA / "google.csv"
    file.write_text(file.read_text().replace(",Zip\n", ",City\n", 1))
    failures = check(audit_run(run), "plain_columns").failures
    assert f"{CAMERA}/google.csv:1: column City is neither hashed nor taken plain by google" in failures
    assert f"{CAMERA}/google.csv:1: column Zip of the manifest is missing from the header" in failures


def test_a_count_that_does_not_add_up(run: Path) -> None:
    manifest = run / "manifest.json"
    lines = manifest.read_text().split("\n")
    start = lines.index('    "camera-cross-sell": {')
    index = next(i for i in range(start, len(lines)) if '"members":' in lines[i])
    lines[index] = re.sub(r"\d+", lambda m: str(int(m[0]) + 1), lines[index])
    manifest.write_text("\n".join(lines))
    report = audit_run(run)
    failures = check(report, "counts_add_up").failures
    assert len(failures) == 2
    assert failures[0].startswith(
        f"manifest.json:{index + 1}: audience camera-cross-sell: 419 candidates != "
    )
    assert "sub-audiences hold 345, not its 346 members" in failures[1]
    assert failing(report) == {"counts_add_up"}  # the manifest is not checksummed by itself


@pytest.mark.parametrize("who", ["suppressed", "without consent"])
def test_an_excluded_persons_hash_in_an_export(
    run: Path, config: PipelineConfig, customers: People, who: str
) -> None:
    hashes = meta_email_hashes(customers)
    allowed = set(hashes[customers.ads_ok & ~customers.suppressed])
    if who == "suppressed":
        chosen = customers.suppressed
        reason = "a suppressed person"
    else:
        chosen = ~customers.ads_ok & ~customers.suppressed & ~hashes.isin(allowed).to_numpy()
        reason = "a person without ads consent"
    candidates = hashes[chosen & (hashes != "").to_numpy()]
    set_cell(run / CAMERA / "meta.csv", 10, "email", candidates.iloc[0])
    report = audit_run(run, config)
    assert check(report, "excluded_people_absent").failures == [
        f"{CAMERA}/meta.csv:10: column email holds the hash of {reason}"
    ]
    assert failing(report) == {"files", "excluded_people_absent"}


def test_a_shared_inbox_is_allowed_and_counted(clean: Path, customers: People, tmp_path: Path) -> None:
    """A person without consent who shares the e-mail of an exported, consenting person does not fail."""
    exported = set(pd.read_csv(clean / CAMERA / "meta.csv", dtype="str", keep_default_na=False)["email"])
    hashes = meta_email_hashes(customers)
    ok = customers.ads_ok & ~customers.suppressed & (hashes.isin(exported) & (hashes != "")).to_numpy()
    customer_id = customers.ids[ok][0]
    shop = Path(shutil.copytree(DEMO, tmp_path / "demo", ignore=shutil.ignore_patterns("out")))
    with (shop / "customers.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    twin = next(r for r in rows if r["customer_id"] == customer_id) | {
        "customer_id": "C99999",
        "ads_consent": "no",
    }
    with (shop / "customers.csv").open("a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(rows[0])).writerow(twin)
    report = audit_run(clean, load_config(shop / "retarget.yaml"))
    excluded = check(report, "excluded_people_absent")
    assert excluded.passed, excluded.failures
    shared = re.search(
        r"(\d+) cells hold a hash that a person without ads consent shares", excluded.description
    )
    assert shared is not None and int(shared[1]) >= 1


def test_a_missing_manifest_fails_every_manifest_check(run: Path) -> None:
    (run / "manifest.json").unlink()
    report = audit_run(run)
    assert check(report, "files").failures == ["manifest.json: missing or not a JSON object"]
    assert failing(report) == {"files", "hashed_columns", "plain_columns", "counts_add_up"}


# ---------------------------------------------------------------------------------------------------------
# The patterns


@pytest.mark.parametrize(
    "text",
    [
        "+81 90-1234-5678",
        "090-1234-5678",
        "(650) 555-1234",
        "+1 (650) 555-1234",
        "+44 (0)20 7946 0958",
        "020 7946 0958",
        "650.555.1234",
        "089 70255623",
        "+819012345678",
        "+49 30 1234567-0",
        "call 03-5263-2448 today",
    ],
)
def test_phone_numbers_are_found(text: str) -> None:
    assert plaintext_hits(text) == [(1, "a phone number")]


@pytest.mark.parametrize(
    "text",
    [
        "09012345678",  # digits only: an id or a count as much as a phone
        "2026-11-25T16:00:00+00:00",  # ISO date-time
        "2026.11-1",  # a version: the trailing single digit is not counted
        "2000-5000",  # a price band
        "1500.5-2999.99",
        "MC-064-U3",  # a product id
        "20261125T160800Z-2",  # a run id
        "+20% on the highest price",
        EMPTY_SHA256,
        "555-1234",
    ],
)
def test_what_is_not_a_phone_number(text: str) -> None:
    assert plaintext_hits(text) == []


def test_json_numbers_are_set_aside_but_json_strings_are_not() -> None:
    text = '{\n  "total": 1234567.25,\n  "note": "1234567.25"\n}'
    assert plaintext_hits(text, json_numbers=True) == [(3, "a phone number")]
    assert not is_phone("1234567")


def test_email_addresses_are_found_once_per_line() -> None:
    text = "a John.Doe@Example.COM and yuto@例え.jp\nno address@localhost here"
    assert plaintext_hits(text) == [(1, "an e-mail address")]


def test_format_report_shows_at_most_20_failures_per_check() -> None:
    report = AuditReport(
        "run",
        [Check("files", "listed files", 30, [f"f{i}.csv: missing" for i in range(25)]), Check("x", "y", 2)],
    )
    text = format_report(report)
    assert text.splitlines()[0] == "audit of run: FAIL"
    assert "FAIL  files  30 checked, 25 failed: listed files" in text
    assert "PASS  x      2 checked, 0 failed: y" in text
    assert "f19.csv: missing" in text and "f20.csv" not in text
    assert "… and 5 more" in text
