"""Per-key normalization of customer identifiers over whole columns, per ``specs/audiences.md``.

Every normalizer takes a column and returns ``Normalized``: the values ("" where nothing usable is
left) and a status per row, ``valid``, ``blank`` (missing or whitespace-only) or ``invalid``
(present but not normalizable). Text is put in NFC first. For a key the platform hashes, a value
that is already a 64-hex digest is passed through lowercased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from audiences import phones, places
from audiences.errors import ConfigError
from audiences.hashing import arrow_text, is_sha256_hex, per_distinct
from feedgen.text import replace_rows

NORMALIZATION_SPEC_VERSION = "2026.11-1"
PLATFORMS = ("meta", "google", "tiktok")
KEYS = (
    "email", "phone", "first_name", "last_name", "city", "state", "zip", "country", "gender",
    "birth_date", "madid", "extern_id",
)  # fmt: skip
# Logical keys each platform hashes; the others it takes plain (Google's country and zip, MADID, own id).
HASHED_KEYS = {
    "meta": frozenset(KEYS) - {"madid", "extern_id"},
    "google": frozenset({"email", "phone", "first_name", "last_name"}),
    "tiktok": frozenset({"email", "phone"}),
}
STATUSES = ("valid", "blank", "invalid")
PHONE_FORMATS = ("e164", "digits")
_EMAIL = r"^[^@\s\p{Z}\p{C}]+@[^@.\s\p{Z}\p{C}]+(?:\.[^@.\s\p{Z}\p{C}]+)+$"
_MADID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_GENDERS = {
    "m": ("m", "male", "man", "men", "boy", "男", "男性", "homme", "masculin", "masculino", "hombre", "mann",
          "männlich"),
    "f": ("f", "female", "woman", "women", "girl", "女", "女性", "femme", "féminin", "feminino", "femenino",
          "mujer", "frau", "weiblich"),
}  # fmt: skip
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december")  # fmt: skip
_MONTHS = {name[:n]: str(i) for i, name in enumerate(_MONTH_NAMES, 1) for n in (3, len(name))} | {"sept": "9"}
# Year first (ISO, slashes, dots, 年月日, or 8 digits); then English month names. Numeric day/month/year
# is read separately because its order depends on the country.
_TIME = r"(?:[t ]\d.*)?"
_YMD = (
    rf"^(?P<y>\d{{4}})[-/. 年](?P<m>\d{{1,2}})[-/. 月](?P<d>\d{{1,2}})日?{_TIME}$",
    r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$",
    r"^(?P<d>\d{1,2})(?:st|nd|rd|th)?[ -]?(?P<mon>[a-z]+)\.?,?[ -]?(?P<y>\d{4})$",
    r"^(?P<mon>[a-z]+)\.?[ -]?(?P<d>\d{1,2})(?:st|nd|rd|th)?,?[ -]?(?P<y>\d{4})$",
)
_NUMERIC = rf"^(?P<a>\d{{1,2}})[-/. ](?P<b>\d{{1,2}})[-/. ](?P<y>\d{{4}}){_TIME}$"
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
Countries = pd.Series | Sequence[str | None] | str | None


@dataclass(frozen=True)
class Normalized:
    """One key's normalized column and each row's status."""

    values: pd.Series
    status: pd.Series

    def counts(self) -> dict[str, int]:
        """Rows per status: valid, blank, invalid."""
        found = self.status.value_counts()
        return {name: int(found.get(name, 0)) for name in STATUSES}


def as_text(s: pd.Series) -> pa.Array:
    """Any column as an Arrow string array (null where missing); whole floats lose their ".0"."""
    if pd.api.types.is_float_dtype(s.dtype):
        whole = s.notna() & (s % 1 == 0)
        s = s.astype(object).where(~whole, s[whole].astype("int64").astype(str)).where(s.notna(), None)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = s.dt.strftime("%Y-%m-%d")
    if not isinstance(s.dtype, pd.StringDtype):
        s = s.astype("str")
    return arrow_text(s)


_EDGE = r"[\s\p{Z}\p{Cc}\p{Cf}]"


def prepare(s: pd.Series, form: str = "NFC") -> pa.Array:
    """Unicode ``form``, edges trimmed of whitespace and invisible format characters; blank → null."""
    text = pc.utf8_trim_whitespace(normal_form(as_text(s), form))
    # Only values that still start or end with a byte outside printable ASCII can hold an invisible
    # character there; the (slow, anchored) regex runs on those alone.
    odd = np.flatnonzero(_odd_edges(text))
    if len(odd):
        trimmed = pc.replace_substring_regex(text.take(odd), rf"^{_EDGE}+|{_EDGE}+$", "")
        text = replace_rows(text, odd, trimmed)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _odd_edges(text: pa.Array) -> np.ndarray:
    """Non-null, non-empty values whose first or last byte is a control, space or non-ASCII byte."""
    kind: type[np.integer[Any]] = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(text.buffers()[1], dtype=kind)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2] or b"\0", dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    present = pc.is_valid(text).to_numpy(zero_copy_only=False) & (ends > starts)
    first = data[np.minimum(starts, len(data) - 1)]
    last = data[np.maximum(ends - 1, 0)]
    return present & ((first <= 0x20) | (first >= 0x7F) | (last <= 0x20) | (last >= 0x7F))


def normal_form(text: pa.Array, form: str, only: pa.Array | None = None) -> pa.Array:
    """``text`` in Unicode normal ``form``. ASCII is already in every form, so only other values (of
    those ``only`` marks, when given) go through the (slow) normalizer."""
    todo = ~pc.fill_null(pc.string_is_ascii(text), True).to_numpy(zero_copy_only=False)
    if only is not None:
        todo &= pc.fill_null(only, False).to_numpy(zero_copy_only=False)
    if not todo.any():
        return text
    if todo.all():
        return pc.utf8_normalize(text, form=form)
    rows = np.flatnonzero(todo)
    return replace_rows(text, rows, pc.utf8_normalize(text.take(rows), form=form))


def normalize_email(s: pd.Series, platform: str) -> Normalized:
    """Trim, lowercase; not an address → invalid. Google also drops dots before @gmail/@googlemail."""
    text = prepare(s)
    low = pc.utf8_lower(text)
    out = _where(pc.match_substring_regex(low, _EMAIL), low)
    if _platform(platform) == "google":
        parts = pc.extract_regex(out, r"^(?P<local>[^@]+)(?P<domain>@(?:gmail|googlemail)\.com)$")
        local = pc.replace_substring(pc.struct_field(parts, "local"), ".", "")
        gmail = pc.binary_join_element_wise(local, pc.struct_field(parts, "domain"), "")
        out = pc.if_else(pc.is_valid(parts), pc.if_else(pc.equal(local, ""), None, gmail), out)
    return _finish(s, text, out, platform, "email")


def normalize_phone(
    s: pd.Series,
    countries: Countries,
    platform: str,
    *,
    default_country: str | None = None,
    tiktok_format: str = "e164",
) -> Normalized:
    """Phone with its calling code: Meta digits, Google/TikTok E.164 with "+"; not a real number → invalid.

    Numbers without "+"/"00" are read with the row's country, else ``default_country``.
    """
    if tiktok_format not in PHONE_FORMATS:
        raise ConfigError(f"tiktok phone format {tiktok_format!r} is not one of {', '.join(PHONE_FORMATS)}")
    digits = _platform(platform) == "meta" or (platform == "tiktok" and tiktok_format == "digits")
    text = prepare(s, "NFKC")
    e164 = phones.e164_column(text, _regions(countries, len(s), default_country))
    out = pc.utf8_slice_codeunits(e164, 1) if digits else e164
    return _finish(s, text, out, platform, "phone")


def normalize_name(s: pd.Series, platform: str) -> Normalized:
    """FN/LN. Meta: lowercase, no punctuation or spaces, any script kept. Google: trimmed, lowercase."""
    text = prepare(s)
    low = pc.utf8_lower(text)
    out = low if _platform(platform) == "google" else per_distinct(low, places.squash)
    return _finish(s, text, out, platform, "first_name")  # FN and LN share every rule


def first_initial(fn: Normalized) -> Normalized:
    """FI: the first character of the normalized FN; blank where FN is blank or was already hashed."""
    values = arrow_text(fn.values)
    usable = pc.and_(pa.array(fn.status == "valid"), pa.array(~is_sha256_hex(values)))
    out = _where(usable, pc.utf8_slice_codeunits(values, 0, 1))
    status = fn.status.where(usable.to_numpy(zero_copy_only=False) | (fn.status != "valid"), "blank")
    return Normalized(_series(pc.fill_null(out, ""), fn.values.index), status)


def normalize_city(s: pd.Series, platform: str = "meta") -> Normalized:
    """CT: lowercase, no punctuation or spaces, Latin accents removed, other scripts as they are."""
    text = prepare(s)
    return _finish(s, text, per_distinct(text, places.place_key), platform, "city")


def normalize_state(s: pd.Series, countries: Countries, platform: str = "meta") -> Normalized:
    """ST: US two-letter code (names mapped, unknown → invalid); elsewhere folded like CT."""
    text = prepare(s)
    out = pc.if_else(
        _is_us(countries, len(s)), places.us_state_codes(text), per_distinct(text, places.place_key)
    )
    return _finish(s, text, out, platform, "state")


def normalize_zip(s: pd.Series, countries: Countries, platform: str) -> Normalized:
    """ZIP: US first 5 digits; Meta lowercase without spaces or dashes; Google as written (plain)."""
    text = prepare(s)
    hashed = "zip" in HASHED_KEYS[_platform(platform)]
    out = places.postal_codes(text, _regions(countries, len(s)), hashed)
    return _finish(s, text, out, platform, "zip")


def normalize_country(s: pd.Series, default_country: str | None, platform: str) -> Normalized:
    """COUNTRY: ISO alpha-2 (lowercase; Google upper case); unknown → invalid; blank → ``default_country``.

    ``export_frame`` passes no default: it does not put a country in a row that had none.
    """
    text = prepare(s)
    codes = places.country_codes(text)
    default = check_country(default_country)
    if default:
        codes = pc.if_else(pc.is_null(text), default, codes)
    out = pc.utf8_upper(codes) if _platform(platform) == "google" else codes
    return _finish(s, text, out, platform, "country")


def normalize_gender(s: pd.Series, platform: str = "meta") -> Normalized:
    """GEN: ``m`` or ``f`` from codes and words (male, woman, 男性, …); anything else invalid."""
    text = prepare(s)
    table = {key: code for code, words in _GENDERS.items() for key in _keys(words)}
    return _finish(s, text, places.lookup(text, table, places.place_key), platform, "gender")


def birth_parts(
    s: pd.Series, countries: Countries = None, *, today: date | None = None
) -> tuple[Normalized, Normalized, Normalized]:
    """DOBY/DOBM/DOBD (``1985``/``03``/``07``) from common date forms; 1900..this year, real dates only.

    Numeric day and month in either order (07/03/1985) are read month first for US rows, day first
    elsewhere, unless one of them is over 12.
    """
    text = prepare(s, "NFKC")
    low = pc.utf8_lower(text)
    found = {part: np.zeros(len(s), dtype=np.int64) for part in ("y", "m", "d")}
    for pattern in _YMD:
        _take_date(pc.extract_regex(low, pattern), found)
    parts = pc.extract_regex(low, _NUMERIC)
    first, second = (_ints(pc.struct_field(parts, name)) for name in ("a", "b"))
    us = _is_us(countries, len(s)).to_numpy(zero_copy_only=False)
    day_first = (first > 12) | (~us & (second <= 12))
    numeric = (found["y"] == 0) & pc.is_valid(parts).to_numpy(zero_copy_only=False)
    found["y"][numeric] = _ints(pc.struct_field(parts, "y"))[numeric]
    found["d"][numeric] = np.where(day_first, first, second)[numeric]
    found["m"][numeric] = np.where(day_first, second, first)[numeric]
    y, m, d = found["y"], found["m"], found["d"]
    this_year = (today or date.today()).year
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    days = _MONTH_DAYS[np.clip(m, 0, 12)] + (leap & (m == 2))
    ok = (y >= 1900) & (y <= this_year) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= days)
    okay = pa.array(ok)
    # Key "dob", not a hashed key: a digest in the birth-date column cannot be split, so it is invalid.
    doby, dobm, dobd = (
        _finish(s, text, _where(okay, pc.utf8_lpad(pa.array(v).cast(pa.string()), width, "0")), "meta", "dob")
        for v, width in ((y, 4), (m, 2), (d, 2))
    )
    return doby, dobm, dobd


def normalize_madid(s: pd.Series) -> Normalized:
    """MADID: lowercase UUID with hyphens, never hashed; anything else (or all zeros) invalid."""
    text = prepare(s)
    low = pc.utf8_lower(text)
    ok = pc.and_(pc.match_substring_regex(low, _MADID), pc.match_substring_regex(low, "[1-9a-f]"))
    return _finish(s, text, _where(ok, low), "meta", "madid")


def normalize_extern_id(s: pd.Series) -> Normalized:
    """EXTERN_ID: the shop's own id, trimmed, never hashed; one holding an e-mail address is invalid."""
    text = prepare(s)
    return _finish(s, text, _where(pc.invert(pc.match_substring(text, "@")), text), "meta", "extern_id")


def check_country(code: str | None) -> str | None:
    """A configured default country as lowercase alpha-2; anything else is a config error."""
    if code is None or code == "":
        return None
    found = places.country_codes(pa.array([code.strip()])).to_pylist()[0]
    if found is None or len(code.strip()) != 2:
        raise ConfigError(f"default country {code!r} is not an ISO 3166-1 alpha-2 code such as 'JP' or 'US'")
    return str(found)


def _regions(countries: Countries, n: int, default: str | None = None) -> pa.Array:
    """Per-row lowercase alpha-2 from codes or names (null where unknown), gaps filled with ``default``."""
    if countries is None or isinstance(countries, str):
        column = arrow_text([countries or None] * n)
    else:
        column = arrow_text(countries if isinstance(countries, pd.Series) else list(countries))
    column = places.country_codes(column)
    fill = check_country(default)
    return pc.fill_null(column, fill) if fill else column


def _finish(s: pd.Series, text: pa.Array, out: pa.Array, platform: str, key: str) -> Normalized:
    """Statuses from input and output; digests pass through for hashed keys; NFC kept."""
    if key in HASHED_KEYS[_platform(platform)]:
        digest = pa.array(is_sha256_hex(text))
        out = pc.if_else(digest, pc.utf8_lower(text), out)
    # Removals and case maps can break NFC; a value the rule left as it was is still in it (NFKC too).
    out = pc.fill_null(normal_form(out, "NFC", only=pc.fill_null(pc.not_equal(out, text), True)), "")
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    filled = pc.not_equal(out, "").to_numpy(zero_copy_only=False)
    codes = np.where(filled, 0, np.where(present, 2, 1)).astype(np.int8)  # positions in STATUSES
    return Normalized(
        _series(out, s.index), pd.Series(pd.Categorical.from_codes(codes, pd.Index(STATUSES)), index=s.index)
    )


def _is_us(countries: Countries, n: int) -> pa.Array:
    return pc.fill_null(pc.equal(_regions(countries, n), "us"), False)


def _take_date(parts: pa.Array, found: dict[str, np.ndarray]) -> None:
    """Fill year, month, day from one date form where no earlier form matched."""
    todo = (found["y"] == 0) & pc.is_valid(parts).to_numpy(zero_copy_only=False)
    field = {name: pc.struct_field(parts, name) for name in (f.name for f in parts.type)}
    if "mon" in field:
        field["m"] = places.lookup(field["mon"], _MONTHS)
    for part in ("y", "m", "d"):
        found[part][todo] = _ints(field[part])[todo]


def _ints(values: pa.Array) -> np.ndarray:
    """Digits as integers; 0 where missing or empty."""
    digits = _where(pc.match_substring_regex(values, r"^\d+$"), values)
    return pc.fill_null(digits.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)


def _platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ConfigError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    return platform


def _where(condition: pa.Array, values: pa.Array) -> pa.Array:
    """``values`` where ``condition`` holds, else null."""
    return pc.if_else(pc.fill_null(condition, False), values, pa.scalar(None, pa.string()))


def _keys(words: Sequence[str]) -> list[str]:
    return places.place_key(pa.array(list(words))).to_pylist()


def _series(values: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype="str")
