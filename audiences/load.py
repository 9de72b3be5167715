"""Customers, orders and the other people-side tables from their sources, typed column-wise.

Every row read is either kept in its typed frame or recorded in ``Tables.problems`` (table, row, field,
reason; never the value), so ``read == kept + problems`` per table. Timestamps become tz-aware UTC
(naive times are taken as UTC), numbers floats or ints, consent columns booleans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow.compute as pc

from audiences.config import CUSTOMER_COLUMNS, PROSPECT_COLUMNS, PipelineConfig, TableConfig
from audiences.hashing import arrow_text, is_sha256_hex, sha256_column
from audiences.normalize import normalize_email, normalize_phone
from feedgen.sources import ROW, read_table

ORDER_COLUMNS = (
    "order_id", "customer_id", "ordered_at", "status", "product_id", "quantity", "unit_price", "currency",
)  # fmt: skip
SATISFACTION_COLUMNS = ("customer_id", "score", "surveyed_at")
COMPLAINT_COLUMNS = ("customer_id", "opened_at", "status")
VIEW_COLUMNS = ("prospect_id", "product_id", "viewed_at")
SUPPRESSION_COLUMNS = ("email", "phone", "email_sha256", "phone_sha256")
PROBLEM_COLUMNS = ("table", "row", "field", "reason")
CONSENT_TRUE = ("true", "yes", "y", "1")
#: boolean columns added to customers and prospects, from the columns ``config.consent`` names
CONSENT_FLAGS = ("ads_ok", "ad_user_data_ok", "ad_personalization_ok")
HASH_COLUMNS = ("email_sha256", "phone_sha256")


@dataclass(frozen=True)
class _Spec:
    columns: tuple[str, ...]
    keys: tuple[str, ...] = ()  # must not be blank (trimmed)
    timestamps: tuple[str, ...] = ()  # must be present and parse
    optional_timestamps: tuple[str, ...] = ()  # may be blank; must parse when present
    numbers: tuple[str, ...] = ()  # must be present and parse
    lowered: tuple[str, ...] = ()  # trimmed and lowercased


SPECS = {
    "customers": _Spec(CUSTOMER_COLUMNS, ("customer_id",), optional_timestamps=("created_at",)),
    "orders": _Spec(
        ORDER_COLUMNS,
        ("order_id", "customer_id", "product_id"),
        ("ordered_at",),
        numbers=("quantity", "unit_price"),
        lowered=("status",),
    ),
    "satisfaction": _Spec(SATISFACTION_COLUMNS, ("customer_id",), ("surveyed_at",), numbers=("score",)),
    "complaints": _Spec(COMPLAINT_COLUMNS, ("customer_id",), ("opened_at",), lowered=("status",)),
    "prospects": _Spec(PROSPECT_COLUMNS, ("prospect_id",), optional_timestamps=("signed_up_at",)),
    "views": _Spec(VIEW_COLUMNS, ("prospect_id", "product_id"), ("viewed_at",)),
    "suppression": _Spec(SUPPRESSION_COLUMNS),
}


@dataclass(frozen=True)
class Tables:
    """The typed tables (None where the config has no such section), the problems and the counts."""

    customers: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    satisfaction: pd.DataFrame | None = None
    complaints: pd.DataFrame | None = None
    prospects: pd.DataFrame | None = None
    views: pd.DataFrame | None = None
    suppression: pd.DataFrame | None = None
    problems: pd.DataFrame = field(default_factory=lambda: _problem_frame([]))
    #: per table: {"read": n, "kept": n, "problems": n} (rows; read == kept + problems)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def load_tables(config: PipelineConfig) -> Tables:
    """Read and type every configured table; rows that cannot be used go to ``problems``."""
    frames: dict[str, pd.DataFrame] = {}
    problems: list[pd.DataFrame] = []
    counts: dict[str, dict[str, int]] = {}
    consent = config.consent
    consent_columns = (consent.column, consent.google.ad_user_data, consent.google.ad_personalization)
    for name, spec in SPECS.items():
        table: TableConfig | None = getattr(config, name)
        if table is None:
            continue
        columns = list(spec.columns)
        if name in ("customers", "prospects"):
            columns += [c for c in consent_columns if c not in columns]
        raw = read_table(table.source, columns, table.columns)
        typed, bad = type_table(name, raw, spec)
        if name in ("customers", "prospects"):
            for flag, column in zip(CONSENT_FLAGS, consent_columns, strict=True):
                typed[flag] = consent_flags(typed[column])
        frames[name] = typed
        problems.append(bad)
        n_bad = int(bad["row"].nunique())
        counts[name] = {"read": len(raw), "kept": len(typed), "problems": n_bad}
    return Tables(**frames, problems=_problem_frame(problems), counts=counts)


def type_table(name: str, raw: pd.DataFrame, spec: _Spec | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The kept rows, typed, and one problem per unusable field (table, row, field, reason)."""
    spec = spec or SPECS[name]
    out = raw.copy()
    found: list[pd.DataFrame] = []
    bad = pd.Series(False, index=raw.index)

    def flag(column: str, mask: pd.Series, reason: str) -> None:
        nonlocal bad
        if mask.any():
            rows = raw.loc[mask, ROW].to_numpy()
            found.append(pd.DataFrame({"table": name, "row": rows, "field": column, "reason": reason}))
            bad = bad | mask

    for column in spec.keys:
        out[column] = raw[column].str.strip()
        flag(column, out[column] == "", "blank")
    for column in spec.timestamps + spec.optional_timestamps:
        text = raw[column].str.strip()
        out[column] = parse_timestamps(text)
        if column in spec.timestamps:
            flag(column, text == "", "blank")
        flag(column, out[column].isna() & (text != ""), "not a date/time")
    for column in spec.numbers:
        text = raw[column].str.strip()
        out[column] = pd.to_numeric(text, errors="coerce")
        flag(column, text == "", "blank")
        flag(column, out[column].isna() & (text != ""), "not a number")
    for column in spec.lowered:
        out[column] = raw[column].str.strip().str.lower()
    if name == "suppression":
        usable = (raw["email"].str.strip() != "") | (raw["phone"].str.strip() != "")
        for column in HASH_COLUMNS:
            usable = usable | _valid_hex(raw[column])
        reason = "no identifier (blank, or a hash that is not 64-hex)"
        flag(",".join(SUPPRESSION_COLUMNS), ~usable, reason)
    return out[~bad].reset_index(drop=True), _problem_frame(found)


def parse_timestamps(text: pd.Series) -> pd.Series:
    """Tz-aware UTC timestamps; naive ones are taken as UTC; blank or unparseable → NaT."""
    text = text.astype("str").str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & (text != "")
    if retry.any():  # the fast ISO path first; anything else through the (slow) mixed parser
        again = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
        parsed = parsed.where(~retry, again.reindex(parsed.index).astype(parsed.dtype))
    return parsed


def consent_flags(values: pd.Series) -> pd.Series:
    """True where the value is true/yes/y/1 in any case after trimming; anything else False."""
    return values.astype("str").str.strip().str.lower().isin(CONSENT_TRUE).astype(bool)


def person_hashes(frame: pd.DataFrame, default_country: str | None) -> pd.DataFrame:
    """Per row, Meta-normalized SHA-256 of e-mail and phone ("" where blank or not normalizable)."""
    countries = frame["country"] if "country" in frame.columns else None
    email = normalize_email(_text(frame, "email"), "meta").values
    phone = normalize_phone(_text(frame, "phone"), countries, "meta", default_country=default_country)
    return pd.DataFrame(
        {"email_sha256": sha256_column(email), "phone_sha256": sha256_column(phone.values)},
        index=frame.index,
    )


def suppression_hashes(tables: Tables, default_country: str | None) -> pd.Index:
    """Distinct 64-hex hashes that must never be exported: raw identifiers hashed as Meta does, plus
    the pre-hashed ``email_sha256`` / ``phone_sha256`` values (lowercased; only valid digests)."""
    frame = tables.suppression
    if frame is None or frame.empty:
        return pd.Index([], dtype="str")
    hashed = person_hashes(frame, default_country)
    parts = [hashed[c] for c in HASH_COLUMNS]
    parts += [frame[c].str.strip().str.lower()[_valid_hex(frame[c])] for c in HASH_COLUMNS]
    values = pd.concat(parts, ignore_index=True)
    return pd.Index(values[values != ""].unique(), dtype="str")


def _valid_hex(values: pd.Series) -> pd.Series:
    found = is_sha256_hex(pc.utf8_trim_whitespace(arrow_text(values.astype("str"))))
    return pd.Series(found, index=values.index)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return frame[column]
    return pd.Series("", index=frame.index, dtype="str")


def _problem_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    empty = pd.DataFrame({c: pd.Series([], dtype="int64" if c == "row" else "str") for c in PROBLEM_COLUMNS})
    frames = [p for p in parts if not p.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty
