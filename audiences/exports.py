"""Platform upload frames: normalized, hashed identifiers in each platform's customer-file template.

``export_frame`` takes a frame of logical columns (any subset of ``normalize.KEYS``) and gives one
output row per input row, in input order and with the input's index, plus per-column counts of
valid, blank and invalid values for the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from audiences import normalize as nz
from audiences.errors import ConfigError
from audiences.hashing import arrow_text, sha256_column
from audiences.normalize import (
    HASHED_KEYS,
    NORMALIZATION_SPEC_VERSION,
    PHONE_FORMATS,
    PLATFORMS,
    STATUSES,
    Normalized,
)
from audiences.threads import parallel

__all__ = ["HASHED_COLUMNS", "NORMALIZATION_SPEC_VERSION", "PLAIN_COLUMNS", "TEMPLATES", "ExportResult"]

# Output column → the logical input column it comes from, in the order of each platform's template.
TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "meta": (
        ("email", "email"),
        ("phone", "phone"),
        ("fn", "first_name"),
        ("ln", "last_name"),
        ("fi", "first_name"),
        ("ct", "city"),
        ("st", "state"),
        ("zip", "zip"),
        ("country", "country"),
        ("doby", "birth_date"),
        ("dobm", "birth_date"),
        ("dobd", "birth_date"),
        ("gen", "gender"),
        ("madid", "madid"),
        ("extern_id", "extern_id"),
    ),
    "google": (
        ("Email", "email"),
        ("Phone", "phone"),
        ("First Name", "first_name"),
        ("Last Name", "last_name"),
        ("Country", "country"),
        ("Zip", "zip"),
    ),
    "tiktok": (("EMAIL_SHA256", "email"), ("PHONE_SHA256", "phone")),
}
HASHED_COLUMNS = {p: tuple(col for col, key in TEMPLATES[p] if key in HASHED_KEYS[p]) for p in PLATFORMS}
# Keys by cost, costliest first, so that the threads share the work out evenly.
_HEAVY = {"email": 0, "phone": 1, "birth_date": 2}
#: keys whose rules read the row's country
_READS_COUNTRY = frozenset({"phone", "state", "zip", "birth_date"})
_SAMPLE = 4096  # rows looked at before paying for a full pass over distinct values
PLAIN_COLUMNS = {p: tuple(col for col, key in TEMPLATES[p] if key not in HASHED_KEYS[p]) for p in PLATFORMS}


@dataclass(frozen=True)
class ExportResult:
    """One platform's upload frame and what the manifest says about it."""

    platform: str
    frame: pd.DataFrame
    #: output column → {"valid": n, "blank": n, "invalid": n}
    counts: dict[str, dict[str, int]]
    hashed_columns: tuple[str, ...]
    plain_columns: tuple[str, ...]
    #: rows with no usable identifier (every cell blank), by the input's index
    empty_rows: pd.Series
    spec_version: str = NORMALIZATION_SPEC_VERSION


def export_frame(
    df: pd.DataFrame,
    platform: str,
    default_country: str | None,
    *,
    tiktok_phone_format: str = "e164",
) -> ExportResult:
    """Normalize and hash ``df``'s identifier columns into ``platform``'s template, one row per input row.

    Raises:
        ConfigError: unknown platform, phone format or default country, or no identifier column at all.
    """
    if platform not in PLATFORMS:
        raise ConfigError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    if tiktok_phone_format not in PHONE_FORMATS:
        choices = ", ".join(PHONE_FORMATS)
        raise ConfigError(f"tiktok_phone_format {tiktok_phone_format!r} is not one of {choices}")
    default = nz.check_country(default_country)
    columns = [(col, key) for col, key in TEMPLATES[platform] if key in df.columns]
    if not columns:
        wanted = ", ".join(sorted({key for _, key in TEMPLATES[platform]}))
        raise ConfigError(f"no identifier column for {platform}: map at least one of {wanted}")
    keys = _Keys(df, platform, default, tiktok_phone_format)
    hashed = HASHED_COLUMNS[platform]
    outputs: dict[str, list[str]] = {}  # logical key → its output columns (first name: FN and FI)
    for col, key in sorted(columns, key=lambda pair: _HEAVY.get(pair[1], len(_HEAVY))):
        outputs.setdefault(key, []).append(col)

    def columns_of(key: str) -> dict[str, tuple[_Part, pd.Series]]:
        parts = {col: keys.part(col, key) for col in outputs[key]}
        return {col: (part, part.cells(col in hashed, df.index)) for col, part in parts.items()}

    found: dict[str, tuple[_Part, pd.Series]] = {}
    for done in parallel({key: partial(columns_of, key) for key in outputs}).values():
        found.update(done)
    parts = {col: found[col][0] for col, _ in columns}
    frame = pd.DataFrame({col: found[col][1] for col, _ in columns}, index=df.index)
    filled = np.zeros(len(df), dtype=bool)  # a cell is blank exactly where its status is not "valid"
    for part in parts.values():
        filled |= part.valid()
    return ExportResult(
        platform=platform,
        frame=frame,
        counts={col: part.counts() for col, part in parts.items()},
        hashed_columns=tuple(col for col, _ in columns if col in hashed),
        plain_columns=tuple(col for col, _ in columns if col in PLAIN_COLUMNS[platform]),
        empty_rows=pd.Series(~filled, index=df.index),
    )


@dataclass(frozen=True)
class _Part:
    """One key normalized once per distinct input (with the row's country where the rule reads it).

    ``uniq`` holds the distinct inputs' results; ``codes`` gives each row's position in it, or is None
    when the inputs hardly repeat and ``uniq`` already has one entry per row.
    """

    uniq: Normalized
    codes: np.ndarray | None

    def expand(self, values: pd.Series, index: pd.Index) -> pd.Series:
        """Per-row values from per-distinct ``values`` (aligned with ``uniq``)."""
        if self.codes is None:
            return pd.Series(values.array, index=index, dtype="str")
        return pd.Series(arrow_text(values).take(self.codes), index=index, dtype="str")

    def cells(self, hashed: bool, index: pd.Index) -> pd.Series:
        """The output column, one cell per row: the values, hashed if ``hashed``."""
        return self.expand(sha256_column(self.uniq.values) if hashed else self.uniq.values, index)

    def status_codes(self) -> np.ndarray:
        """Each row's status as a position in ``STATUSES``."""
        codes = self.uniq.status.cat.codes.to_numpy()
        return codes if self.codes is None else codes[self.codes]

    def valid(self) -> np.ndarray:
        """Rows whose value is usable (the only rows with a non-blank cell)."""
        return self.status_codes() == STATUSES.index("valid")

    def counts(self) -> dict[str, int]:
        """Rows per status: valid, blank, invalid."""
        found = np.bincount(self.status_codes(), minlength=len(STATUSES))
        return {name: int(found[i]) for i, name in enumerate(STATUSES)}

    def full(self, index: pd.Index) -> Normalized:
        """The per-row ``Normalized``."""
        status = pd.Categorical.from_codes(self.status_codes(), self.uniq.status.cat.categories)
        return Normalized(self.expand(self.uniq.values, index), pd.Series(status, index=index))


class _Keys:
    """Normalizes each logical column once, per distinct input; country first, since phone, state, zip
    and dates read it."""

    def __init__(self, df: pd.DataFrame, platform: str, default: str | None, phone_format: str) -> None:
        self.df = df
        self.done: dict[str, _Part] = {}
        self.countries: pd.Series | str | None = default
        p = platform
        if "country" in df.columns:
            # A blank country takes the default only where the row has an address (zip, city or state):
            # address matching needs it; a row with no address gets no country from us.
            part = _distinct(
                lambda s, has: _default_for_addresses(nz.normalize_country(s, None, p), has, default, p),
                df["country"],
                _has_address(df),
            )
            self.done["country"] = part
            country = part.full(df.index)
            self.countries = country.values.str.lower().where(country.status == "valid", default or "")
        # Every rule takes the column and the countries (per row, or one for all); not all read them.
        self.rules: dict[str, Callable[[pd.Series, nz.Countries], Normalized]] = {
            "email": lambda s, c: nz.normalize_email(s, p),
            "phone": lambda s, c: nz.normalize_phone(
                s, c, p, default_country=default, tiktok_format=phone_format
            ),
            "first_name": lambda s, c: nz.normalize_name(s, p),
            "last_name": lambda s, c: nz.normalize_name(s, p),
            "city": lambda s, c: nz.normalize_city(s, p),
            "state": lambda s, c: nz.normalize_state(s, c, p),
            "zip": lambda s, c: nz.normalize_zip(s, c, p),
            "gender": lambda s, c: nz.normalize_gender(s, p),
            "madid": lambda s, c: nz.normalize_madid(s),
            "extern_id": lambda s, c: nz.normalize_extern_id(s),
        }

    def get(self, column: str, key: str) -> Normalized:
        """The per-row normalized column behind one output column."""
        return self.part(column, key).full(self.df.index)

    def part(self, column: str, key: str) -> _Part:
        """The normalized column behind one output column (FI and the birth-date parts are derived)."""
        name = column if column in ("fi", "doby", "dobm", "dobd") else key
        if name not in self.done:
            if key == "birth_date":
                found: dict[str, Normalized] = {}

                def dates(s: pd.Series, countries: nz.Countries) -> Normalized:
                    found.update(zip(("doby", "dobm", "dobd"), nz.birth_parts(s, countries), strict=True))
                    return found["doby"]

                codes = self._apply(dates, key).codes
                self.done.update({part: _Part(found[part], codes) for part in ("doby", "dobm", "dobd")})
            elif column == "fi":
                fn = self.part("fn", "first_name")
                self.done[name] = _Part(nz.first_initial(fn.uniq), fn.codes)
            else:
                self.done[name] = self._apply(self.rules[key], key)
        return self.done[name]

    def _apply(self, rule: Callable[[pd.Series, nz.Countries], Normalized], key: str) -> _Part:
        """``rule`` over the distinct values of ``key`` (with the row's country, for keys that read it)."""
        if key in _READS_COUNTRY and isinstance(self.countries, pd.Series):
            return _distinct(rule, self.df[key], self.countries)
        countries = self.countries
        return _distinct(lambda s: rule(s, countries), self.df[key])


def _distinct(rule: Callable[..., Normalized], *columns: pd.Series) -> _Part:
    """``rule(*columns)`` computed over their distinct combinations of values only, when those repeat."""
    rows = distinct_rows(*columns)
    if rows is None:
        return _Part(rule(*columns), None)
    first, codes = rows
    return _Part(rule(*(column.iloc[first].reset_index(drop=True) for column in columns)), codes)


def distinct_rows(*columns: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(one row of each distinct combination of values, each row's combination), or None when the
    rows hardly repeat (a sample without a single repeat, or over 60% distinct)."""
    n = len(columns[0])
    sample = columns[0].iloc[:_SAMPLE]
    if len(columns) == 1 and n > _SAMPLE and sample.nunique(dropna=False) == len(sample):
        return None
    codes = np.zeros(n, dtype=np.int64)
    for column in columns:
        found, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = codes * (len(uniques) + 1) + (found + 1)  # missing values are code 0
    codes, _ = pd.factorize(codes)  # 0..distinct-1
    distinct = int(codes.max(initial=-1)) + 1
    if distinct > 0.6 * n:
        return None
    first = np.empty(distinct, dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # the last write per code is its first row
    return first, codes


def _has_address(df: pd.DataFrame) -> pd.Series:
    """Rows with a non-blank zip, city or state."""
    address = np.zeros(len(df), dtype=bool)
    for column in ("zip", "city", "state"):
        if column in df.columns:
            text = pc.utf8_trim_whitespace(nz.as_text(df[column]))
            address |= pc.fill_null(pc.not_equal(text, ""), False).to_numpy(zero_copy_only=False)
    return pd.Series(address, index=df.index)


def _default_for_addresses(
    country: Normalized, address: pd.Series, default: str | None, platform: str
) -> Normalized:
    """``country`` with blanks set to ``default`` in rows that hold a zip, city or state."""
    if not default:
        return country
    fill = address.to_numpy(dtype=bool) & (country.status == "blank").to_numpy()
    if not fill.any():
        return country
    code = default.upper() if platform == "google" else default.lower()
    keep = pd.Series(~fill, index=country.values.index)
    return Normalized(values=country.values.where(keep, code), status=country.status.where(keep, "valid"))
