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

from feedgen import _speedups, issues, money, text
from feedgen.issues import WARNING
from feedgen.sources import ROW

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
_URL_RE = re.compile(text.URL)
#: exactly what Python's ``re`` calls ``\s`` (str.isspace), for a RE2 character class; RE2's own
#: ``\s`` is ASCII only
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f\x85\pZ"
_URL_LIST = rf"^https?://[^{_SPACE},/?#]+\.[^{_SPACE},]+(,https?://[^{_SPACE},/?#]+\.[^{_SPACE},]+)*$"
#: a list as ``_extra_images`` leaves it: no other separator, no blank item (so it needs no rewriting);
#: ``text.url_lists`` finds such lists (the tests hold it to this pattern)
_URL_LIST_PLAIN = (
    rf"^https?://[^{_SPACE},|;/?#]+\.[^{_SPACE},|;]+(,https?://[^{_SPACE},|;/?#]+\.[^{_SPACE},|;]+)*$"
)
#: what separates the words of an availability spelling ("in stock", "in-stock", "in_stock")
_SEPARATORS = re.compile(r"[\s\-_]+")
#: a whole number written with a zero fraction (any decimal digits, as Python's \d reads them)
_WHOLE_NUMBER = re.compile(r"(\d+)\.0+")
_GTIN_LENGTHS = (8, 12, 13, 14)
#: slots of an ``IdTracker``'s first table (it doubles as ids come)
_TABLE_START = 1 << 16
#: what a GTIN loses before its check: whitespace (as Python's ``\s``) and dashes
_GTIN_JUNK = f"[{_SPACE}-]"
#: the bytes such a character starts with: ASCII whitespace, "-", and any non-ASCII byte (U+0085 and
#: the Unicode spaces are not ASCII)
_GTIN_JUNK_BYTE = np.isin(np.arange(256), [*b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f -", *range(0x80, 0x100)])
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
_DROPPED = "sale price dropped"
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

    Keeps 8-byte hashes (``text.hashes``), not the strings, so memory stays small for large catalogs;
    a 64-bit collision (about 1 in 10^7 for a million ids) would reject one row as a duplicate. The
    hashes live in an open-addressing table at most half full (``_speedups.seen``), doubled as it
    fills: a chunk costs a lookup per row, not a sort (1.6-2.2 ms a 40,000-row chunk, against
    5.5-6.0 ms for the sorted array it replaced), for 16 to 32 bytes per id (16 MB at 500,000 ids).
    """

    def __init__(self) -> None:
        """Nothing seen yet."""
        self._table = np.zeros(_TABLE_START, dtype=np.uint64)
        self._stored = 0

    def __len__(self) -> int:
        """How many distinct ids have been seen."""
        return self._stored

    def duplicates(self, ids: pd.Series) -> pd.Series:
        """True for an id seen in an earlier chunk or earlier in this one; blanks never count."""
        values = text.to_arrow(ids)
        hashes = text.hashes(values)
        present = ~text.blank(values)
        self._make_room(len(hashes))
        dup = np.empty(len(hashes), dtype=bool)
        self._stored += _speedups.seen(hashes, present.view(np.uint8), self._table, dup.view(np.uint8))
        return pd.Series(dup, index=ids.index)

    def _make_room(self, more: int) -> None:
        """Double the table until it would stay at most half full with ``more`` new ids."""
        size = len(self._table)
        while 2 * (self._stored + more) > size:
            size *= 2
        if size == len(self._table):
            return
        old = self._table[self._table != 0]
        self._table = np.zeros(size, dtype=np.uint64)
        scratch = np.empty(len(old), dtype=np.uint8)
        _speedups.seen(old, np.ones(len(old), dtype=np.uint8), self._table, scratch)


def clean(chunk: pd.DataFrame, ctx: CleanContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cleaned chunk and the warnings raised while cleaning (platform ``all``)."""
    index = chunk.index
    out = {name: chunk[name] for name in chunk.columns}  # built column by column: no copy of the chunk
    found: list[pd.DataFrame] = []

    out["id"] = clean_ids(out["id"])
    rows = pd.DataFrame({k: out[k] for k in (ROW, "id") if k in out}, index=index)  # for issues
    out |= _clean_lines({name: out[name] for name in _SINGLE_LINE})
    out["description"] = _apply(
        out["description"], lambda a: text.clean_text(a, html_allowed=True, keep_lines=True)
    )
    for name in ("link", "image_link", "additional_image_link"):
        out[name] = _apply(out[name], _clean_url)

    availability = text.by_value(out["availability"], _availability)
    out["condition"] = text.by_value(out["condition"], str.lower)
    out["gender"] = text.by_value(out["gender"], lambda v: _GENDER.get(v.lower(), v.lower()))
    out["age_group"] = text.by_value(out["age_group"], lambda v: _AGE.get(v.lower(), v.lower()))

    out["currency"] = text.by_value(out["currency"], lambda code: code.upper() or ctx.currency)
    price = money.parse_column(out["price"], out["currency"], amounts=False)
    out["price"] = price["text"]

    sale, sale_issues = _sale(out, price, rows, ctx)
    out["sale_price"], out["sale_price_effective_date"] = sale
    found.append(sale_issues)

    out["gtin"] = _apply(out["gtin"], _strip_gtin)
    extra, extra_issues = _extra_images(out["additional_image_link"], rows)
    out["additional_image_link"] = extra
    found.append(extra_issues)
    out["tier"] = _integer_text(out["tier"])
    out |= {
        "_availability": availability,
        "_price_error": price["error"],
        "_price_value": price["value"],
        "_gtin_ok": _gtin_ok(out["gtin"]),
        "_link_ok": _urls_ok(out["link"]),
        "_image_ok": _urls_ok(out["image_link"]),
        "price_band": price_band(price["value"], ctx.price_bands),
    }
    return pd.DataFrame(out, index=index, copy=False), issues.concat(found)


def _clean_url(values: pa.Array) -> pa.Array:
    """XML-forbidden characters out, entities decoded, the ends trimmed; on the rows that may change."""
    return text.on_rows_with_work(
        values, lambda some: pc.utf8_trim_whitespace(text.unescape(text.strip_controls(some)))
    )


def clean_ids(ids: pd.Series) -> pd.Series:
    """Ids as cleaning leaves them: XML-forbidden characters gone, outer whitespace trimmed."""
    return _apply(ids, _clean_id)


def _clean_id(values: pa.Array) -> pa.Array:
    """XML-forbidden characters out, the ends trimmed; on the rows that may change."""
    return text.on_rows_with_work(values, lambda some: pc.utf8_trim_whitespace(text.strip_controls(some)))


def price_band(values: pd.Series, bands: tuple[float, ...]) -> pd.Series:
    """Band labels such as ``1000-3000`` and ``30000+`` from float prices (bands: ascending upper bounds)."""
    edges = [0.0, *bands]
    names = [f"{_num(lo)}-{_num(hi)}" for lo, hi in pairwise(edges)] + [f"{_num(edges[-1])}+"]
    prices = values.to_numpy(dtype=float)
    position = np.searchsorted(np.asarray(bands, dtype=float), prices, side="right")
    position = np.where(np.isnan(prices), len(names), np.minimum(position, len(names) - 1))
    labels = pa.array([*names, ""], pa.large_string()).take(pa.array(position))  # "" for no price
    return text.to_series(labels, values.index)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _apply(series: pd.Series, fn: Callable[[pa.Array], pa.Array]) -> pd.Series:
    return text.to_series(fn(text.to_arrow(series)), series.index)


def _clean_lines(columns: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """``text.clean_text`` of single-line columns, column by column: a column with nothing to clean
    (most of them, most of the time) comes back as it is, after one compiled scan."""
    return {
        name: text.to_series(text.clean_text(text.to_arrow(values)), values.index)
        for name, values in columns.items()
    }


def _availability(value: str) -> str:
    """The canonical availability token, or "" for a spelling not known."""
    return _AVAILABILITY.get(_SEPARATORS.sub("_", value.lower()), "")


def _sale(
    out: dict[str, pd.Series], price: pd.DataFrame, rows: pd.DataFrame, ctx: CleanContext
) -> tuple[tuple[pd.Series, pd.Series], pd.DataFrame]:
    """Sale price and window after the rules; invalid, not lower or ended sales go, with a warning."""
    has = text.flags(pc.not_equal(pc.utf8_trim_whitespace(text.to_arrow(out["sale_price"])), ""))
    if not has.any():
        blank = text.blanks(rows.index)
        return (blank, blank.copy()), issues.empty()
    at = np.flatnonzero(has)  # only the rows with a sale (a few in most catalogs) are parsed
    taken, some = pa.array(at), pd.RangeIndex(len(at))
    sale_text, currency, dates = (
        text.to_arrow(out[name]).take(taken)
        for name in ("sale_price", "currency", "sale_price_effective_date")
    )
    parsed = money.parse_column(
        text.to_series(sale_text, some), text.to_series(currency, some), amounts=False
    )
    encoded = pc.dictionary_encode(dates, null_encoding="encode")
    # once per distinct window (a missing one is none, as a blank one)
    windows = [_window(spelling or "", ctx.as_of) for spelling in encoded.dictionary.to_pylist()]
    win_text = pa.array([w[0] for w in windows], pa.large_string()).take(encoded.indices)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    some_error = text.to_arrow(parsed["error"])
    some_bad = ~text.blank(some_error)
    # False where either is missing
    lower = parsed["value"].to_numpy(dtype=float) < price["value"].to_numpy(dtype=float)[at]
    priced = text.blank(text.to_arrow(price["error"]))[at]
    some_not_lower = ~some_bad & priced & ~lower
    some_ended = ~some_bad & ~some_not_lower & np.array([w[1] == "ended" for w in windows], bool)[codes]
    some_bad_window = (
        ~some_bad & ~some_not_lower & np.array([w[1] == "unparseable" for w in windows], bool)[codes]
    )
    some_keep = ~some_bad & ~some_not_lower & ~some_ended & ~some_bad_window
    not_lower, ended, bad_window = (
        _on(at, mask, len(has)) for mask in (some_not_lower, some_ended, some_bad_window)
    )
    kept, keep = at[some_keep], pa.array(some_keep)
    sale_price = _text_on(kept, text.to_arrow(parsed["text"]).filter(keep), rows.index)
    window = _text_on(kept, win_text.filter(keep), rows.index)
    found = issues.Collector(rows, issues.ALL)
    for reason in pc.unique(some_error.filter(pa.array(some_bad))).to_pylist():
        where = _on(at, text.flags(pc.equal(some_error, reason)), len(has))
        found.add(where, "sale_price", f"sale_price_{reason}", WARNING, _DROPPED)
    for mask, field, reason, detail in (
        (not_lower, "sale_price", "sale_price_not_lower", "sale price not lower than price; dropped"),
        (ended, "sale_price_effective_date", "sale_expired", f"sale window ended; {_DROPPED}"),
        (
            bad_window,
            "sale_price_effective_date",
            "sale_window_unparseable",
            f"expected start/end in ISO 8601; {_DROPPED}",
        ),
    ):
        found.add(mask, field, reason, WARNING, detail)
    return (sale_price, window), found.frame()


def _on(rows: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """A mask over ``n`` rows from ``mask`` over ``rows`` (the others False)."""
    full = np.zeros(n, dtype=bool)
    full[rows] = mask
    return full


def _text_on(rows: np.ndarray, values: pa.Array, index: pd.Index) -> pd.Series:
    """A text column on ``index`` with ``values`` at the positions ``rows`` (sorted), "" elsewhere."""
    blank = pa.repeat(pa.scalar("", pa.large_string()), len(index))
    return text.to_series(text.replace_rows(blank, rows, values), index)


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


def _strip_gtin(values: pa.Array) -> pa.Array:
    """Whitespace and dashes out of GTINs, on the rows that hold either (most hold digits only)."""
    return text.on_rows_with(
        values, _GTIN_JUNK_BYTE, lambda some: pc.replace_substring_regex(some, _GTIN_JUNK, "")
    )


def _gtin_ok(gtins: pd.Series) -> pd.Series:
    """False for a GTIN that is not 8, 12, 13 or 14 digits with a valid check digit; True when blank.

    Digit strings are checked by the compiled pass (``text.gtins``, GS1 mod 10 as ``stdnum.ean``);
    anything else, rare, by ``stdnum.ean.is_valid`` itself once per distinct value.
    """
    verdict = text.gtins(text.to_arrow(gtins))
    ok = verdict == text.GTIN_OK
    other = np.flatnonzero(verdict == text.GTIN_OTHER)
    if len(other):  # not digits only: spaces, dashes, letters; stdnum's own rules decide
        junk = gtins.iloc[other]
        checks = {g: len(g) in _GTIN_LENGTHS and ean.is_valid(g) for g in junk.unique()}
        ok[other] = junk.map(checks).to_numpy(dtype=bool)
    return pd.Series(ok, index=gtins.index)


def _urls_ok(urls: pd.Series) -> pd.Series:
    return pd.Series(text.urls(text.to_arrow(urls)), index=urls.index)


def _extra_images(links: pd.Series, rows: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Comma-separated absolute URLs; anything else in the list is dropped with a warning.

    Lists already in that form (most) are matched once and left as they are; only the others have
    their separators rewritten and are matched again.
    """
    raw = text.to_arrow(links)
    # lists the compiled check passes are plain; the rest (a non-ASCII one too) go through the patterns
    odd = np.flatnonzero(~text.url_lists(raw) & ~text.blank(raw))
    joined, ok = raw, np.ones(len(raw), dtype=bool)
    if len(odd):
        some = pc.utf8_trim(pc.replace_substring_regex(raw.take(pa.array(odd)), f"[{_SPACE}|,;]+", ","), ",")
        joined = text.replace_rows(raw, odd, some)
        ok[odd] = text.flags(pc.match_substring_regex(some, _URL_LIST)) | text.blank(some)
    values = text.to_series(joined, links.index)
    if ok.all():
        return values, issues.empty()
    good = pd.Series(ok, index=links.index)
    fixed = values.copy()
    fixed[~good] = values[~good].map(lambda v: ",".join(u for u in v.split(",") if _URL_RE.match(u)))
    found = issues.collect(
        rows,
        ~good,
        issues.ALL,
        "additional_image_link",
        "invalid_url",
        WARNING,
        "not an absolute http(s) URL; dropped from the list",
    )
    return fixed.astype("str"), found


def _integer_text(values: pd.Series) -> pd.Series:
    """``2.0`` → ``2`` so numeric labels compare as the same string (once per distinct value)."""
    return text.by_value(values, _whole_number)


def _whole_number(value: str) -> str:
    whole = _WHOLE_NUMBER.fullmatch(value)
    return whole.group(1) if whole else value
