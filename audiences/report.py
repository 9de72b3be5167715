"""``report.html``: the compliance reviewer's page for one run folder, with no personal data in it.

``render_report`` builds one self-contained HTML5 page (inline CSS, CSS bars, no scripts, no external
fonts, images or links) from what the run folder already holds: ``manifest.json`` (counts, columns,
checksums), ``plan.json`` (descriptions, destinations, product sets), ``product_sets/*.json`` (catalog ids
and the reason for each) and, when the run was audited, the ``AuditReport``. None of these holds a
person's data, and every value is escaped before it is written.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from audiences.audit import AuditReport
from audiences.exports import HASHED_COLUMNS, PLAIN_COLUMNS
from audiences.select import REASONS

__all__ = ["REASON_WORDS", "render_report", "report_for_run"]

#: each exclusion or not-exported reason, in words a reviewer reads
REASON_WORDS: dict[str, str] = {
    "no_consent": "no ads consent",
    "suppressed": "on the suppression list (erasure request or do-not-contact)",
    "already_customer": "already a customer (lists of buyers and non-buyers never mix)",
    "refunded": "had an order refunded recently",
    "complaint": "has a recent or open complaint",
    "low_satisfaction": "gave a low satisfaction score",
    "already_purchased": "already bought what this audience would be shown",
    "in_excluded_audience": "is in an audience this one excludes",
    "no_identifier": "no usable e-mail address or phone number",
    "no_products": "no suitable product to show",
    "unknown_customer": "order by a customer id missing from the customer list (counted, never exported)",
    "google_consent_not_granted": "the two Google consent signals (ad_user_data, ad_personalization) "
    "are not both granted",
    "no_identifier_for_platform": "no identifier this platform can match",
}
#: why a column is sent unhashed, by (platform, column)
PLAIN_WHY: dict[tuple[str, str], str] = {
    ("google", "Country"): "Google Customer Match requires the country unhashed (two-letter ISO code) "
    "to match by address.",
    ("google", "Zip"): "Google Customer Match requires the postal code unhashed to match by address.",
    ("meta", "madid"): "A mobile advertiser id is already an advertising identifier; Meta takes it as it is.",
    ("meta", "extern_id"): "The shop's own customer id, not contact data; Meta takes it as it is.",
}
_COLUMN_WORDS = {
    "email": "e-mail address", "phone": "phone number", "fn": "first name", "ln": "last name",
    "fi": "first initial", "ct": "city", "st": "state or region", "zip": "postal code", "country": "country",
    "doby": "birth year", "dobm": "birth month", "dobd": "birth day", "gen": "gender",
    "madid": "mobile advertiser id", "extern_id": "shop customer id", "first name": "first name",
    "last name": "last name", "email_sha256": "e-mail address", "phone_sha256": "phone number",
}  # fmt: skip
_WHO = {"purchasers": "past buyers", "prospects": "people who signed up or browsed but never bought"}
_STRATEGY = {
    "upsell": "upsell: a higher tier of the product line they bought",
    "cross_sell": "cross-sell: related products of another kind",
    "downsell": "downsell: a cheaper product of the line they looked at",
}
_PLATFORMS = {"meta": "Meta", "google": "Google Customer Match", "tiktok": "TikTok"}
_MAX_FAILURES = 200

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:72rem;
padding:1rem 1.5rem;color:#1d2329;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}h4{margin:1rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0 1rem}th,td{border:1px solid #d0d7de;padding:.2rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:.3rem;font-weight:700;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}.none{background:#6e7781}
.audience,.export{border:1px solid #d0d7de;border-radius:.4rem;padding:.2rem 1rem .6rem;margin:1rem 0}
.track{width:22rem;background:#f3f5f7}.bar{height:.9rem;background:#cf8a22;min-width:1px}
.bar.members{background:#1a7f37}.note{color:#57606a}dl{display:grid;grid-template-columns:max-content auto;
gap:.15rem 1rem}dt{font-weight:600}dd{margin:0}
"""


class _Html(str):
    """Markup that is already escaped (everything else is escaped when written or added to it)."""

    def __add__(self, other: object) -> _Html:
        return _Html(str.__add__(self, _e(other)))


def _e(value: object) -> _Html:
    """``value`` as escaped text (``_Html`` passes through unchanged)."""
    return value if isinstance(value, _Html) else _Html(html.escape(str(value), quote=True))


def _tag(name: str, body: object = "", **attrs: object) -> _Html:
    """``<name attrs>body</name>``; ``class_`` stands for ``class``."""
    text = "".join(f' {k.rstrip("_")}="{_e(v)}"' for k, v in attrs.items() if v is not None)
    return _Html(f"<{name}{text}>{_e(body)}</{name}>")


def _join(parts: Iterable[object]) -> _Html:
    return _Html("".join(_e(p) for p in parts))


def _table(head: Sequence[object], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()) -> _Html:
    """A table; cells at the ``numeric`` positions are right-aligned."""
    body = [
        _tag("tr", _join(_tag("td", c, class_="n" if i in numeric else None) for i, c in enumerate(row)))
        for row in rows
    ]
    return _tag("table", _tag("thead", _tag("tr", _join(_tag("th", h) for h in head))) + _join(body))


def _n(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "—" if value is None else str(value)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _badge(passed: bool | None) -> _Html:
    word, cls = (
        ("not audited", "none") if passed is None else ("PASS", "pass") if passed else ("FAIL", "fail")
    )
    return _tag("span", word, class_=f"badge {cls}")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _reason(code: str) -> _Html:
    return _tag("code", code) + _e(" " + REASON_WORDS.get(code, ""))


def _dl(items: Iterable[tuple[str, object]]) -> _Html:
    return _tag("dl", _join(_tag("dt", k) + _tag("dd", v) for k, v in items))


def render_report(
    manifest: Mapping[str, Any],
    plan: Mapping[str, Any],
    product_sets: Mapping[str, Mapping[str, Any]],
    audit: AuditReport | None,
) -> str:
    """The whole page for one run: header, explainer, audiences, files and audit."""
    run_id = str(manifest.get("run_id", ""))
    entries = {e["name"]: e for e in plan.get("audiences", [])}
    files = {f["path"]: f for f in manifest.get("files", [])}
    audiences = manifest.get("audiences", {})
    toc = _tag(
        "ul",
        _join(_tag("li", _tag("a", name, href=f"#aud-{_slug(name)}")) for name in audiences)
        + _tag("li", _tag("a", "Files and checksums", href="#files"))
        + _tag("li", _tag("a", "Audit", href="#audit")),
    )
    body = _join(
        [
            _header(manifest, audit),
            _tag("nav", _tag("h2", "Contents") + toc),
            _explainer(manifest),
            _inputs(manifest.get("inputs", {})),
            _tag("h2", "Audiences"),
            *(_audience(n, a, entries, files, product_sets) for n, a in audiences.items()),
            _files(manifest.get("files", [])),
            _audit(audit),
        ]
    )
    head = _Html('<meta charset="utf-8">') + _Html(
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
    )
    head += _tag("title", f"Compliance report: audience run {run_id}") + _tag("style", _Html(_CSS))
    return f'<!DOCTYPE html>\n<html lang="en">{_tag("head", head)}{_tag("body", body)}</html>\n'


def report_for_run(run_dir: Path, audit: AuditReport | None = None) -> str:
    """``render_report`` for a run folder, reading its manifest, plan and product sets."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    plan = json.loads((run_dir / "plan.json").read_text(encoding="utf-8"))
    sets = {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (run_dir / "product_sets").glob("*.json")
    }
    return render_report(manifest, plan, sets, audit)


def _header(manifest: Mapping[str, Any], audit: AuditReport | None) -> _Html:
    items = [
        ("Run", _tag("code", manifest.get("run_id", ""))),
        ("Data as of", manifest.get("as_of", "")),
        ("Created at", manifest.get("created_at", "")),
        ("Normalization spec version", _tag("code", manifest.get("normalization_spec_version", ""))),
        ("Config digest (SHA-256)", _tag("code", manifest.get("config_digest", ""))),
        ("Audit result", _badge(None if audit is None else audit.passed)),
    ]
    intro = _tag(
        "p",
        "What this run exported to the ad platforms, and how. The page shows counts, column names, "
        "catalog product ids and file checksums only; it holds no one's personal data.",
        class_="note",
    )
    return _tag("header", _tag("h1", "Audience export: compliance report") + intro + _dl(items))


def _explainer(manifest: Mapping[str, Any]) -> _Html:
    plain = manifest.get("plain_columns") or {p: list(c) for p, c in PLAIN_COLUMNS.items()}
    rows = []
    for platform in dict.fromkeys([*HASHED_COLUMNS, *plain]):
        hashed = ", ".join(HASHED_COLUMNS.get(platform, ())) or "none"
        why = _join(
            _tag(
                "li",
                _tag("code", c) + _e(": " + PLAIN_WHY.get((platform, c), "sent unhashed by platform rule.")),
            )
            for c in plain.get(platform, [])
        )
        rows.append(
            (
                _PLATFORMS.get(platform, platform),
                _tag("span", hashed, class_="mono"),
                _tag("ul", why) if why else "none",
            )
        )
    text = [
        "Before anything leaves the shop, each identifier (e-mail address, phone number, name, address, "
        "birth date, gender) is normalized to the one form the platform expects (for example trimmed and "
        "lower-case), then replaced by its SHA-256 hash: a 64-character fingerprint from which the value "
        "cannot be read back. The platform hashes its own users' details the same way and matches them.",
        "A value that is missing, or that cannot be normalized (an e-mail address that is not an address, a "
        "phone number that cannot exist), is left blank and never hashed; it is counted as blank or invalid "
        "in the key coverage tables below.",
        "Note: a SHA-256 of an e-mail address without a secret salt is pseudonymous, not anonymous. Anyone "
        "holding the same address can compute the same hash. The platforms require it unsalted so they can "
        "match.",
        "A few columns are sent unhashed because the platform's rules require them so:",
    ]
    return _tag(
        "section",
        _tag("h2", "How the exports protect people's data")
        + _join(_tag("p", t) for t in text)
        + _table(("Platform", "Hashed columns", "Plain (unhashed) columns and why"), rows),
        id="explainer",
    )


def _inputs(inputs: Mapping[str, Mapping[str, Any]]) -> _Html:
    rows = [(t, _n(c.get("read")), _n(c.get("kept")), _n(c.get("problems"))) for t, c in inputs.items()]
    note = _tag(
        "p",
        "Rows with problems are skipped and listed in input_problems.csv "
        "(table, row, field and reason; never the value).",
    )
    return _tag(
        "section",
        _tag("h2", "Inputs read")
        + _table(("Table", "Rows read", "Kept", "Problems"), rows, (1, 2, 3))
        + note,
    )


def _chart(candidates: int, members: int, excluded: Mapping[str, int]) -> _Html:
    """One bar per exclusion reason plus members, as shares of the candidates."""
    order = [r for r in REASONS if r in excluded] + [r for r in excluded if r not in REASONS]
    lines = [("members", _Html("members (in the audience)"), members)] + [
        (r, _reason(r), excluded[r]) for r in order
    ]
    rows = []
    for code, label, count in lines:
        width = f"{100 * count / candidates:.1f}%" if candidates else "0%"
        bar = _tag("div", "", class_="bar members" if code == "members" else "bar", style=f"width:{width}")
        rows.append(
            _tag(
                "tr",
                _tag("td", label)
                + _tag("td", bar, class_="track")
                + _tag("td", _n(count), class_="n")
                + _tag("td", _pct(count, candidates), class_="n"),
            )
        )
    head = _tag("tr", _join(_tag("th", h) for h in ("Outcome", "Share of candidates", "People", "%")))
    return _tag("table", _tag("thead", head) + _join(rows), class_="chart")


def _audience(
    name: str,
    aud: Mapping[str, Any],
    entries: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, Mapping[str, Any]],
    sets: Mapping[str, Mapping[str, Any]],
) -> _Html:
    entry = entries.get(name, {})
    excluded = aud.get("excluded", {})
    candidates, members = int(aud.get("candidates", 0)), int(aud.get("members", 0))
    total = members + sum(excluded.values())
    adds = f"yes: {_n(candidates)} candidates = {_n(members)} members + {_n(total - members)} excluded"
    if not aud.get("adds_up", candidates == total):
        adds = f"NO: {_n(candidates)} candidates, but members and excluded make {_n(total)}"
    consent = aud.get("consent", {})
    facts = [
        ("Description", aud.get("description", entry.get("description", "")) or "—"),
        ("Who", f"{aud.get('who', '')} ({_WHO.get(aud.get('who', ''), '')})"),
        ("Strategy", _STRATEGY.get(aud.get("strategy") or "", aud.get("strategy") or "none")),
        ("Candidates", _n(candidates)),
        ("Members", _n(members)),
        ("Counts add up", adds),
        ("Candidates with ads consent", _n(consent.get("candidates_with_ads_consent"))),
        ("Candidates without ads consent", _n(consent.get("candidates_without_ads_consent"))),
        ("Members with both Google consents granted", _n(consent.get("members_google_consent_granted"))),
    ]
    subs = aud.get("sub_audiences", {})
    sub_rows = [
        (s, _n(size), ", ".join(entries.get(s, {}).get("below_destination_minimum") or []) or "—")
        for s, size in subs.items()
    ]
    by_sub: dict[str, dict[str, Mapping[str, Any]]] = {s: {} for s in subs}
    for path, export in aud.get("exports", {}).items():
        by_sub.setdefault(PurePosixPath(path).parent.name, {})[path] = export
    parts = [
        _tag("h3", f"Audience: {name}"),
        _dl(facts),
        _tag("h4", "Who was left out, and why"),
        _chart(candidates, members, excluded),
        _tag("h4", "Sub-audiences"),
        _table(("Sub-audience", "Members", "Below the minimum of"), sub_rows, (1,))
        if subs
        else _tag("p", "None: nothing exported."),
        *(_sub_audience(s, exports, entries.get(s, entry), files, sets) for s, exports in by_sub.items()),
    ]
    return _tag("section", _join(parts), id=f"aud-{_slug(name)}", class_="audience")


def _sub_audience(
    name: str,
    exports: Mapping[str, Mapping[str, Any]],
    entry: Mapping[str, Any],
    files: Mapping[str, Mapping[str, Any]],
    sets: Mapping[str, Mapping[str, Any]],
) -> _Html:
    found = (
        sets.get(name)
        or sets.get(f"product_sets/{name}.json")
        or next((s for s in sets.values() if s.get("audience") == name), None)
    )
    summary = entry.get("product_set") or {}
    if found is not None:
        reasons = found.get("reasons", {})
        products = [(pid, reasons.get(pid, "")) for pid in found.get("product_ids", [])]
        strategy = found.get("strategy")
    else:
        products = [(p.get("id", ""), p.get("reason", "")) for p in summary.get("products", [])]
        strategy = entry.get("strategy")
    destinations = ", ".join(entry.get("destinations", [])) or "—"
    parts = [
        _tag("h3", f"Sub-audience: {name}"),
        _dl(
            [
                ("Destinations", destinations),
                ("Product set size", _n(len(products))),
                ("Product set strategy", _STRATEGY.get(strategy or "", strategy or "none")),
            ]
        ),
        _tag("h4", "Products shown, and why (catalog data)"),
        _table(("Product id", "Reason"), [(_tag("code", p), r) for p, r in products])
        if products
        else _tag("p", "No product set."),
        *(_export(path, export, files.get(path, {})) for path, export in exports.items()),
    ]
    return _tag("section", _join(parts), id=f"aud-{_slug(name)}-detail", class_="export")


def _export(path: str, export: Mapping[str, Any], file: Mapping[str, Any]) -> _Html:
    platform = str(export.get("platform", ""))
    rows, members = int(export.get("rows", 0)), int(export.get("members", 0))
    not_exported = export.get("not_exported", {})
    hashed, plain = list(export.get("hashed_columns", [])), list(export.get("plain_columns", []))
    left = sum(not_exported.values())
    adds = "yes" if rows + left == members else f"NO ({_n(rows)} + {_n(left)} ≠ {_n(members)})"
    facts = [
        ("File", _tag("code", path)),
        ("SHA-256", _tag("code", file.get("sha256", "—"))),
        ("Platform", _PLATFORMS.get(platform, platform)),
        ("Rows", f"{_n(rows)} of {_n(members)} members (adds up: {adds})"),
        ("Hashed columns", _tag("span", ", ".join(hashed) or "none", class_="mono")),
        ("Plain columns", _tag("span", ", ".join(plain) or "none", class_="mono")),
    ]
    kept_out = [(_reason(r), _n(n)) for r, n in not_exported.items()]
    coverage = []
    for column, c in export.get("key_counts", {}).items():
        valid, blank, invalid = (int(c.get(k, 0)) for k in ("valid", "blank", "invalid"))
        kind = "plain" if column in plain else "hashed" if column in hashed else "—"
        coverage.append(
            (
                _tag("code", column),
                _COLUMN_WORDS.get(column.lower(), ""),
                kind,
                _n(valid),
                _n(blank),
                _n(invalid),
                _pct(valid, valid + blank + invalid),
            )
        )
    return _join(
        [
            _tag("h4", f"Export to {_PLATFORMS.get(platform, platform)}"),
            _dl(facts),
            _table(("Not exported because", "People"), kept_out, (1,)) if kept_out else "",
            _table(
                ("Column", "Meaning", "Sent", "Valid", "Blank", "Invalid", "% valid"), coverage, (3, 4, 5, 6)
            ),
        ]
    )


def _files(files: Sequence[Mapping[str, Any]]) -> _Html:
    rows = [
        (
            _tag("code", f.get("path", "")),
            _n(f.get("rows")),
            _n(f.get("bytes")),
            _tag("code", f.get("sha256", "")),
        )
        for f in files
    ]
    note = _tag("p", "manifest.json itself is not listed: it holds these checksums.", class_="note")
    return _tag(
        "section",
        _tag("h2", "Files and checksums") + _table(("Path", "Rows", "Bytes", "SHA-256"), rows, (1, 2)) + note,
        id="files",
    )


def _audit(audit: AuditReport | None) -> _Html:
    title = _tag("h2", _e("Audit ") + _badge(None if audit is None else audit.passed))
    if audit is None:
        text = _e("This run has not been audited: ") + _tag("code", "audiences audit RUN_DIR") + " checks it."
        return _tag("section", title + _tag("p", text), id="audit")
    rows, details = [], []
    for check in audit.checks:
        rows.append(
            (check.name, check.description, _badge(check.passed), _n(check.checked), _n(len(check.failures)))
        )
        if check.failures:
            shown = [_tag("li", _tag("code", f)) for f in check.failures[:_MAX_FAILURES]]
            more = len(check.failures) - _MAX_FAILURES
            if more > 0:
                shown.append(_tag("li", f"… and {more:,} more"))
            details.append(_tag("h4", f"Failures of {check.name} (file:line)") + _tag("ul", _join(shown)))
    note = _tag("p", "Failures name the file and line only, never the value found.", class_="note")
    table = _table(("Check", "What it verifies", "Result", "Items checked", "Failures"), rows, (3, 4))
    return _tag("section", title + table + note + _join(details), id="audit")
