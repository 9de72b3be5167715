"""Platform upload frames: normalized, hashed identifiers in each platform's customer-file template.

``export_frame`` takes a frame of logical columns (any subset of ``normalize.KEYS``) and gives one
output row per input row, in input order and with the input's index, plus per-column counts of
valid, blank and invalid values for the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from audiences import normalize as nz
from audiences.errors import ConfigError
from audiences.hashing import sha256_column
from audiences.normalize import HASHED_KEYS, NORMALIZATION_SPEC_VERSION, PHONE_FORMATS, PLATFORMS, Normalized

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
    normalized = {col: keys.get(col, key) for col, key in columns}
    hashed = HASHED_COLUMNS[platform]
    frame = pd.DataFrame(
        {col: sha256_column(n.values) if col in hashed else n.values for col, n in normalized.items()},
        index=df.index,
    )
    return ExportResult(
        platform=platform,
        frame=frame,
        counts={col: n.counts() for col, n in normalized.items()},
        hashed_columns=tuple(col for col, _ in columns if col in hashed),
        plain_columns=tuple(col for col, _ in columns if col in PLAIN_COLUMNS[platform]),
        empty_rows=(frame == "").all(axis=1),
    )


class _Keys:
    """Normalizes each logical column once; country first, since phone, state, zip and dates read it."""

    def __init__(self, df: pd.DataFrame, platform: str, default: str | None, phone_format: str) -> None:
        self.df = df
        self.done: dict[str, Normalized] = {}
        self.countries: pd.Series | str | None = default
        if "country" in df.columns:
            # A blank country takes the default only where the row has an address (zip, city or state):
            # address matching needs it; a row with no address gets no country from us.
            country = nz.normalize_country(df["country"], None, platform)
            if default:
                country = _default_for_addresses(country, df, default, platform)
            self.done["country"] = country
            self.countries = country.values.str.lower().where(country.status == "valid", default or "")
        p, countries = platform, self.countries
        self.rules: dict[str, Callable[[pd.Series], Normalized]] = {
            "email": lambda s: nz.normalize_email(s, p),
            "phone": lambda s: nz.normalize_phone(
                s, countries, p, default_country=default, tiktok_format=phone_format
            ),
            "first_name": lambda s: nz.normalize_name(s, p),
            "last_name": lambda s: nz.normalize_name(s, p),
            "city": lambda s: nz.normalize_city(s, p),
            "state": lambda s: nz.normalize_state(s, countries, p),
            "zip": lambda s: nz.normalize_zip(s, countries, p),
            "gender": lambda s: nz.normalize_gender(s, p),
            "madid": nz.normalize_madid,
            "extern_id": nz.normalize_extern_id,
        }

    def get(self, column: str, key: str) -> Normalized:
        """The normalized column behind one output column (FI and the birth-date parts are derived)."""
        name = column if column in ("fi", "doby", "dobm", "dobd") else key
        if name not in self.done:
            if key == "birth_date":
                parts = nz.birth_parts(self.df[key], self.countries)
                self.done.update(zip(("doby", "dobm", "dobd"), parts, strict=True))
            elif column == "fi":
                self.done[name] = nz.first_initial(self.get("fn", "first_name"))
            else:
                self.done[name] = self.rules[key](self.df[key])
        return self.done[name]


def _default_for_addresses(country: Normalized, df: pd.DataFrame, default: str, platform: str) -> Normalized:
    """``country`` with blanks set to ``default`` in rows that hold a zip, city or state."""
    address = pd.Series(False, index=df.index)
    for column in ("zip", "city", "state"):
        if column in df.columns:
            address |= df[column].fillna("").astype("str").str.strip() != ""
    fill = address & (country.status == "blank")
    if not fill.any():
        return country
    code = default.upper() if platform == "google" else default.lower()
    return Normalized(values=country.values.where(~fill, code), status=country.status.where(~fill, "valid"))
