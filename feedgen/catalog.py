"""Clean one chunk of the catalog, column by column, before any platform's rules apply.

``clean`` is a pure function from a raw chunk (logical columns, strings) to a cleaned chunk plus
the warnings it raised. Parsed facts the platform checks need are kept in ``_``-prefixed columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import ean

from feedgen import issues, money, text
from feedgen.issues import WARNING

_SINGLE_LINE = (
    "title",
    "brand",
    "mpn",
    "color",
    "size",
    "item_group_id",
    "category",
    "google_product_category",
    "line",
    "tier",
    "condition",
    "availability",
    "gender",
    "age_group",
    "currency",
    "gtin",
    "inventory",
    "sale_price_effective_date",
)
_URL = r"^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$"
_URL_RE = re.compile(_URL)
_AVAILABILITY = {
    "in_stock": "in_stock",
    "instock": "in_stock",
    "available": "in_stock",
    "out_of_stock": "out_of_stock",
    "outofstock": "out_of_stock",
    "sold_out": "out_of_stock",
    "soldout": "out_of_stock",
    "preorder": "preorder",
    "pre_order": "preorder",
    "backorder": "backorder",
    "back_order": "backorder",
    "available_for_order": "backorder",
    "discontinued": "discontinued",
}
_GENDER = {
    "female": "female",
    "f": "female",
    "women": "female",
    "woman": "female",
    "male": "male",
    "m": "male",
    "men": "male",
    "man": "male",
    "unisex": "unisex",
}
_AGE = {
    "adult": "adult",
    "adults": "adult",
    "all ages": "all ages",
    "teen": "teen",
    "kids": "kids",
    "kid": "kids",
    "toddler": "toddler",
    "infant": "infant",
    "newborn": "newborn",
}
#: canonical availability tokens a shopper can buy now or soon (used by pairing too)
BUYABLE = frozenset({"in_stock", "preorder", "backorder"})


@dataclass(frozen=True)
class CleanContext:
    """What cleaning needs to know besides the rows."""

    currency: str
    as_of: datetime
    price_bands: tuple[float, ...] = (1000.0, 3000.0, 10000.0, 30000.0)


class IdTracker:
    """Remembers ids across chunks, so a later duplicate is found wherever it is.

    Keeps 8-byte hashes, not the strings, so memory stays small for large catalogs; a 64-bit
    collision (about 1 in 10^7 for a million ids) would reject one row as a duplicate.
    """

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)

    def duplicates(self, ids: pd.Series) -> pd.Series:
        """True for an id seen in an earlier chunk or earlier in this one; blanks never count."""
        hashes = pd.util.hash_pandas_object(ids, index=False).to_numpy()
        blank = (ids == "").to_numpy()
        dup = pd.Series(hashes).duplicated().to_numpy() | np.isin(hashes, self._seen)
        dup &= ~blank
        self._seen = np.union1d(self._seen, hashes[~blank])
        return pd.Series(dup, index=ids.index)


def clean(chunk: pd.DataFrame, ctx: CleanContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cleaned chunk and the warnings raised while cleaning (platform ``all``)."""
    out = chunk.copy()
    index = out.index
    found: list[pd.DataFrame] = []

    out["id"] = _apply(out["id"], lambda a: pc.utf8_trim_whitespace(text.strip_controls(a)))
    for name in _SINGLE_LINE:
        out[name] = _apply(out[name], text.clean_text)
    out["description"] = _apply(
        out["description"], lambda a: text.clean_text(a, html_allowed=True, keep_lines=True)
    )
    for name in ("link", "image_link", "additional_image_link"):
        out[name] = _apply(
            out[name], lambda a: pc.utf8_trim_whitespace(text.unescape(text.strip_controls(a)))
        )

    lower = {name: out[name].str.lower() for name in ("availability", "condition", "gender", "age_group")}
    out["_availability"] = lower["availability"].str.replace(r"[\s\-_]+", "_", regex=True).map(_AVAILABILITY)
    out["_availability"] = out["_availability"].fillna("").astype("str")
    out["condition"] = lower["condition"]
    out["gender"] = lower["gender"].map(_GENDER).fillna(lower["gender"]).astype("str")
    out["age_group"] = lower["age_group"].map(_AGE).fillna(lower["age_group"]).astype("str")

    out["currency"] = out["currency"].str.upper().where(out["currency"] != "", ctx.currency)
    price = money.parse_column(out["price"], out["currency"])
    out["price"] = price["text"]
    out["_price_error"] = price["error"]
    out["_price_value"] = price["value"]
    out["_price_amount"] = price["amount"]

    sale, sale_issues = _sale(out, ctx)
    out["sale_price"], out["sale_price_effective_date"] = sale
    found.append(sale_issues)

    out["gtin"] = out["gtin"].str.replace(r"[\s\-]", "", regex=True)
    out["_gtin_ok"] = _gtin_ok(out["gtin"])
    out["_link_ok"] = _urls_ok(out["link"])
    out["_image_ok"] = _urls_ok(out["image_link"])
    extra, extra_issues = _extra_images(out)
    out["additional_image_link"] = extra
    found.append(extra_issues)
    out["tier"] = _integer_text(out["tier"])
    out["price_band"] = price_band(out["_price_value"], ctx.price_bands)
    out.index = index
    return out, issues.concat(found)


def price_band(values: pd.Series, bands: tuple[float, ...]) -> pd.Series:
    """Band labels such as ``1000-3000`` and ``30000+`` from float prices (bands: ascending upper bounds)."""
    edges = [0.0, *bands]
    names = [f"{_num(lo)}-{_num(hi)}" for lo, hi in pairwise(edges)] + [f"{_num(edges[-1])}+"]
    position = np.searchsorted(np.asarray(bands, dtype=float), values.to_numpy(dtype=float), side="right")
    labels = np.asarray(names, dtype=object)[np.minimum(position, len(names) - 1)]
    return pd.Series(labels, index=values.index, dtype="str").where(values.notna(), "")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _apply(series: pd.Series, fn: Callable[[pa.Array], pa.Array]) -> pd.Series:
    return text.to_series(fn(text.to_arrow(series)), series.index)


def _sale(out: pd.DataFrame, ctx: CleanContext) -> tuple[tuple[pd.Series, pd.Series], pd.DataFrame]:
    """Sale price and window after the rules; invalid, not lower or ended sales go, with a warning."""
    has = out["sale_price"].str.strip() != ""
    sale_price = pd.Series("", index=out.index, dtype="str")
    window = pd.Series("", index=out.index, dtype="str")
    if not has.any():
        return (sale_price, window), issues.empty()
    parsed = money.parse_column(out["sale_price"], out["currency"])
    windows = out["sale_price_effective_date"].map(_window_cache(out["sale_price_effective_date"], ctx.as_of))
    win_text = windows.map(lambda w: w[0]).astype("str")
    win_error = windows.map(lambda w: w[1]).astype("str")
    bad = has & (parsed["error"] != "")
    not_lower = has & ~bad & (out["_price_error"] == "") & ~(parsed["value"] < out["_price_value"])
    ended = has & ~bad & ~not_lower & (win_error == "ended")
    bad_window = has & ~bad & ~not_lower & (win_error == "unparseable")
    keep = has & ~bad & ~not_lower & ~ended & ~bad_window
    sale_price = parsed["text"].where(keep, "")
    window = win_text.where(keep, "")
    found = [
        issues.collect(
            out,
            bad & (parsed["error"] == error),
            issues.ALL,
            "sale_price",
            f"sale_price_{error}",
            WARNING,
            "sale price dropped",
        )
        for error in parsed["error"][bad].unique()
    ]
    found += [
        issues.collect(
            out,
            not_lower,
            issues.ALL,
            "sale_price",
            "sale_price_not_lower",
            WARNING,
            "sale price not lower than price; dropped",
        ),
        issues.collect(
            out,
            ended,
            issues.ALL,
            "sale_price_effective_date",
            "sale_expired",
            WARNING,
            "sale window ended; sale price dropped",
        ),
        issues.collect(
            out,
            bad_window,
            issues.ALL,
            "sale_price_effective_date",
            "sale_window_unparseable",
            WARNING,
            "expected start/end in ISO 8601; sale price dropped",
        ),
    ]
    return (sale_price, window), issues.concat(found)


def _window_cache(values: pd.Series, as_of: datetime) -> dict[str, tuple[str, str]]:
    return {v: _window(v, as_of) for v in values.unique()}


def _window(value: str, as_of: datetime) -> tuple[str, str]:
    """(``YYYY-MM-DDThh:mm±hhmm/…`` or "", error) for one sale window; no offset means UTC."""
    if not value:
        return "", ""
    parts = value.split("/")
    if len(parts) != 2:
        return "", "unparseable"
    try:
        start = _instant(parts[0], end=False)
        end = _instant(parts[1], end=True)
    except ValueError:
        return "", "unparseable"
    if end < start:
        return "", "unparseable"
    if end < as_of:
        return "", "ended"
    return f"{start:%Y-%m-%dT%H:%M%z}/{end:%Y-%m-%dT%H:%M%z}", ""


def _instant(value: str, end: bool) -> datetime:
    value = value.strip()
    moment = datetime.fromisoformat(value)
    if len(value) <= 10 and end:
        moment = moment + timedelta(hours=23, minutes=59)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _gtin_ok(gtins: pd.Series) -> pd.Series:
    """False for a GTIN that is not 8, 12, 13 or 14 digits with a valid check digit; True when blank."""
    checks = {g: (g == "") or (len(g) in (8, 12, 13, 14) and ean.is_valid(g)) for g in gtins.unique()}
    return gtins.map(checks).astype(bool)


def _urls_ok(urls: pd.Series) -> pd.Series:
    return pd.Series(
        pc.match_substring_regex(text.to_arrow(urls), _URL).to_numpy(zero_copy_only=False), index=urls.index
    )


def _extra_images(out: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Comma-separated absolute URLs; anything else in the list is dropped with a warning."""
    values = out["additional_image_link"].str.replace(r"[\s|,;]+", ",", regex=True).str.strip(",")
    good = values.str.fullmatch(r"https?://[^\s,/?#]+\.[^\s,]+(,https?://[^\s,/?#]+\.[^\s,]+)*") | (
        values == ""
    )
    if good.all():
        return values, issues.empty()
    fixed = values.copy()
    fixed[~good] = values[~good].map(lambda v: ",".join(u for u in v.split(",") if _URL_RE.match(u)))
    found = issues.collect(
        out,
        ~good,
        issues.ALL,
        "additional_image_link",
        "invalid_url",
        WARNING,
        "not an absolute http(s) URL; dropped from the list",
    )
    return fixed.astype("str"), found


def _integer_text(values: pd.Series) -> pd.Series:
    """``2.0`` → ``2`` so numeric labels compare as the same string."""
    return values.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
