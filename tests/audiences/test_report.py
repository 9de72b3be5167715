"""``report.html``: the compliance reviewer's page, rendered from the demo run (fixtures/demo)."""

from __future__ import annotations

import copy
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from audiences.audit import AuditReport, Check
from audiences.build import build
from audiences.config import load_config
from audiences.report import REASON_WORDS, render_report, report_for_run
from feedgen.clitools import DateParam

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
CONFIG = DEMO / "retarget.yaml"
AS_OF = "2026-11-20"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
EMAIL_LIKE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
#: manifest, plan and product sets of the demo run
Inputs = tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]
People = tuple[set[str], set[str], set[str]]
FAILURE = "audiences/drink-downsell/meta.csv:17: plaintext e-mail address"


class _Page(HTMLParser):
    """Checks that tags nest and close, and collects table rows (with their section) and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.errors: list[str] = []
        self.rows: list[tuple[str | None, list[str]]] = []
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in VOID:
            return
        self.stack.append((tag, dict(attrs).get("id")))
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            section = next((i for t, i in reversed(self.stack) if t == "section" and i), None)
            self.rows.append((section, self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = load_config(CONFIG)
    as_of = DateParam(end_of_day=True).convert(AS_OF, None, None)
    return build(config, CONFIG, as_of, out=tmp_path_factory.mktemp("demo")).run_dir


@pytest.fixture(scope="module")
def inputs(run: Path) -> Inputs:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    plan = json.loads((run / "plan.json").read_text(encoding="utf-8"))
    sets = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (run / "product_sets").glob("*.json")}
    return manifest, plan, sets


@pytest.fixture(scope="module")
def audit() -> AuditReport:
    return AuditReport(
        run_dir="runs/demo",
        checks=[
            Check("checksums_match", "every file matches its manifest checksum", checked=16),
            Check("no_plaintext_contact", "no plaintext e-mail or phone in any file", 12, [FAILURE]),
        ],
    )


@pytest.fixture(scope="module")
def page(inputs: Inputs, audit: AuditReport) -> str:
    return render_report(*inputs, audit)


@pytest.fixture(scope="module")
def parsed(page: str) -> _Page:
    return _parse(page)


def _row_with(parsed: _Page, section: str | None, *cells: str) -> bool:
    """A table row in ``section`` (any section when None) whose cells contain every one of ``cells``."""
    return any(
        (section is None or where == section) and all(any(c in cell for cell in row) for c in cells)
        for where, row in parsed.rows
    )


def test_the_page_is_one_balanced_html5_document(page: str, parsed: _Page) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert not parsed.errors
    assert parsed.stack == []
    assert [t for t, _ in parsed.tags].count("html") == 1


def test_it_loads_nothing_from_anywhere(page: str, parsed: _Page) -> None:
    assert not re.search(r"https?://", page)
    for needle in ("<link", "<script", "<img", "<iframe", "@import", "url("):
        assert needle not in page.lower(), needle
    for tag, attrs in parsed.tags:
        for name in ("href", "src"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)


def test_header_shows_the_run_and_the_audit_result(page: str, inputs: Inputs) -> None:
    manifest = inputs[0]
    header = page[: page.index("</header>")]
    for key in ("run_id", "as_of", "created_at", "normalization_spec_version", "config_digest"):
        assert manifest[key] in header, key
    assert ">FAIL<" in header


def test_every_audience_and_sub_audience_is_named(page: str, inputs: Inputs) -> None:
    manifest, plan, _ = inputs
    names = set(manifest["audiences"]) | {e["name"] for e in plan["audiences"]}
    assert {"drink-upsell", "drink-upsell--health-drink-t1", "camera-cross-sell", "drink-downsell"} <= names
    for name in names:
        assert f"Sub-audience: {name}" in page or f"Audience: {name}" in page, name
    for audience in manifest["audiences"].values():
        for sub in audience["sub_audiences"]:
            assert f"Sub-audience: {sub}" in page
            assert f'id="aud-{sub}-detail"' in page


def test_each_exclusion_reason_is_shown_with_its_count_and_in_words(parsed: _Page, inputs: Inputs) -> None:
    for name, audience in inputs[0]["audiences"].items():
        assert audience["excluded"], name
        section = f"aud-{name}"
        assert _row_with(parsed, section, "members", f"{audience['members']:,}")
        for reason, count in audience["excluded"].items():
            assert _row_with(parsed, section, reason, REASON_WORDS[reason], f"{count:,}"), (name, reason)
        assert _row_with(parsed, section, "no_consent", "no ads consent")


def test_bars_are_proportional_to_the_candidates(page: str, inputs: Inputs) -> None:
    audience = inputs[0]["audiences"]["drink-upsell"]
    share = 100 * audience["excluded"]["no_products"] / audience["candidates"]
    assert f'style="width:{share:.1f}%"' in page


def test_counts_consent_and_export_details_are_shown(parsed: _Page, page: str, inputs: Inputs) -> None:
    manifest = inputs[0]
    for audience in manifest["audiences"].values():
        assert f"{audience['candidates']:,} candidates = {audience['members']:,} members" in page
        assert str(audience["consent"]["candidates_with_ads_consent"]) in page
        for path, export in audience["exports"].items():
            assert path in page
            sub = path.split("/")[1]
            for column, counts in export["key_counts"].items():
                total = sum(counts.values())
                pct = f"{100 * counts['valid'] / total:.1f}%"
                assert _row_with(parsed, f"aud-{sub}-detail", column, str(counts["valid"]), pct), (
                    path,
                    column,
                )
            for reason, count in export["not_exported"].items():
                assert _row_with(parsed, f"aud-{sub}-detail", reason, str(count)), (path, reason)
    assert "NO:" not in page  # every demo count adds up


def test_products_and_their_reasons_come_from_the_product_sets(parsed: _Page, inputs: Inputs) -> None:
    for name, product_set in inputs[2].items():
        assert product_set["product_ids"], name
        for pid in product_set["product_ids"]:
            assert _row_with(parsed, f"aud-{name}-detail", pid, product_set["reasons"][pid]), (name, pid)


def test_spec_version_and_each_files_checksum(page: str, parsed: _Page, inputs: Inputs) -> None:
    manifest = inputs[0]
    assert manifest["normalization_spec_version"] in page
    for entry in manifest["files"]:
        assert _row_with(parsed, "files", entry["path"], entry["sha256"], f"{entry['bytes']:,}"), entry[
            "path"
        ]


def test_plain_columns_are_explained(parsed: _Page, inputs: Inputs) -> None:
    assert inputs[0]["plain_columns"]["google"] == ["Country", "Zip"]
    assert _row_with(
        parsed, "explainer", "Google", "Country: Google Customer Match requires the country unhashed"
    )
    assert _row_with(
        parsed, "explainer", "Google", "Zip: Google Customer Match requires the postal code unhashed"
    )
    assert _row_with(parsed, "explainer", "Meta", "madid", "extern_id")
    assert _row_with(parsed, "explainer", "TikTok", "EMAIL_SHA256, PHONE_SHA256", "none")


def test_audit_checks_pass_and_fail_with_their_failures(parsed: _Page, page: str) -> None:
    assert _row_with(parsed, "audit", "checksums_match", "PASS", "16")
    assert _row_with(parsed, "audit", "no_plaintext_contact", "FAIL", "12")
    assert FAILURE in page


def test_without_an_audit_the_page_says_so(inputs: Inputs) -> None:
    page = render_report(*inputs, None)
    assert "not audited" in page[: page.index("</header>")]
    assert ">PASS<" not in page and ">FAIL<" not in page


def test_report_for_run_reads_the_run_folder(run: Path, inputs: Inputs, audit: AuditReport) -> None:
    assert report_for_run(run, audit) == render_report(*inputs, audit)


@pytest.fixture(scope="module")
def people() -> People:
    """The demo customers' and prospects' e-mails, phones (as written) and names of 4+ characters."""
    emails, phones, names = set(), set(), set()
    for table in ("customers.csv", "prospects.csv"):
        with (DEMO / table).open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["email"].strip():
                    emails.add(row["email"].strip().lower())
                if len(re.sub(r"\D", "", row["phone"])) >= 7:
                    phones.add(row["phone"].strip())
                for key in ("first_name", "last_name"):
                    if len(row[key].strip()) >= 4:
                        names.add(row[key].strip().lower())
    assert len(emails) > 1000 and len(phones) > 1000 and len(names) > 100
    return emails, phones, names


def _leaks(page: str, people: People) -> list[str]:
    """E-mail-like strings, and the demo people's e-mails, phones and names (as whole words) on ``page``."""
    emails, phones, names = people
    text = " ".join(_parse(page).text)
    lower = text.lower()
    found = [m.group() for m in EMAIL_LIKE.finditer(page)] + [e for e in emails if e in lower]
    found += [p for p in phones if p in text]
    numbers = set(re.findall(r"(?<![0-9a-f])[0-9]{9,}(?![0-9a-f])", lower))  # not inside a hex digest
    found += sorted(numbers & {re.sub(r"\D", "", p) for p in phones})
    words = set(re.findall(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", lower))
    return found + sorted(n for n in names if n in words or (" " in n and n in lower))


def test_no_personal_data_is_on_the_page(page: str, people: People) -> None:
    assert _leaks(page, people) == []


def test_the_personal_data_scan_finds_what_it_looks_for(inputs: Inputs, people: People) -> None:
    manifest, plan, sets = copy.deepcopy(inputs)
    with (DEMO / "customers.csv").open(encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["email"] and r["phone"] and len(r["last_name"]) >= 4)
    plan["audiences"][0]["description"] = f"see {row['last_name']} at {row['phone']}"
    name = next(iter(sets))
    sets[name]["reasons"][sets[name]["product_ids"][0]] = f"bought by {row['email']}"
    found = _leaks(render_report(manifest, plan, sets, None), people)
    assert row["last_name"].strip().lower() in found
    assert row["phone"].strip() in found
    assert row["email"].strip() in found


def test_values_are_escaped(inputs: Inputs, audit: AuditReport) -> None:
    manifest, plan, sets = copy.deepcopy(inputs)
    plan["audiences"][0]["description"] = "<script>alert('x')</script> & more"
    name = next(iter(sets))
    pid = sets[name]["product_ids"][0]
    sets[name]["reasons"][pid] = '<img src=x onerror="alert(1)">'
    audit = copy.deepcopy(audit)
    audit.checks[1].failures.append("a<b>.csv:3: <script>")
    page = render_report(manifest, plan, sets, audit)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "a&lt;b&gt;.csv:3: &lt;script&gt;" in page
    assert not _parse(page).errors


def test_counts_that_do_not_add_up_and_empty_audiences_are_shown(inputs: Inputs) -> None:
    manifest, plan, _ = copy.deepcopy(inputs)
    upsell = manifest["audiences"]["drink-upsell"]
    upsell["candidates"] += 1
    upsell["adds_up"] = False
    manifest["audiences"]["drink-downsell"] |= {"members": 0, "sub_audiences": {}, "exports": {}}
    page = render_report(manifest, plan, {}, None)  # product sets missing: the plan's summary is used
    assert f"NO: {upsell['candidates']:,} candidates" in page
    assert "None: nothing exported." in page
    t1 = next(e for e in plan["audiences"] if e["name"] == "drink-upsell--health-drink-t1")
    for product in t1["product_set"]["products"]:
        assert _row_with(
            _parse(page), "aud-drink-upsell--health-drink-t1-detail", product["id"], product["reason"]
        )
    assert not _parse(page).errors
