"""What each platform's feed holds: output fields in order, length limits, enumerations.

Facts from ``shared/specs/feeds.md``. The writers take their columns from here; validation takes
its limits from here; nothing else hard-codes a platform's field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LABELS = tuple(f"custom_label_{i}" for i in range(5))

_COMMON_TAIL = (
    "google_product_category",
    "product_type",
    "item_group_id",
    "gtin",
    "mpn",
    "color",
    "size",
    "gender",
    "age_group",
    "additional_image_link",
    *LABELS,
)


@dataclass(frozen=True)
class Platform:
    """One platform's feed rules."""

    name: str
    fields: tuple[str, ...]
    #: field -> maximum length in characters
    max_length: dict[str, int]
    #: canonical availability token -> the platform's spelling
    availability: dict[str, str]
    age_groups: frozenset[str]
    genders: frozenset[str] = frozenset({"female", "male", "unisex"})
    conditions: frozenset[str] = frozenset({"new", "refurbished", "used"})
    required: tuple[str, ...] = ()
    max_additional_images: int = 20
    extra: dict[str, str] = field(default_factory=dict)


META = Platform(
    name="meta",
    fields=(
        "id",
        "title",
        "description",
        "availability",
        "condition",
        "price",
        "sale_price",
        "sale_price_effective_date",
        "link",
        "image_link",
        "brand",
        *_COMMON_TAIL,
    ),
    max_length={"id": 100, "title": 200, "description": 9999},
    availability={
        "in_stock": "in stock",
        "out_of_stock": "out of stock",
        "preorder": "preorder",
        "backorder": "available for order",
        "discontinued": "discontinued",
    },
    age_groups=frozenset({"adult", "all ages", "teen", "kids", "toddler", "infant", "newborn"}),
    required=("id", "title", "description", "availability", "condition", "price", "link", "image_link"),
    max_additional_images=20,
)

TIKTOK = Platform(
    name="tiktok",
    fields=("sku_id", *META.fields[1:]),
    max_length={"id": 100, "title": 200, "description": 9999},
    availability={
        "in_stock": "in stock",
        "out_of_stock": "out of stock",
        "preorder": "preorder",
        "backorder": "available for order",
        "discontinued": "discontinued",
    },
    age_groups=META.age_groups,
    required=(
        "id",
        "title",
        "description",
        "availability",
        "condition",
        "price",
        "link",
        "image_link",
        "brand",
    ),
    max_additional_images=20,
)

GOOGLE = Platform(
    name="google",
    fields=(
        "id",
        "title",
        "description",
        "link",
        "image_link",
        "availability",
        "price",
        "sale_price",
        "sale_price_effective_date",
        "condition",
        "brand",
        "identifier_exists",
        *_COMMON_TAIL,
    ),
    max_length={
        "id": 50,
        "title": 150,
        "description": 5000,
        "link": 2000,
        "image_link": 2000,
        "mpn": 70,
        **{label: 100 for label in LABELS},
    },
    availability={
        "in_stock": "in_stock",
        "out_of_stock": "out_of_stock",
        "preorder": "preorder",
        "backorder": "backorder",
        "discontinued": "out_of_stock",
    },
    age_groups=frozenset({"newborn", "infant", "toddler", "kids", "adult"}),
    required=("id", "title", "description", "availability", "price", "link", "image_link"),
    max_additional_images=10,
)

PLATFORMS: dict[str, Platform] = {p.name: p for p in (META, GOOGLE, TIKTOK)}
