"""The catalog as the people side sees it: one row per product id, with what rules select on.

Products come from the same source and the same cleaning as the feeds (``feedgen.catalog.clean``), so a
product set never names a product that the feeds leave out. Selection (``purchased``, ``viewed``,
``exclude.purchased``) reads every product with an id, including ones the feeds reject, because an order
for a product whose image link is broken still tells us what the person bought; pairing offers only
products that every configured feed publishes (``in_feeds``) and that can be bought (``available``).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from audiences.rules import Selector
from feedgen import catalog, issues, validate
from feedgen.config import CATALOG_COLUMNS, CatalogConfig, FeedsConfig, ShopConfig
from feedgen.platforms import PLATFORMS
from feedgen.sources import ROW, read_chunks
from feedgen.writers import platform_of

#: the columns of ``load_products``' frame, besides the feed's label columns
PRODUCT_COLUMNS = ("id", "title", "line", "tier", "category", "brand", "price", "available", "in_feeds")


def load_products(
    shop: ShopConfig, catalog_config: CatalogConfig, feeds: FeedsConfig, as_of: datetime
) -> pd.DataFrame:
    """One row per distinct product id (the first row of a duplicated id), in catalog order.

    ``price`` is the list price in the shop currency (NaN when unparseable), ``tier`` an integer
    (NA when blank), ``available`` true for in stock, preorder and backorder, ``in_feeds`` true when
    no configured feed rejects the row; ``labels`` holds the feed's ``custom_label_N`` values.
    """
    ctx = catalog.CleanContext(currency=shop.currency, as_of=as_of, price_bands=tuple(feeds.price_bands))
    platforms = sorted({platform_of(fmt) for fmt in feeds.formats})
    labels = dict(feeds.labels)
    parts = []
    tracker = catalog.IdTracker()
    for chunk in read_chunks(catalog_config.source, CATALOG_COLUMNS, catalog_config.columns):
        clean, _ = catalog.clean(chunk, ctx)
        clean["_duplicate"] = tracker.duplicates(clean["id"])
        keep = (clean["id"] != "") & ~clean["_duplicate"]
        rejected = np.zeros(len(clean), dtype=bool)
        for platform in platforms:
            found = validate.check(clean, PLATFORMS[platform], shop.default_country, labels)
            errors = found.loc[found["severity"] == issues.ERROR, "row"]
            rejected |= clean[ROW].isin(errors).to_numpy()
        part = pd.DataFrame(
            {
                "id": clean["id"],
                "title": clean["title"],
                "line": clean["line"].str.strip(),
                "tier": pd.to_numeric(clean["tier"], errors="coerce").astype("Int64"),
                "category": clean["category"],
                "brand": clean["brand"],
                "price": clean["_price_value"].astype("float64"),
                "available": clean["_availability"].isin(catalog.BUYABLE),
                "in_feeds": ~rejected,
                **{label: clean[column].astype("str") for label, column in sorted(labels.items())},
            }
        )
        parts.append(part[keep.to_numpy()])
    if not parts:
        empty = {c: pd.Series([], dtype="str") for c in PRODUCT_COLUMNS}
        return pd.DataFrame(empty)
    products = pd.concat(parts, ignore_index=True)
    products["price"] = products["price"].where(products["price"] > 0)
    return products


def label_columns(products: pd.DataFrame) -> list[str]:
    """The ``custom_label_N`` columns present in ``products``."""
    return [c for c in products.columns if c.startswith("custom_label_")]


def matches(products: pd.DataFrame, selector: Selector) -> pd.Series:
    """True for each product (row of ``products``) that meets every condition of ``selector``."""
    mask = pd.Series(True, index=products.index)
    conditions = selector.conditions()
    if "product_ids" in conditions:
        mask &= products["id"].isin(selector.product_ids or [])
    for name in ("category", "line", "brand"):
        if name in conditions:
            mask &= products[name] == conditions[name]
    if selector.tier is not None:
        mask &= (products["tier"] == selector.tier).fillna(False).astype(bool)
    if selector.min_price is not None:
        mask &= (products["price"] >= selector.min_price).fillna(False).astype(bool)
    if selector.max_price is not None:
        mask &= (products["price"] <= selector.max_price).fillna(False).astype(bool)
    return mask


def group_key(products: pd.DataFrame) -> pd.Series:
    """What a product is "a kind of": its line, else its category, else its own id."""
    line = products["line"].where(products["line"] != "", products["category"])
    return line.where(line != "", products["id"])
