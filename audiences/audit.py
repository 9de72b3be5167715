"""``audiences audit``: prove a run folder keeps the non-negotiables, without showing personal data.

Each check reports pass or fail with counts; a failure names the file and line (never the value found).
Lines count from 1 with the header of a CSV as line 1, so data row ``i`` (0-based) is line ``i + 2``.

The checks (``audit_run``):

- ``files``: every file the manifest lists exists with its sha256, size and (CSV) data rows; nothing else
  is in the run folder (``manifest.json`` excepted); every export an audience names is in the file list.
- ``hashed_columns``: each hashed column of an export holds only blanks or 64 lowercase hex, never the
  SHA-256 of the empty string. Hashed means listed as hashed by the manifest's export entry or hashed by
  the platform rule (``exports.HASHED_COLUMNS``); the manifest may not call a column hashed that the
  platform takes plain.
- ``plain_columns``: the header equals the entry's columns; every column is hashed by the platform rule or
  one the platform requires plain (``manifest["plain_columns"]``, which must agree with
  ``exports.PLAIN_COLUMNS``).
- ``no_plaintext``: no e-mail address or phone number in any file (see ``EMAIL_PATTERN`` and
  ``PHONE_RUN_PATTERN``); with a config, none of the source's names, e-mails or phones either.
- ``counts_add_up``: the manifest's counts add up per audience, sub-audience and export.
- ``excluded_people_absent`` (with a config): no export holds the e-mail or phone hash of a suppressed
  person or of a person without ads consent (unless a consenting, unsuppressed person has the same hash).
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from audiences.config import IDENTIFIER_COLUMNS, PipelineConfig
from audiences.exports import HASHED_COLUMNS, PLAIN_COLUMNS, TEMPLATES, export_frame
from audiences.hashing import arrow_text, is_sha256_hex
from audiences.load import HASH_COLUMNS, Tables, load_tables
from audiences.normalize import PLATFORMS
from audiences.shopdata import People, prepare_people

MANIFEST = "manifest.json"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SHOWN = 20

#: A 64-hex digest (either case) standing alone; removed before the e-mail and phone patterns run.
HEX64_PATTERN = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
#: An ISO-8601 date, optionally with a time and a UTC offset (2026-11-25, 2026-11-25T16:00:00+00:00).
ISO_DATETIME_PATTERN = re.compile(
    r"(?<!\d)\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?(?!\d)"
)
#: JSON strings (kept) and JSON numbers outside strings (removed in ``.json`` files).
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')
#: local@domain.tld: a local part of word characters, ``.%+-``; a domain of dot-separated labels ending in
#: a top-level domain of 2+ letters (Unicode letters count, so internationalised addresses are found).
EMAIL_PATTERN = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
#: Phone punctuation: space, no-break space, dot, parentheses, hyphen-minus and the Unicode dashes.
PHONE_SEPARATORS = " \u00a0.()-\u2010\u2011\u2012\u2013\u2014\u2015"
_SEP = "[ \u00a0.()\\-\u2010-\u2015]"
#: A run of digits and phone punctuation, as long as it goes: it starts at an optional ``+`` (and one
#: space), an optional ``(`` and a digit not glued to a word, number or sign before it; digits then
#: follow each other with at most two separator characters between them (``) `` in ``(650) 555``);
#: it ends at its last digit. ``is_phone`` then decides whether the run is a phone number.
PHONE_RUN_PATTERN = re.compile(rf"(?<![\w.+\-\u2010-\u2015])(?:\+[ \u00a0]?)?\(?\d(?:{_SEP}{{0,2}}+\d)*+")
_TRAILING_DIGIT = re.compile(rf"(?<=\d){_SEP}{{1,2}}\d$")
_NUMBER = r"(?:0|[1-9]\d*)(?:\.\d+)?"
_RANGE = re.compile(rf"(?P<low>{_NUMBER})[\-\u2010-\u2015](?P<high>{_NUMBER})")
_WORD = re.compile(r"\w+")
_IS_WORD = re.compile(r"\w")
_ID_KEYS = ("email", "phone")


@dataclass
class Check:
    """One audit check: what it verified, how many items it looked at, and what failed (file:line: why)."""

    name: str
    description: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No failure found."""
        return not self.failures


@dataclass
class AuditReport:
    """Every check of one run folder."""

    run_dir: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """All checks passed."""
        return all(check.passed for check in self.checks)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: each check with its counts and failures (file and line only)."""
        return {
            "run_dir": self.run_dir,
            "passed": self.passed,
            "checks": [
                {
                    "name": c.name,
                    "description": c.description,
                    "passed": c.passed,
                    "checked": c.checked,
                    "failures": c.failures,
                }
                for c in self.checks
            ],
        }


# ---------------------------------------------------------------------------------------------------------
# Entry points


def audit_run(run_dir: Path, config: PipelineConfig | None = None) -> AuditReport:
    """Run every check on ``run_dir``; with ``config``, also compare against the shop's source data."""
    run = _Run.open(Path(run_dir))
    tables = load_tables(config) if config is not None else None
    needles = _source_needles(tables) if tables is not None else None
    checks = [
        _guarded("files", _check_files, run),
        _guarded("hashed_columns", _check_hashed_columns, run),
        _guarded("plain_columns", _check_plain_columns, run),
        _check_no_plaintext(run, needles),
        _guarded("counts_add_up", _check_counts, run),
    ]
    if config is not None and tables is not None:
        country = config.shop.default_country
        checks.append(
            _guarded("excluded_people_absent", lambda r: _check_excluded_people(r, tables, country), run)
        )
    return AuditReport(str(run_dir), checks)


def format_report(report: AuditReport) -> str:
    """Plain text: one line per check (PASS/FAIL, counts), then its failures, at most 20 each."""
    lines = [f"audit of {report.run_dir}: {'PASS' if report.passed else 'FAIL'}"]
    width = max((len(c.name) for c in report.checks), default=0)
    for check in report.checks:
        verdict = "PASS" if check.passed else "FAIL"
        counts = f"{check.checked} checked, {len(check.failures)} failed"
        lines.append(f"{verdict}  {check.name:<{width}}  {counts}: {check.description}")
        lines += [f"      {failure}" for failure in check.failures[:MAX_SHOWN]]
        if len(check.failures) > MAX_SHOWN:
            lines.append(f"      … and {len(check.failures) - MAX_SHOWN} more")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# The run folder


@dataclass(frozen=True)
class _Export:
    """One export the manifest names: its file, platform and the columns it says it holds."""

    path: str
    audience: str
    entry: dict[str, Any]

    @property
    def platform(self) -> str:
        return str(self.entry.get("platform"))

    @property
    def hashed(self) -> list[str]:
        return list(self.entry.get("hashed_columns") or [])

    @property
    def plain(self) -> list[str]:
        return list(self.entry.get("plain_columns") or [])


@dataclass(frozen=True)
class _Run:
    root: Path
    manifest: dict[str, Any] | None
    manifest_text: str

    @classmethod
    def open(cls, root: Path) -> _Run:
        try:
            text = (root / MANIFEST).read_text(encoding="utf-8")
            manifest = json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError):
            return cls(root, None, "")
        return cls(root, manifest if isinstance(manifest, dict) else None, text)

    def need_manifest(self) -> dict[str, Any]:
        if self.manifest is None:
            raise _NoManifest
        return self.manifest

    def exports(self) -> list[_Export]:
        """Every export of every audience, in manifest order."""
        audiences = self.need_manifest().get("audiences") or {}
        return [
            _Export(path, name, entry)
            for name, audience in audiences.items()
            for path, entry in (audience.get("exports") or {}).items()
        ]

    def files_on_disk(self) -> list[str]:
        """Every file under the run folder, as a posix path relative to it."""
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if not p.is_dir())

    def manifest_line(self, *keys: str) -> int | None:
        """The line of ``"keys[-1]":`` inside the objects ``"keys[0]": {`` … (indent-2 JSON as the build
        writes it); None when not found."""
        pos = 0
        for i, key in enumerate(keys):
            needle = f"{json.dumps(key, ensure_ascii=False)}:" + (" {" if i < len(keys) - 1 else "")
            pos = self.manifest_text.find(needle, pos)
            if pos < 0:
                return None
        return self.manifest_text.count("\n", 0, pos) + 1


class _NoManifest(Exception):
    """manifest.json is missing or not a JSON object."""


def _guarded(name: str, check: Callable[[_Run], Check], run: _Run) -> Check:
    """Run a manifest-based check; a missing or malformed manifest is its failure, not a crash."""
    try:
        return check(run)
    except _NoManifest:
        return Check(name, "needs manifest.json", failures=[f"{MANIFEST}: missing or not a JSON object"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        what = type(exc).__name__  # never the message: it could quote a value
        return Check(name, "needs a well-formed manifest.json", failures=[f"{MANIFEST}: malformed ({what})"])


# ---------------------------------------------------------------------------------------------------------
# 1. files


def _check_files(run: _Run) -> Check:
    """Listed files exist with their checksum, size and rows; no unlisted file; every export listed."""
    manifest = run.need_manifest()
    check = Check("files", "every listed file exists with its sha256, bytes and CSV rows; no unlisted file")
    listed: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("files") or []:
        path = str(entry["path"])
        if path in listed:
            check.failures.append(f"{path}: listed twice in the manifest")
        listed[path] = entry
    for path, entry in listed.items():
        check.checked += 1
        check.failures += _file_problems(run.root, path, entry)
    for path in run.files_on_disk():
        if path != MANIFEST and path not in listed:
            check.checked += 1
            check.failures.append(f"{path}: not listed in the manifest")
    for export in run.exports():
        if export.path not in listed:
            check.failures.append(f"{export.path}: an export of {export.audience} missing from the file list")
    return check


def _file_problems(root: Path, path: str, entry: dict[str, Any]) -> list[str]:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or path == MANIFEST:
        return [f"{path}: not a path inside the run folder"]
    file = root / relative
    if not file.is_file():
        return [f"{path}: listed in the manifest but missing"]
    digest, size, newlines, last = _digest(file)
    problems = []
    if digest != entry.get("sha256"):
        problems.append(f"{path}: sha256 differs from the manifest")
    if size != entry.get("bytes"):
        problems.append(f"{path}: {size} bytes, the manifest says {entry.get('bytes')}")
    if path.endswith(".csv"):
        rows = max(newlines + (1 if size and last != b"\n" else 0) - 1, 0)
        if rows != entry.get("rows"):
            problems.append(f"{path}: {rows} data rows, the manifest says {entry.get('rows')}")
    return problems


def _digest(file: Path) -> tuple[str, int, int, bytes]:
    """sha256, bytes, newlines and the last byte of a file, read in blocks."""
    sha, size, newlines, last = hashlib.sha256(), 0, 0, b""
    with file.open("rb") as fh:
        while block := fh.read(1 << 20):
            sha.update(block)
            size += len(block)
            newlines += block.count(b"\n")
            last = block[-1:]
    return sha.hexdigest(), size, newlines, last


# ---------------------------------------------------------------------------------------------------------
# 2. hashed_columns, 3. plain_columns


def _check_hashed_columns(run: _Run) -> Check:
    """Hashed columns hold blanks or 64 lowercase hex, never the SHA-256 of the empty string."""
    check = Check("hashed_columns", "hashed columns hold only blanks or 64 lowercase hex, never sha256('')")
    for export in run.exports():
        rule = HASHED_COLUMNS.get(export.platform)
        if rule is None:
            check.failures.append(f"{export.path}: unknown platform {export.platform!r}")
            continue
        for column in export.hashed:
            if column not in rule:
                check.failures.append(
                    f"{export.path}: manifest lists {column} as hashed; {export.platform} does not hash it"
                )
        read = _read_csv(run.root / export.path)
        if isinstance(read, str):
            check.failures.append(f"{export.path}: {read}")
            continue
        header, table = read
        hashed = set(export.hashed) | set(rule)
        for position, column in enumerate(header):
            if column in hashed:
                values = table.column(position)
                check.checked += len(values)
                check.failures += _hash_cell_problems(export.path, column, values)
    return check


def _hash_cell_problems(path: str, column: str, values: pa.ChunkedArray) -> list[str]:
    """One failure per cell that is neither blank nor 64 lowercase hex, or is the hash of nothing."""
    array = values.combine_chunks()
    hexed = pc.match_substring_regex(array, r"^[0-9a-f]{64}$").to_numpy(zero_copy_only=False)
    blank = pc.equal(array, "").to_numpy(zero_copy_only=False)
    empty = pc.equal(array, EMPTY_SHA256).to_numpy(zero_copy_only=False)
    problems = []
    for row in np.flatnonzero(~(hexed | blank) | empty):
        why = "the SHA-256 of the empty string" if empty[row] else "a value that is not 64-hex"
        problems.append(f"{path}:{row + 2}: hashed column {column} holds {why}")
    return problems


def _check_plain_columns(run: _Run) -> Check:
    """Every column is hashed by platform rule or one the platform takes plain; header == manifest."""
    manifest = run.need_manifest()
    check = Check("plain_columns", "plain columns are only those the platform requires plain; header matches")
    allowed: dict[str, set[str]] = {}
    for platform, rule in PLAIN_COLUMNS.items():
        listed = list((manifest.get("plain_columns") or {}).get(platform) or [])
        if set(listed) - set(rule):
            extra = ", ".join(sorted(set(listed) - set(rule)))
            check.failures.append(
                f"{MANIFEST}: plain_columns of {platform} allow {extra}, not plain by its rule"
            )
        allowed[platform] = set(listed) & set(rule)
    for export in run.exports():
        platform = export.platform
        if platform not in PLATFORMS:
            check.failures.append(f"{export.path}: unknown platform {platform!r}")
            continue
        check.failures += [
            f"{export.path}: {column} is exported plain; {platform} does not take it plain"
            for column in export.plain
            if column not in allowed[platform]
        ]
        header = _read_header(run.root / export.path)
        if header is None:
            check.failures.append(f"{export.path}: no readable CSV header")
            continue
        check.checked += len(header)
        check.failures += _header_problems(export, header, allowed[platform])
    return check


def _header_problems(export: _Export, header: list[str], allowed: set[str]) -> list[str]:
    problems = []
    where = f"{export.path}:1"
    for column in sorted({c for c in header if header.count(c) > 1}):
        problems.append(f"{where}: column {column} appears more than once")
    for column in header:
        if column not in HASHED_COLUMNS[export.platform] and column not in allowed:
            problems.append(
                f"{where}: column {column} is neither hashed nor taken plain by {export.platform}"
            )
    expected = set(export.hashed) | set(export.plain)
    for column in sorted(expected - set(header)):
        problems.append(f"{where}: column {column} of the manifest is missing from the header")
    for column in sorted(set(header) - expected):
        problems.append(f"{where}: column {column} is not among the manifest's columns")
    return problems


def _read_header(file: Path) -> list[str] | None:
    try:
        with file.open(encoding="utf-8", newline="") as fh:
            return next(csv.reader([fh.readline()]), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _read_csv(file: Path) -> tuple[list[str], pa.Table] | str:
    """The header and every data row as strings, columns by position (row i is line i + 2); a string
    saying why when the file is missing or not a rectangular UTF-8 CSV."""
    header = _read_header(file)
    if not header:
        return "missing, or no readable CSV header"
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            file,
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, pa.ArrowInvalid):
        return "not a rectangular UTF-8 CSV"
    return header, table


# ---------------------------------------------------------------------------------------------------------
# 4. no_plaintext


def is_phone(run: str) -> bool:
    """Whether a ``PHONE_RUN_PATTERN`` match is a phone number.

    A range of two numbers, ``A-B`` with ``A < B``, each without a leading zero and with at most one
    decimal part (price bands such as ``2000-5000`` or ``1500.5-2999.99``), is not a phone; this misses a
    two-group local number written without its trunk zero whose first group is the smaller (``555-1234``).
    Otherwise a trailing group of a single digit is dropped (``2026.11-1`` is a version, and a German
    switchboard suffix ``-0`` adds nothing); what is left must hold 7 or more digits and either start with
    ``+`` or contain phone punctuation. A bare run of digits (an id, a postal code, a count) is not a phone.
    """
    if _is_range(run):
        return False
    core = _TRAILING_DIGIT.sub("", run)
    if sum(c.isdigit() for c in core) < 7:
        return False
    return core.startswith("+") or any(c in PHONE_SEPARATORS for c in core)


def _is_range(run: str) -> bool:
    match = _RANGE.fullmatch(run)
    return match is not None and float(match["low"]) < float(match["high"])


def plaintext_hits(
    text: str, *, json_numbers: bool = False, phones: bool = True, needles: SourceValues | None = None
) -> list[tuple[int, str]]:
    """``(line, what)`` for each e-mail address, phone number and (with ``needles``) source value in
    ``text``, at most one per line and kind.

    Before the e-mail and phone patterns run, 64-hex digests and ISO-8601 dates/times are blanked (and JSON
    numbers outside strings, with ``json_numbers``); blanking keeps positions, so line numbers hold. Source
    values are looked for in the text with only the digests blanked.
    """
    digestless = _blank(HEX64_PATTERN, text)
    cleaned = _blank(ISO_DATETIME_PATTERN, digestless)
    if json_numbers:
        cleaned = _JSON_TOKEN.sub(lambda m: m[0] if m[0].startswith('"') else "," * len(m[0]), cleaned)
    found: list[tuple[int, str]] = [(m.start(), "an e-mail address") for m in EMAIL_PATTERN.finditer(cleaned)]
    if phones:
        found += [
            (m.start(), "a phone number") for m in PHONE_RUN_PATTERN.finditer(cleaned) if is_phone(m[0])
        ]
    if needles is not None:
        found += needles.find(digestless)
    if not found:
        return []
    newlines = [m.start() for m in re.finditer("\n", text)]
    hits = {(bisect.bisect_right(newlines, pos) + 1, what) for pos, what in found}
    return sorted(hits)


def _blank(pattern: re.Pattern[str], text: str) -> str:
    """``text`` with every match of ``pattern`` replaced by as many commas (positions stay put)."""
    return pattern.sub(lambda m: "," * len(m[0]), text)


class SourceValues:
    """Exact values (names, e-mails, phones of the source) found as whole words.

    Each value is indexed by its first word (``\\w+``); a word of the text that is the first word of
    some values is checked for each of them in place, so a text is read once whatever the number of values.
    """

    def __init__(self) -> None:
        self._index: dict[str, list[tuple[str, int, str]]] = {}
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, values: Iterable[str], what: str) -> None:
        for value in values:
            first = _WORD.search(value)
            if first is None or value in self._seen:
                continue
            self._seen.add(value)
            self._index.setdefault(first[0], []).append((value, first.start(), what))

    def find(self, text: str) -> Iterator[tuple[int, str]]:
        """``(position, what)`` of each value found as a whole word."""
        for word in _WORD.finditer(text):
            for value, offset, what in self._index.get(word[0], ()):
                start = word.start() - offset
                if start >= 0 and text.startswith(value, start) and _whole(text, start, start + len(value)):
                    yield start, what


def _whole(text: str, start: int, end: int) -> bool:
    """No word character glued to either end of ``text[start:end]`` (where that end is a word char)."""
    before = start > 0 and _IS_WORD.match(text[start - 1]) and _IS_WORD.match(text[start])
    after = end < len(text) and _IS_WORD.match(text[end]) and _IS_WORD.match(text[end - 1])
    return not before and not after


def _source_needles(tables: Tables) -> SourceValues:
    """Names (3+ characters), e-mails (3+ characters) and phones (7+ digits) of customers and prospects,
    and the raw e-mails and phones of the suppression list: exact values after trimming."""
    needles = SourceValues()
    people = [f for f in (tables.customers, tables.prospects) if f is not None]
    for column in ("first_name", "last_name"):
        needles.add(_trimmed(people, column, lambda v: len(v) >= 3), f"a name from the source ({column})")
    with_suppression = [*people, *([tables.suppression] if tables.suppression is not None else [])]
    needles.add(_trimmed(with_suppression, "email", lambda v: len(v) >= 3), "an e-mail from the source")
    digits = re.compile(r"\d")
    needles.add(
        _trimmed(with_suppression, "phone", lambda v: len(digits.findall(v)) >= 7), "a phone from the source"
    )
    return needles


def _trimmed(frames: list[pd.DataFrame], column: str, keep: Callable[[str], bool]) -> list[str]:
    values: set[str] = set()
    for frame in frames:
        if column in frame.columns:
            values |= set(frame[column].fillna("").astype("str").str.strip().unique())
    return sorted(v for v in values if v and keep(v))


def _check_no_plaintext(run: _Run, needles: SourceValues | None = None) -> Check:
    """No e-mail address or phone number (and no source value) in any file of the run folder."""
    looked_for = "e-mail addresses and phone numbers"
    if needles is not None:
        looked_for += f", or any of {len(needles)} names, e-mails and phones of the source,"
    check = Check(
        "no_plaintext",
        f"no {looked_for} in any file (digests, ISO dates and JSON numbers set aside; "
        "no phone pattern in the plain columns a platform requires, e.g. Google's Zip)",
    )
    exports: dict[str, _Export | None]
    try:
        exports = {e.path: e for e in run.exports()}
    except (_NoManifest, KeyError, TypeError, AttributeError):  # the other checks report it
        exports = {}
    for path in run.files_on_disk():
        check.checked += 1
        export = exports.setdefault(path, _by_name(path))
        read = _read_csv(run.root / path) if export is not None else "not an export"
        if export is None or isinstance(read, str):  # not an export, or not a CSV that parses: as text
            check.failures += _text_hits(run.root, path, needles)
        else:
            check.failures += _export_hits(path, export, *read, needles)
    return check


def _by_name(path: str) -> _Export | None:
    """An export the manifest does not describe (or there is no manifest): ``audiences/<name>/<platform>.csv``
    is read as that platform's template, its plain columns those of the platform rule."""
    parts = PurePosixPath(path).parts
    if len(parts) != 3 or parts[0] != "audiences" or PurePosixPath(path).suffix != ".csv":
        return None
    platform = PurePosixPath(path).stem
    if platform not in PLATFORMS:
        return None
    return _Export(path, parts[1], {"platform": platform, "plain_columns": list(PLAIN_COLUMNS[platform])})


def _text_hits(root: Path, path: str, needles: SourceValues | None) -> list[str]:
    """Scan any file as UTF-8 text (undecodable bytes become U+FFFD), line by line."""
    text = (root / path).read_bytes().decode("utf-8", errors="replace")
    hits = plaintext_hits(text, json_numbers=path.endswith(".json"), needles=needles)
    return [f"{path}:{line}: {what}" for line, what in hits]


def _export_hits(
    path: str, export: _Export, header: list[str], table: pa.Table, needles: SourceValues | None
) -> list[str]:
    """Scan an export column by column: only cells that are neither blank nor a digest are read."""
    failures = []
    template = {column for column, _ in TEMPLATES.get(export.platform, ())}
    for column in header:
        if column not in template:  # the header line itself, where it is not the platform's template
            failures += [f"{path}:1: {what}" for _, what in plaintext_hits(column, needles=needles)]
    plain = set(export.plain) & set(PLAIN_COLUMNS.get(export.platform, ()))
    for position, column in enumerate(header):
        array = table.column(position).combine_chunks()
        rows = np.flatnonzero(~is_sha256_hex(array) & pc.not_equal(array, "").to_numpy(zero_copy_only=False))
        if not len(rows):
            continue
        encoded = pc.dictionary_encode(array.take(pa.array(rows, type=pa.int64())))
        kinds = [
            {what for _, what in plaintext_hits(str(v), phones=column not in plain, needles=needles)}
            for v in encoded.dictionary.to_pylist()
        ]
        for row, code in zip(rows, encoded.indices.to_numpy(zero_copy_only=False), strict=True):
            failures += [f"{path}:{row + 2}: {what} in column {column}" for what in sorted(kinds[code])]
    return failures


# ---------------------------------------------------------------------------------------------------------
# 5. counts_add_up


def _check_counts(run: _Run) -> Check:
    """candidates = members + excluded; sub-audiences sum to members; rows + not exported = members."""
    manifest = run.need_manifest()
    check = Check(
        "counts_add_up",
        "per audience candidates = members + excluded and sub-audiences sum to members; "
        "per export rows + not exported = members of its sub-audience",
    )
    file_rows = {str(f["path"]): f.get("rows") for f in manifest.get("files") or []}
    for name, audience in (manifest.get("audiences") or {}).items():
        check.checked += 1
        check.failures += _audience_count_problems(run, name, audience)
        subs = audience.get("sub_audiences") or {}
        for path, export in (audience.get("exports") or {}).items():
            check.checked += 1
            check.failures += _export_count_problems(run, name, path, export, subs, file_rows)
    return check


def _audience_count_problems(run: _Run, name: str, audience: dict[str, Any]) -> list[str]:
    problems = []
    candidates, members = int(audience["candidates"]), int(audience["members"])
    excluded = sum(int(n) for n in (audience.get("excluded") or {}).values())
    if candidates != members + excluded:
        where = _where(run, "audiences", name, "members")
        problems.append(
            f"{where}: audience {name}: {candidates} candidates != {members} members + {excluded} excluded"
        )
    subs = sum(int(n) for n in (audience.get("sub_audiences") or {}).values())
    if subs != members:
        where = _where(run, "audiences", name, "sub_audiences")
        problems.append(f"{where}: audience {name}: sub-audiences hold {subs}, not its {members} members")
    return problems


def _export_count_problems(
    run: _Run, name: str, path: str, export: dict[str, Any], subs: dict[str, Any], file_rows: dict[str, Any]
) -> list[str]:
    problems = []
    where = _where(run, "audiences", name, path, "rows")
    rows, members = int(export["rows"]), int(export["members"])
    not_exported = sum(int(n) for n in (export.get("not_exported") or {}).values())
    if rows + not_exported != members:
        problems.append(f"{where}: {path}: {rows} rows + {not_exported} not exported != {members} members")
    sub = PurePosixPath(path).parent.name
    if sub in subs and int(subs[sub]) != members:
        problems.append(f"{where}: {path}: {members} members, its sub-audience {sub} has {subs[sub]}")
    if path in file_rows and file_rows[path] != rows:
        problems.append(f"{where}: {path}: {rows} rows, the file list says {file_rows[path]}")
    return problems


def _where(run: _Run, *keys: str) -> str:
    line = run.manifest_line(*keys)
    return f"{MANIFEST}:{line}" if line is not None else MANIFEST


# ---------------------------------------------------------------------------------------------------------
# 6. excluded_people_absent


@dataclass
class _Forbidden:
    """Per platform and output column: hashes that must not appear, and non-consent hashes also held by
    someone who may be exported (a shared inbox or phone)."""

    suppressed: pd.Index
    suppression_list: pd.Index
    no_consent: pd.Index
    shared: pd.Index


def _check_excluded_people(run: _Run, tables: Tables, default_country: str | None) -> Check:
    """No export holds the e-mail or phone hash of a suppressed person or of one without ads consent."""
    persons = prepare_people(tables, default_country)
    people = [p for p in (persons.customers, persons.prospects) if p is not None]
    excluded = sum(int((~p.ads_ok | p.suppressed).sum()) for p in people)
    check = Check("excluded_people_absent", "", checked=excluded)
    forbidden: dict[str, dict[str, _Forbidden]] = {}
    shared_cells = 0
    for export in run.exports():
        if export.platform not in PLATFORMS:
            continue  # plain_columns reports it
        if export.platform not in forbidden:
            forbidden[export.platform] = _forbidden(people, tables, export.platform, default_country)
        read = _read_csv(run.root / export.path)
        if isinstance(read, str):
            check.failures.append(f"{export.path}: {read}")
            continue
        header, table = read
        for position, column in enumerate(header):
            if column in forbidden[export.platform]:
                values = table.column(position).combine_chunks()
                failures, shared = _forbidden_cells(
                    export.path, column, values, forbidden[export.platform][column]
                )
                check.failures += failures
                shared_cells += shared
    check.description = (
        f"no export holds the e-mail or phone hash (as each platform hashes it) of any of {excluded} "
        "suppressed or non-consenting people, nor of a suppression-list entry; "
        f"{shared_cells} cells hold a hash that a person without ads consent shares with a consenting, "
        "unsuppressed person (a shared inbox or phone) and are allowed"
    )
    return check


def _forbidden(
    people: list[People], tables: Tables, platform: str, default_country: str | None
) -> dict[str, _Forbidden]:
    """Per e-mail/phone output column of ``platform``: the hashes no export of it may hold."""
    columns = [column for column, key in TEMPLATES[platform] if key in _ID_KEYS]
    parts: dict[str, dict[str, list[pd.Series]]] = {
        c: {"sup": [], "nc": [], "ok": [], "list": []} for c in columns
    }
    for person in people:
        frame = person.frame[[c for c in IDENTIFIER_COLUMNS if _has_values(person.frame, c)]]
        if frame.empty:
            continue
        suppressed, consents = person.suppressed, person.ads_ok
        for hashed in _hashed_forms(frame, platform, default_country):
            for column in columns:
                if column in hashed.columns:
                    values = hashed[column]
                    parts[column]["sup"].append(values[suppressed])
                    parts[column]["nc"].append(values[~consents & ~suppressed])
                    parts[column]["ok"].append(values[consents & ~suppressed])
    for column, hashes in _suppression_list(tables, platform, default_country).items():
        if column in parts:
            parts[column]["list"].append(hashes)
    out = {}
    for column, groups in parts.items():
        sup, nc, ok, listed = (_distinct(groups[k]) for k in ("sup", "nc", "ok", "list"))
        out[column] = _Forbidden(sup, listed, nc.difference(ok), nc.intersection(ok))
    return out


def _hashed_forms(frame: pd.DataFrame, platform: str, default_country: str | None) -> list[pd.DataFrame]:
    """``frame`` hashed as ``platform``'s export does (TikTok: in both phone forms a destination may use)."""
    forms = ("e164", "digits") if platform == "tiktok" else ("e164",)
    return [export_frame(frame, platform, default_country, tiktok_phone_format=form).frame for form in forms]


def _suppression_list(tables: Tables, platform: str, default_country: str | None) -> dict[str, pd.Series]:
    """The suppression list's raw e-mails and phones hashed as ``platform`` hashes them, plus (Meta only)
    its pre-hashed ``email_sha256`` / ``phone_sha256``, which are Meta-normalized."""
    frame = tables.suppression
    if frame is None or frame.empty:
        return {}
    forms = _hashed_forms(frame[["email", "phone"]], platform, default_country)
    out = {column: pd.concat([hashed[column] for hashed in forms]) for column in forms[0].columns}
    if platform == "meta":
        for column, key in zip(HASH_COLUMNS, _ID_KEYS, strict=True):
            text = frame[column].fillna("").astype("str").str.strip().str.lower()
            valid = pd.Series(is_sha256_hex(arrow_text(text)), index=text.index)
            out[key] = pd.concat([out.get(key, pd.Series([], dtype="str")), text[valid]])
    return out


def _forbidden_cells(
    path: str, column: str, values: pa.Array, forbidden: _Forbidden
) -> tuple[list[str], int]:
    """One failure per cell holding a forbidden hash (the first reason that applies), and how many cells
    hold a shared, allowed one."""
    whose: dict[int, str] = {}
    reasons = (
        (forbidden.suppressed, "a suppressed person"),
        (forbidden.suppression_list, "a suppression-list entry"),
        (forbidden.no_consent, "a person without ads consent"),
    )
    for hashes, reason in reasons:
        for row in _rows_in(values, hashes):
            whose.setdefault(int(row), reason)
    failures = [f"{path}:{row + 2}: column {column} holds the hash of {whose[row]}" for row in sorted(whose)]
    return failures, len(_rows_in(values, forbidden.shared))


def _rows_in(values: pa.Array, hashes: pd.Index) -> np.ndarray:
    if not len(hashes):
        return np.zeros(0, dtype=np.int64)
    found = pc.is_in(values, value_set=arrow_text(hashes.to_series()))
    return np.flatnonzero(pc.fill_null(found, False).to_numpy(zero_copy_only=False))


def _distinct(parts: list[pd.Series]) -> pd.Index:
    if not parts:
        return pd.Index([], dtype="str")
    values = pd.concat(parts, ignore_index=True)
    return pd.Index(values[values != ""].unique(), dtype="str")


def _has_values(frame: pd.DataFrame, column: str) -> bool:
    """The build exports an identifier column only when some row of the table has a value in it."""
    return column in frame.columns and bool((frame[column].fillna("").astype("str").str.strip() != "").any())
