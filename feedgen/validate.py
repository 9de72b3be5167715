"""Each platform's rules over a cleaned chunk: which rows it rejects (and why), and its output frame.

Errors leave the row out of that platform's feed; warnings keep the row and are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedgen import issues, text
from feedgen.issues import ERROR, WARNING
from feedgen.platforms import LABELS, Platform

#: the derived columns of one chunk that its platforms share (see ``columns``), by what they read
Shared: TypeAlias = "dict[tuple[object, ...], pd.Series]"

#: countries where Google requires color (and the other apparel attributes) for apparel
_APPAREL_COLOR_COUNTRIES = frozenset({"BR", "FR", "DE", "JP", "GB", "US"})
_TRUNCATE_MARK = "…"
_TEXT = pa.large_string()
_Report = Callable[[np.ndarray, str, str, str], None]
_PRICE_REASONS = {"missing": "missing"}
_PRICE_DETAIL = {
    "missing": "price is required",
    "unparseable": "expected an amount such as 1980 or 15.00 USD",
    "not_positive": "price must be above zero",
    "currency_mismatch": "the code in the price differs from the currency column",
    "missing_currency": "no currency column and no shop currency",
}


class Facts:
    """Masks and measures of one cleaned chunk that several platforms' rules share, each made once."""

    def __init__(self, clean: pd.DataFrame) -> None:
        """Keep the chunk; nothing is computed until a rule asks."""
        self.clean = clean
        self._cache: dict[tuple[str, ...], object] = {}

    def _memo(self, key: tuple[str, ...], make: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def blank(self, column: str) -> np.ndarray:
        """True where the column is ""."""
        return cast(
            np.ndarray, self._memo(("blank", column), lambda: text.blank(text.to_arrow(self.clean[column])))
        )

    def flag(self, column: str) -> np.ndarray:
        """A boolean column as an array."""
        return cast(np.ndarray, self._memo(("flag", column), lambda: _bools(self.clean[column])))

    def longer(self, column: str, limit: int) -> np.ndarray:
        """True where a value has more than ``limit`` characters."""
        return cast(
            np.ndarray, self._memo(("longer", column, str(limit)), lambda: longer(self.clean[column], limit))
        )

    def outside(self, column: str, allowed: frozenset[str]) -> np.ndarray:
        """True where the column holds a value, and not one of ``allowed``."""
        key = ("outside", column, *sorted(allowed))
        return cast(
            np.ndarray,
            self._memo(key, lambda: ~self.blank(column) & ~_among(self.clean[column], allowed)),
        )

    def equals(self, column: str) -> dict[str, np.ndarray]:
        """Each value of a column with few values (in order of first appearance) and where it is."""

        def make() -> dict[str, np.ndarray]:
            encoded = pc.dictionary_encode(text.to_arrow(self.clean[column]))
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            return {str(value): codes == code for code, value in enumerate(encoded.dictionary.to_pylist())}

        return cast(dict[str, np.ndarray], self._memo(("equals", column), make))

    def apparel(self) -> np.ndarray:
        """Rows in Google's Apparel & Accessories category (by its name or id, or the shop's category)."""
        return cast(np.ndarray, self._memo(("apparel",), lambda: _is_apparel(self.clean)))

    def clothing(self) -> np.ndarray:
        """Rows whose Google category names clothing or shoes."""

        def make() -> np.ndarray:
            gpc = text.to_arrow(self.clean["google_product_category"])
            return text.flags(pc.match_substring_regex(gpc, r"Clothing|Shoes"))

        return cast(np.ndarray, self._memo(("clothing",), make))

    def image_count(self) -> np.ndarray:
        """How many additional image URLs a row holds (1 for a blank one, as a comma count + 1)."""

        def make() -> np.ndarray:
            return commas(self.clean["additional_image_link"]) + 1

        return cast(np.ndarray, self._memo(("image_count",), make))


def _bools(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=bool)


def check(
    clean: pd.DataFrame,
    platform: Platform,
    country: str,
    labels: dict[str, str] | None = None,
    facts: Facts | None = None,
) -> pd.DataFrame:
    """Every error and warning of ``platform`` for the rows of a cleaned chunk.

    ``facts`` of this chunk, when given, are shared with the other platforms' checks.
    """
    facts = facts if facts is not None else Facts(clean)
    name = platform.name
    found = issues.Collector(clean, name)

    def err(mask: np.ndarray, field: str, reason: str, detail: issues.Detail = "") -> None:
        found.add(mask, field, reason, ERROR, detail)

    def warn(mask: np.ndarray, field: str, reason: str, detail: issues.Detail = "") -> None:
        found.add(mask, field, reason, WARNING, detail)

    for field in platform.required:
        if field in {"price", "availability"}:
            continue  # their own reasons below
        err(facts.blank(field), field, "missing", f"{field} is required by {name}")
    for field, limit in platform.max_length.items():
        if field == "description":
            continue  # truncated with a warning in ``frame``
        column = (labels or {}).get(field, "") if field in LABELS else field
        if not column:
            continue
        over = facts.longer(column, limit)
        if over.any():
            err(over, field, "too_long", _lengths(clean[column], over, f" characters, limit {limit}"))
    for reason, where in facts.equals("_price_error").items():
        if reason:
            err(
                where,
                "price",
                _PRICE_REASONS.get(reason, "invalid_price"),
                _PRICE_DETAIL.get(reason, reason),
            )
    missing_avail = facts.blank("availability")
    err(missing_avail, "availability", "missing", f"availability is required by {name}")
    err(
        ~missing_avail & facts.blank("_availability"),
        "availability",
        "invalid_value",
        "not one of: " + ", ".join(sorted(set(platform.availability.values()))),
    )
    err(
        facts.outside("condition", platform.conditions),
        "condition",
        "invalid_value",
        "use new, refurbished or used",
    )
    err(~facts.blank("link") & ~facts.flag("_link_ok"), "link", "invalid_url", "not an absolute http(s) URL")
    err(
        ~facts.blank("image_link") & ~facts.flag("_image_ok"),
        "image_link",
        "invalid_url",
        "not an absolute http(s) URL",
    )
    err(facts.flag("_duplicate"), "id", "duplicate_id", "an earlier row has this id")

    bad_gtin = ~facts.flag("_gtin_ok")
    if name == "google":
        err(bad_gtin, "gtin", "invalid_gtin", "wrong length or check digit")
        _google_apparel(facts, country, err)
        no_ids = facts.blank("brand") & facts.blank("gtin")
        warn(no_ids, "brand", "brand_recommended", "Google needs a brand for most products")
    else:
        warn(bad_gtin, "gtin", "invalid_gtin", "wrong length or check digit; gtin left out")
        if name == "meta":
            no_brand = facts.blank("brand") & (facts.blank("gtin") | bad_gtin) & facts.blank("mpn")
            err(no_brand, "brand", "missing", "meta needs a brand, or a gtin or mpn")

    for field, allowed in (("gender", platform.genders), ("age_group", platform.age_groups)):
        bad = facts.outside(field, allowed)
        if name == "google":
            bad = bad & ~facts.apparel()  # apparel: an error raised in _google_apparel
        warn(bad, field, "invalid_value", f"not one of: {', '.join(sorted(allowed))}; left out")

    limit = platform.max_length.get("description", 0)
    if limit:
        warn(facts.longer("description", limit), "description", "truncated", f"cut to {limit} characters")
    warn(
        ~facts.blank("additional_image_link") & (facts.image_count() > platform.max_additional_images),
        "additional_image_link",
        "too_many",
        f"kept the first {platform.max_additional_images}",
    )
    return found.frame()


def frame(clean: pd.DataFrame, platform: Platform, labels: dict[str, str]) -> pd.DataFrame:
    """The platform's output columns for every row of ``clean``; the rows ``check`` rejects are left
    out when they are serialised (``FeedWriter.encode``)."""
    return pd.DataFrame(columns(clean, platform, labels), index=clean.index, copy=False)


def columns(
    clean: pd.DataFrame,
    platform: Platform,
    labels: dict[str, str],
    shared: Shared | None = None,
) -> dict[str, pd.Series]:
    """``frame``'s columns, by field in the platform's order, without making them a frame.

    With ``shared`` (one dict per chunk), a column derived with the same settings for another
    platform is that very column, made once.
    """
    shared = {} if shared is None else shared
    # what each derived column reads of the platform's settings (the others read none)
    settings: dict[str, tuple[object, ...]] = {
        "description": (platform.max_length.get("description"),),
        "availability": tuple(sorted(platform.availability.items())),
        "gender": tuple(sorted(platform.genders)),
        "age_group": tuple(sorted(platform.age_groups)),
        "additional_image_link": (platform.max_additional_images,),
    }
    blank = text.blanks(clean.index)
    derived: dict[str, Callable[[], pd.Series]] = {
        "sku_id": lambda: clean["id"],
        "description": lambda: _truncate(clean["description"], platform.max_length.get("description")),
        "availability": lambda: text.by_value(
            clean["_availability"], lambda v: platform.availability.get(v, "")
        ),
        "product_type": lambda: clean["category"],
        "gtin": lambda: _blank_unless(clean["gtin"], _bools(clean["_gtin_ok"])),
        "gender": lambda: _only(clean["gender"], platform.genders),
        "age_group": lambda: _only(clean["age_group"], platform.age_groups),
        "additional_image_link": lambda: _first_urls(
            clean["additional_image_link"], platform.max_additional_images
        ),
        "identifier_exists": lambda: _identifier_exists(clean),
    }
    for label in LABELS:
        derived[label] = _label_column(clean, labels.get(label), blank)

    def column(field: str) -> pd.Series:
        if field not in derived:
            return clean[field]
        key = ("column", field, *settings.get(field, ()))
        if key not in shared:
            shared[key] = text.as_str(derived[field]())
        return shared[key]

    # built only for the platform's fields
    return {field: text.as_str(column(field)) for field in platform.fields}


def _label_column(clean: pd.DataFrame, column: str | None, blank: pd.Series) -> Callable[[], pd.Series]:
    return lambda: clean[column] if column else blank


def _among(values: pd.Series, allowed: frozenset[str]) -> np.ndarray:
    """True where a value is one of ``allowed`` (Arrow's hash lookup; a missing value is not)."""
    return text.flags(pc.is_in(text.to_arrow(values), value_set=pa.array(sorted(allowed), _TEXT)))


def _blank_unless(values: pd.Series, keep: np.ndarray) -> pd.Series:
    """The values where ``keep`` holds, "" elsewhere."""
    arrow = text.to_arrow(values)
    kept = pc.if_else(pa.array(keep), arrow, pa.scalar("", arrow.type))
    return text.to_series(kept, values.index)


def _only(values: pd.Series, allowed: frozenset[str]) -> pd.Series:
    """The values that are one of ``allowed``; "" for the others."""
    return text.by_value(values, lambda v: v if v in allowed else "")


def _identifier_exists(clean: pd.DataFrame) -> pd.Series:
    """ "no" for a product with neither a gtin nor a brand and mpn, "" for the others."""
    blank = {name: text.blank(text.to_arrow(clean[name])) for name in ("gtin", "brand", "mpn")}
    has = ~blank["gtin"] | (~blank["brand"] & ~blank["mpn"])
    return text.to_series(pa.array(["no", ""], _TEXT).take(pa.array(has.astype(np.int8))), clean.index)


def _google_apparel(facts: Facts, country: str, err: _Report) -> None:
    """Google's apparel rules: age_group, gender (and color in some countries) required, size for clothing."""
    apparel = facts.apparel()
    if not apparel.any():
        return
    required = ["age_group", "gender"] + (["color"] if country in _APPAREL_COLOR_COUNTRIES else [])
    for field in required:
        err(apparel & facts.blank(field), field, "missing", f"Google requires {field} for apparel")
    for field in ("age_group", "gender"):
        allowed = {
            "age_group": frozenset({"newborn", "infant", "toddler", "kids", "adult"}),
            "gender": frozenset({"male", "female", "unisex"}),
        }[field]
        err(
            apparel & facts.outside(field, allowed),
            field,
            "invalid_value",
            f"not one of: {', '.join(sorted(allowed))}",
        )
    sized = apparel & facts.clothing()
    err(sized & facts.blank("size"), "size", "missing", "Google requires size for clothing and shoes")


def _is_apparel(clean: pd.DataFrame) -> np.ndarray:
    gpc, category = (text.to_arrow(clean[name]) for name in ("google_product_category", "category"))
    return (
        text.flags(pc.starts_with(gpc, "Apparel & Accessories"))
        | text.flags(pc.equal(gpc, "166"))
        | text.flags(pc.starts_with(category, "Apparel"))
    )


def longer(values: pd.Series, limit: int) -> np.ndarray:
    """True where a value has more than ``limit`` characters (counted only where its UTF-8 bytes are more)."""
    arr = text.to_arrow(values)
    over = _flags(pc.greater(pc.binary_length(arr), limit))
    rows = np.flatnonzero(over)
    if len(rows):  # a character is 1 to 4 bytes: only these rows may be over
        over[rows] = _flags(pc.greater(pc.utf8_length(arr.take(pa.array(rows))), limit))
    return over


def _lengths(values: pd.Series, where: np.ndarray, suffix: str) -> pa.Array:
    """The length in characters of the values ``where`` holds, as text followed by ``suffix``; one per
    such row, in order (a detail for ``issues.Collector.add``)."""
    lengths = pc.utf8_length(text.to_arrow(values).take(pa.array(np.flatnonzero(where))))
    # every piece an Arrow value of one type: a str would become another string type
    return pc.binary_join_element_wise(
        pc.cast(lengths, _TEXT), pa.scalar(suffix, _TEXT), pa.scalar("", _TEXT)
    )


def commas(values: pd.Series) -> np.ndarray:
    """How many commas each value holds."""
    return text.commas(text.to_arrow(values))


def _flags(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _truncate(values: pd.Series, limit: int | None) -> pd.Series:
    if not limit:
        return values
    long = longer(values, limit)
    if not long.any():
        return values
    return values.where(~long, values.str.slice(0, limit - 1).str.rstrip() + _TRUNCATE_MARK)


def _first_urls(values: pd.Series, limit: int) -> pd.Series:
    many = commas(values) >= limit
    if not many.any():
        return values
    return values.where(~many, values.str.split(",").str.slice(0, limit).str.join(","))
