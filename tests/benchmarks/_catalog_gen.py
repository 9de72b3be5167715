"""A large, realistic, messy JPY catalog generated column-wise (numpy + pyarrow), for the benchmarks.

``chunks(n, seed)`` yields Arrow tables of logical catalog columns, all strings; the same ``n`` and
``seed`` always give the same rows. About 3 % of rows are bad on purpose (missing fields, bad
prices, wrong GTIN check digits, relative links, control characters, over-long titles, duplicate ids).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

CHUNK = 100_000
LINES = [
    ("Vital Drink", "Health > Drinks", "499"),
    ("Aqua Mirrorless", "Electronics > Cameras", "152"),
    ("Office Suite", "Software > Business", "5300"),
    ("Trail Jacket", "Apparel > Outerwear", "Apparel & Accessories > Clothing > Outerwear"),
    ("Cotton Tee", "Apparel > Tops", "Apparel & Accessories > Clothing > Shirts & Tops"),
    ("Memory Card", "Electronics > Accessories", "3387"),
    ("Protein Bar", "Health > Supplements", "525"),
]
#: value -> weight; the rare values are the deliberately bad ones
BRANDS = {
    "Sakura & Co.": 25,
    "Kumo": 25,
    "Hoshi Labs": 20,
    "Nami": 15,
    "Tetsu": 13,
    'The "Best" Brand': 1.5,
    "": 0.5,
}
TIERS = ["light", "standard", "premium", "pro"]
AVAILABILITY: dict[str, float] = {
    "in stock": 60,
    "in_stock": 15,
    "Out of Stock": 10,
    "preorder": 4,
    "available for order": 3,
}
AVAILABILITY |= {"sold-out": 3, "discontinued": 4.5, "": 0.3, "maybe later": 0.2}
CONDITIONS = {"new": 90, "New": 4, "refurbished": 3, "used": 2.8, "broken": 0.2}
COLORS = ["black", "white", "navy", "red", "beige"]
SIZES = ["S", "M", "L", "XL", "26.5cm"]
GENDERS = {"female": 40, "male": 35, "unisex": 20, "Women": 3, "M": 2}
AGES = {"adult": 80, "kids": 18, "teen": 1, "": 1}
SALE_WINDOWS = {
    "": 70,
    "2024-01-01/2099-12-31": 20,
    "2020-01-01T00:00+0900/2020-02-01T00:00+0900": 8,
    "soon": 2,
}
OPENINGS = [
    "<p>Our best-selling {} &amp; customer favourite, now improved.</p>",
    "<p><b>New:</b> the {} you asked for &#8211; lighter, stronger &amp; greener.</p>",
    "<p>Meet the {}: &quot;simply the best in its class&quot; says our panel.</p>",
    "<p>The {} for every day.<br>Made to last, designed in Tokyo.</p>",
]
SENTENCES = [
    "Each unit is checked by hand before it leaves the warehouse, so what you get is what you saw.",
    'Reviewers call it "the one to beat" &#8211; and we agree, with a 2-year warranty included.',
    "<br>Free shipping over 5,000 yen. Returns accepted within 30 days &amp; no questions asked.",
    "Works with the whole range: pair it with refills, cases or the pro accessory kit.\n",
    "<b>Note:</b> colours may differ slightly from the photos; sizes run small &#8212; order one up.",
    "Packed in recycled cardboard.\nShips from Osaka within 1&#8211;2 business days.",
    "Contains: 1 unit, quick-start guide, &quot;thank you&quot; card. Batteries not included.",
    "Loved by 10,000+ customers since 2019 &middot; rated 4.7 / 5 on average.",
]
CLOSINGS = ["</p>", "<br>\n<b>Limited stock.</b></p>", "\n\nSee the size chart below.</p>", "&nbsp;</p>"]


def _take(rng: np.random.Generator, pool: Sequence[str] | Mapping[str, float], n: int) -> pa.Array:
    """``n`` values drawn from a list (uniformly) or from a value -> weight mapping."""
    weights = np.array(list(pool.values()), dtype=float) if isinstance(pool, Mapping) else None
    p = weights / weights.sum() if weights is not None else None
    return pa.array(list(pool), pa.string()).take(pa.array(rng.choice(len(pool), n, p=p)))


def _ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _gtins(rng: np.random.Generator, n: int) -> pa.Array:
    """EAN-13 with a computed check digit; 2 % with a wrong one, 10 % blank, some with spaces."""
    body = rng.integers(0, 10, size=(n, 12))
    body[:, 0] = 4  # Japanese prefix 45/49
    body[:, 1] = rng.choice([5, 9], n)
    check = (10 - (body * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    check = np.where(rng.random(n) < 0.02, (check + 1) % 10, check)
    digits = np.concatenate([body, check[:, None]], axis=1).astype(np.uint8) + ord("0")
    text = pa.array(digits.view("S13").ravel().astype(str))
    text = pc.if_else(pa.array(rng.random(n) < 0.03), pc.utf8_replace_slice(text, 4, 4, " "), text)
    return pc.if_else(pa.array(rng.random(n) < 0.10), "", text)


def _table(start: int, n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng([seed, start])
    num = np.arange(start, start + n)
    sku = _join("SKU-", pc.utf8_lpad(_ints(num), 7, "0"))
    dup = rng.random(n) < 0.002  # an id seen earlier (same chunk or an earlier one)
    sku = pc.if_else(pa.array(dup), _join("SKU-", pc.utf8_lpad(_ints(num // 2), 7, "0")), sku)
    line_ix = rng.choice(len(LINES), n)
    line = pa.array([name for name, _, _ in LINES]).take(pa.array(line_ix))
    tier_ix = rng.integers(0, 4, n)
    tier = pa.array(TIERS).take(pa.array(tier_ix))
    brand = _take(rng, BRANDS, n)
    title = _join(brand, " ", line, " ", tier, ", ", _ints(rng.integers(1, 500, n)), ' pcs "', sku, '"')
    bad = rng.random(n)
    title = pc.if_else(pa.array(bad < 0.005), "", title)
    title = pc.if_else(pa.array((bad > 0.005) & (bad < 0.008)), _join(title, "\x07 long ", "x" * 200), title)
    title = pc.if_else(pa.array((bad > 0.008) & (bad < 0.010)), _join(title, " \u3000 w/\ttab"), title)
    pick = pa.array(rng.choice(len(OPENINGS), n))
    before = pa.array([o.split("{}")[0] for o in OPENINGS]).take(pick)
    after = pa.array([o.split("{}")[1] for o in OPENINGS]).take(pick)
    desc = _join(
        before,
        line,
        after,
        "<p>",
        *[_take(rng, [f"{x} " for x in SENTENCES], n) for _ in range(3)],
        "Model ",
        sku,
        " (",
        line,
        " ",
        tier,
        ").",
        _take(rng, CLOSINGS, n),
    )
    desc = pc.if_else(pa.array(bad > 0.997), "", desc)
    price = (np.exp(rng.uniform(np.log(300), np.log(300_000), n)) // 10 * 10).astype(np.int64)
    price_text = _ints(price)
    grouped = pc.replace_substring_regex(price_text, r"(\d)(\d{3})$", r"\1,\2")
    price_text = pc.if_else(pa.array(rng.random(n) < 0.3), grouped, price_text)
    broken = _take(rng, ["", "0", "-500", "abc"], n)
    price_text = pc.if_else(pa.array((bad > 0.990) & (bad < 0.993)), broken, price_text)
    sale_roll = rng.random(n)
    sale = (price * rng.uniform(0.5, 1.02, n) // 10 * 10).astype(np.int64)  # ~4 % of them not lower
    sale_text = pc.if_else(pa.array(sale_roll < 0.15), _ints(sale), "")
    apparel = pa.array(np.isin(line_ix, [3, 4]))
    blank = pa.array([""] * n, pa.string())
    link = _join("https://shop.example.jp/products/", sku, "?variant=", _ints(tier_ix + 1))
    link = pc.if_else(pa.array((bad > 0.993) & (bad < 0.995)), _join("/products/", sku), link)
    image = _join("https://cdn.shop.example.jp/img/", sku, ".jpg")
    extra = _join(image, "?v=2,https://cdn.shop.example.jp/img/", sku, "_back.jpg")
    cols = {
        "id": pc.if_else(pa.array((bad > 0.995) & (bad < 0.996)), "", sku),
        "title": title,
        "description": desc,
        "price": price_text,
        "currency": _take(rng, ["JPY", "JPY", "JPY", "jpy", ""], n),
        "sale_price": sale_text,
        "sale_price_effective_date": pc.if_else(pa.array(sale_roll < 0.15), _take(rng, SALE_WINDOWS, n), ""),
        "availability": _take(rng, AVAILABILITY, n),
        "condition": _take(rng, CONDITIONS, n),
        "brand": brand,
        "gtin": _gtins(rng, n),
        "mpn": _join("MPN-", _ints(num)),
        "link": link,
        "image_link": image,
        "additional_image_link": pc.if_else(pa.array(rng.random(n) < 0.5), extra, ""),
        "category": pa.array([c for _, c, _ in LINES]).take(pa.array(line_ix)),
        "google_product_category": pa.array([g for _, _, g in LINES]).take(pa.array(line_ix)),
        "item_group_id": _join("G-", _ints(num // 4)),
        "color": pc.if_else(apparel, _take(rng, COLORS, n), blank),
        "size": pc.if_else(apparel, _take(rng, SIZES, n), blank),
        "gender": pc.if_else(apparel, _take(rng, GENDERS, n), blank),
        "age_group": pc.if_else(apparel, _take(rng, AGES, n), blank),
        "line": line,
        "tier": _take(rng, ["1", "2", "3", "4", "2.0"], n),
        "inventory": _ints(rng.integers(0, 500, n)),
    }
    return pa.table(cols)


def chunks(n: int, seed: int = 20240601) -> Iterator[pa.Table]:
    """The catalog's rows, ``CHUNK`` at a time."""
    for start in range(0, n, CHUNK):
        yield _table(start, min(CHUNK, n - start), seed)


def write_catalog(path: Path, n: int, seed: int = 20240601, keep: bool = False) -> pa.Table | None:
    """Write ``n`` rows as CSV (streamed); with ``keep`` also return them as one table."""
    kept = []
    with pacsv.CSVWriter(path, _table(0, 1, seed).schema) as writer:
        for table in chunks(n, seed):
            writer.write_table(table)
            if keep:
                kept.append(table)
    return pa.concat_tables(kept) if keep else None
