"""Each platform's rules over a cleaned chunk: which rows it rejects (and why), and its output frame.

Errors leave the row out of that platform's feed; warnings keep the row and are reported.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from feedgen import issues
from feedgen.issues import ERROR, WARNING
from feedgen.platforms import LABELS, Platform

#: countries where Google requires color (and the other apparel attributes) for apparel
_APPAREL_COLOR_COUNTRIES = frozenset({"BR", "FR", "DE", "JP", "GB", "US"})
_TRUNCATE_MARK = "…"
_Report = Callable[[pd.Series, str, str, str], None]
_PRICE_REASONS = {"missing": "missing"}
_PRICE_DETAIL = {
    "missing": "price is required",
    "unparseable": "expected an amount such as 1980 or 15.00 USD",
    "not_positive": "price must be above zero",
    "currency_mismatch": "the code in the price differs from the currency column",
    "missing_currency": "no currency column and no shop currency",
}


def check(
    clean: pd.DataFrame, platform: Platform, country: str, labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """Every error and warning of ``platform`` for the rows of a cleaned chunk."""
    name = platform.name
    found: list[pd.DataFrame] = []

    def err(mask: pd.Series, field: str, reason: str, detail: pd.Series | str = "") -> None:
        found.append(issues.collect(clean, mask, name, field, reason, ERROR, detail))

    def warn(mask: pd.Series, field: str, reason: str, detail: pd.Series | str = "") -> None:
        found.append(issues.collect(clean, mask, name, field, reason, WARNING, detail))

    for field in platform.required:
        if field in {"price", "availability"}:
            continue  # their own reasons below
        err(clean[field] == "", field, "missing", f"{field} is required by {name}")
    for field, limit in platform.max_length.items():
        if field == "description":
            continue  # truncated with a warning in ``frame``
        column = (labels or {}).get(field, "") if field in LABELS else field
        if not column:
            continue
        length = clean[column].str.len()
        err(length > limit, field, "too_long", length.astype("str") + f" characters, limit {limit}")
    for reason in clean["_price_error"].unique():
        if reason:
            err(
                clean["_price_error"] == reason,
                "price",
                _PRICE_REASONS.get(reason, "invalid_price"),
                _PRICE_DETAIL.get(reason, reason),
            )
    missing_avail = clean["availability"] == ""
    err(missing_avail, "availability", "missing", f"availability is required by {name}")
    err(
        ~missing_avail & (clean["_availability"] == ""),
        "availability",
        "invalid_value",
        "not one of: " + ", ".join(sorted(set(platform.availability.values()))),
    )
    bad_condition = (clean["condition"] != "") & ~clean["condition"].isin(platform.conditions)
    err(bad_condition, "condition", "invalid_value", "use new, refurbished or used")
    err((clean["link"] != "") & ~clean["_link_ok"], "link", "invalid_url", "not an absolute http(s) URL")
    err(
        (clean["image_link"] != "") & ~clean["_image_ok"],
        "image_link",
        "invalid_url",
        "not an absolute http(s) URL",
    )
    err(clean["_duplicate"], "id", "duplicate_id", "an earlier row has this id")

    bad_gtin = ~clean["_gtin_ok"]
    if name == "google":
        err(bad_gtin, "gtin", "invalid_gtin", "wrong length or check digit")
        _google_apparel(clean, country, err)
        no_ids = (clean["brand"] == "") & (clean["gtin"] == "")
        warn(no_ids, "brand", "brand_recommended", "Google needs a brand for most products")
    else:
        warn(bad_gtin, "gtin", "invalid_gtin", "wrong length or check digit; gtin left out")
        if name == "meta":
            no_brand = (clean["brand"] == "") & ((clean["gtin"] == "") | bad_gtin) & (clean["mpn"] == "")
            err(no_brand, "brand", "missing", "meta needs a brand, or a gtin or mpn")

    for field, allowed in (("gender", platform.genders), ("age_group", platform.age_groups)):
        bad = (clean[field] != "") & ~clean[field].isin(allowed)
        if name == "google":
            bad &= ~_is_apparel(clean)  # apparel: an error raised in _google_apparel
        warn(bad, field, "invalid_value", f"not one of: {', '.join(sorted(allowed))}; left out")

    limit = platform.max_length.get("description", 0)
    if limit:
        warn(clean["description"].str.len() > limit, "description", "truncated", f"cut to {limit} characters")
    count = clean["additional_image_link"].str.count(",") + 1
    warn(
        (clean["additional_image_link"] != "") & (count > platform.max_additional_images),
        "additional_image_link",
        "too_many",
        f"kept the first {platform.max_additional_images}",
    )
    return issues.concat(found)


#: the cleaned columns ``frame`` reads (label columns come on top)
FRAME_COLUMNS = (
    "id", "title", "description", "_availability", "condition", "price", "sale_price",
    "sale_price_effective_date", "link", "image_link", "brand", "google_product_category", "category",
    "item_group_id", "gtin", "_gtin_ok", "mpn", "color", "size", "gender", "age_group",
    "additional_image_link",
)  # fmt: skip


def needed_columns(labels: dict[str, str]) -> list[str]:
    """The columns of a cleaned chunk that ``frame`` needs, for taking only those rows' cells."""
    return list(dict.fromkeys([*FRAME_COLUMNS, *labels.values()]))


def frame(clean: pd.DataFrame, platform: Platform, labels: dict[str, str]) -> pd.DataFrame:
    """The platform's output columns for the rows of ``clean`` (which already passed ``check``)."""
    out = pd.DataFrame(index=clean.index)
    source = {
        "id": clean["id"],
        "sku_id": clean["id"],
        "title": clean["title"],
        "description": _truncate(clean["description"], platform.max_length.get("description")),
        "availability": clean["_availability"].map(platform.availability).fillna("").astype("str"),
        "condition": clean["condition"],
        "price": clean["price"],
        "sale_price": clean["sale_price"],
        "sale_price_effective_date": clean["sale_price_effective_date"],
        "link": clean["link"],
        "image_link": clean["image_link"],
        "brand": clean["brand"],
        "google_product_category": clean["google_product_category"],
        "product_type": clean["category"],
        "item_group_id": clean["item_group_id"],
        "gtin": clean["gtin"].where(clean["_gtin_ok"], ""),
        "mpn": clean["mpn"],
        "color": clean["color"],
        "size": clean["size"],
        "gender": clean["gender"].where(clean["gender"].isin(platform.genders), ""),
        "age_group": clean["age_group"].where(clean["age_group"].isin(platform.age_groups), ""),
        "additional_image_link": _first_urls(clean["additional_image_link"], platform.max_additional_images),
        "identifier_exists": pd.Series("", index=clean.index, dtype="str").where(
            (clean["gtin"] != "") | ((clean["brand"] != "") & (clean["mpn"] != "")), "no"
        ),
    }
    for label in LABELS:
        column = labels.get(label)
        source[label] = clean[column] if column else pd.Series("", index=clean.index, dtype="str")
    for field in platform.fields:
        out[field] = source[field].astype("str")
    return out


def _google_apparel(clean: pd.DataFrame, country: str, err: _Report) -> None:
    """Google's apparel rules: age_group, gender (and color in some countries) required, size for clothing."""
    apparel = _is_apparel(clean)
    if not apparel.any():
        return
    required = ["age_group", "gender"] + (["color"] if country in _APPAREL_COLOR_COUNTRIES else [])
    for field in required:
        err(apparel & (clean[field] == ""), field, "missing", f"Google requires {field} for apparel")
    for field in ("age_group", "gender"):
        allowed = {
            "age_group": {"newborn", "infant", "toddler", "kids", "adult"},
            "gender": {"male", "female", "unisex"},
        }[field]
        err(
            apparel & (clean[field] != "") & ~clean[field].isin(allowed),
            field,
            "invalid_value",
            f"not one of: {', '.join(sorted(allowed))}",
        )
    sized = apparel & clean["google_product_category"].str.contains(r"Clothing|Shoes", regex=True)
    err(sized & (clean["size"] == ""), "size", "missing", "Google requires size for clothing and shoes")


def _is_apparel(clean: pd.DataFrame) -> pd.Series:
    gpc = clean["google_product_category"]
    return (
        gpc.str.startswith("Apparel & Accessories")
        | (gpc == "166")
        | clean["category"].str.startswith("Apparel")
    )


def _truncate(values: pd.Series, limit: int | None) -> pd.Series:
    if not limit:
        return values
    long = values.str.len() > limit
    if not long.any():
        return values
    return values.where(~long, values.str.slice(0, limit - 1).str.rstrip() + _TRUNCATE_MARK)


def _first_urls(values: pd.Series, limit: int) -> pd.Series:
    many = values.str.count(",") >= limit
    if not many.any():
        return values
    return values.where(~many, values.str.split(",").str.slice(0, limit).str.join(","))
