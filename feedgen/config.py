"""The ``shop``, ``catalog`` and ``feeds`` sections of the pipeline's one YAML file, and the file loader.

``feedgen`` validates its own sections strictly; the sections the audience side owns are named in
``AUDIENCE_SECTIONS`` and left to ``audiences`` (which composes the whole file's model). A top-level key
that belongs to neither is an error in both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import quote

import pycountry
import yaml
from pydantic import BaseModel, ConfigDict, Field, Tag, ValidationError, field_validator, model_validator

from feedgen.errors import ConfigError
from feedgen.writers import FORMATS

#: Top-level sections owned by the audience side (validated by ``audiences.config``).
AUDIENCE_SECTIONS = frozenset(
    {
        "customers",
        "orders",
        "satisfaction",
        "complaints",
        "prospects",
        "views",
        "suppression",
        "consent",
        "audiences",
        "destinations",
        "state",
        "sync",
        "retention",
    }
)
FEED_SECTIONS = frozenset({"shop", "catalog", "feeds"})

#: Logical catalog columns (design.md "Inputs"), plus the optional sale window.
CATALOG_COLUMNS = (
    "id",
    "title",
    "description",
    "price",
    "currency",
    "sale_price",
    "sale_price_effective_date",
    "availability",
    "condition",
    "brand",
    "gtin",
    "mpn",
    "link",
    "image_link",
    "additional_image_link",
    "category",
    "google_product_category",
    "item_group_id",
    "color",
    "size",
    "gender",
    "age_group",
    "line",
    "tier",
    "inventory",
)
#: Values a custom label can be filled from: any logical column, or a derived one.
DERIVED_LABEL_SOURCES = ("price_band",)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_mapping(value: dict[str, str], logical: tuple[str, ...]) -> dict[str, str]:
    """A column mapping whose keys are all logical names (for a ``columns`` validator)."""
    unknown = sorted(set(value) - set(logical))
    if unknown:
        raise ValueError(f"unknown logical column(s) {unknown}; allowed: {', '.join(logical)}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: rows per chunk when a source does not set ``chunk_size`` (see ``feedgen.build.FeedJob.read_from``)
CHUNK_ROWS = 40_000
#: the same for a feed build of several formats
CHUNK_ROWS_SEVERAL_FORMATS = 20_000


class SourceConfig(_Strict):
    """Where a table comes from: a CSV/Parquet file, or a SQL table or query via a SQLAlchemy URL."""

    path: Path | None = Field(None, description="CSV or Parquet file; relative to the config file's folder.")
    url: str | None = Field(
        None, description="SQLAlchemy URL; ${VAR} is replaced from the environment (for passwords)."
    )
    table: str | None = Field(None, description="Table to read, with `url`.")
    query: str | None = Field(None, description="SELECT to run, with `url`.")
    format: Literal["csv", "parquet"] | None = Field(
        None, description="File format; guessed from the extension when omitted."
    )
    encoding: str = Field("utf-8", description="Text encoding of a CSV file.")
    delimiter: str = Field(",", description="Field delimiter of a CSV file.")
    chunk_size: int = Field(
        CHUNK_ROWS,
        gt=0,
        description=(
            "Rows per chunk; memory stays bounded by this. A feed build of several formats takes "
            f"{CHUNK_ROWS_SEVERAL_FORMATS:,} when it is not set."
        ),
    )

    @model_validator(mode="after")
    def _one_kind(self) -> SourceConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path` (a CSV or Parquet file) or `url` (a SQLAlchemy URL)")
        if self.url is not None and (self.table is None) == (self.query is None):
            raise ValueError("with `url`, give exactly one of `table` or `query`")
        if self.path is not None and (self.table or self.query):
            raise ValueError("`table` and `query` go with `url`, not with `path`")
        return self

    def describe(self) -> str:
        """A name for messages: the file path or the table, never the URL (it may hold a password)."""
        if self.path is not None:
            return str(self.path)
        return f"table {self.table}" if self.table else "SQL query"

    def resolved(self, base: Path) -> SourceConfig:
        """A copy with a relative path made absolute against ``base``, and ${VAR} filled in the URL."""
        update: dict[str, Any] = {}
        if self.path is not None and not self.path.is_absolute():
            update["path"] = base / self.path
        if self.url is not None:
            update["url"] = resolve_url(self.url, base)
        return self.model_copy(update=update)


class ShopConfig(_Strict):
    """The shop itself."""

    name: str = Field(description="Shop name, used as the RSS channel title.")
    currency: str = Field(description="ISO 4217 code used when a row has no currency.")
    default_country: str = Field("US", description="ISO 3166-1 alpha-2 code for rows with no country.")
    url: str = Field("https://example.com/", description="Shop home page, used as the RSS channel link.")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        code = value.strip().upper()
        if pycountry.currencies.get(alpha_3=code) is None:
            raise ValueError(f"unknown ISO 4217 currency code {value!r}")
        return code

    @field_validator("default_country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.strip().upper()
        if pycountry.countries.get(alpha_2=code) is None:
            raise ValueError(f"unknown ISO 3166-1 alpha-2 country code {value!r}")
        return code


class CatalogConfig(_Strict):
    """The shop's catalog table and how its columns map to logical names."""

    source: SourceConfig
    columns: dict[str, str] = Field(
        default_factory=dict, description="logical name -> the source's column, only where they differ."
    )

    @field_validator("columns")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        return check_mapping(value, CATALOG_COLUMNS)


class GuardConfig(_Strict):
    """Stops a publish that would empty or sharply shrink a feed."""

    max_shrink: float = Field(
        0.2, ge=0, le=1, description="Largest allowed drop in rows since the last publish, as a fraction."
    )


class FeedsConfig(_Strict):
    """Which feeds to build, where to publish them, and how to fill custom labels."""

    out: Path = Field(Path("out/feeds"), description="Folder the feed files are published into.")
    formats: list[str] = Field(default_factory=lambda: list(FORMATS), description="Formats to build.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="custom_label_0..4 -> a logical column (line, tier, category, …) or `price_band`.",
    )
    price_bands: list[float] = Field(
        default_factory=lambda: [1000.0, 3000.0, 10000.0, 30000.0],
        description="Ascending upper bounds (in the shop currency) that split prices into bands.",
    )
    guard: GuardConfig = Field(default_factory=GuardConfig)

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; allowed: {', '.join(FORMATS)}")
        if not value:
            raise ValueError("list at least one format")
        return list(dict.fromkeys(value))

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        allowed_keys = {f"custom_label_{i}" for i in range(5)}
        allowed_sources = set(CATALOG_COLUMNS) | set(DERIVED_LABEL_SOURCES)
        for key, source in value.items():
            if key not in allowed_keys:
                raise ValueError(f"{key!r} is not a label; use custom_label_0 … custom_label_4")
            if source not in allowed_sources:
                raise ValueError(f"{key}: unknown source {source!r}; use a logical column or price_band")
        return value

    @field_validator("price_bands")
    @classmethod
    def _bands(cls, value: list[float]) -> list[float]:
        if value != sorted(value) or len(set(value)) != len(value):
            raise ValueError("price_bands must be strictly ascending")
        return value


class FeedgenConfig(_Strict):
    """The catalog side's view of the config file."""

    shop: ShopConfig
    catalog: CatalogConfig
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    #: folder holding the config file; relative paths resolve against it
    base_dir: Path = Field(Path("."), exclude=True)

    def resolved(self) -> FeedgenConfig:
        """A copy with every relative path made absolute against the config file's folder."""
        out = self.feeds.out if self.feeds.out.is_absolute() else self.base_dir / self.feeds.out
        return self.model_copy(
            update={
                "catalog": self.catalog.model_copy(
                    update={"source": self.catalog.source.resolved(self.base_dir)}
                ),
                "feeds": self.feeds.model_copy(update={"out": out}),
            }
        )


def read_yaml(path: Path) -> dict[str, Any]:
    """Read the config file into a mapping, with a clear error for a missing or malformed file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (shop, catalog, feeds, …) at the top")
    return data


def check_top_level(path: Path, data: dict[str, Any]) -> None:
    """Reject top-level keys that neither package owns."""
    unknown = sorted(set(data) - FEED_SECTIONS - AUDIENCE_SECTIONS)
    if unknown:
        allowed = ", ".join(sorted(FEED_SECTIONS | AUDIENCE_SECTIONS))
        raise ConfigError(f"{path}: unknown top-level section(s) {', '.join(unknown)}; allowed: {allowed}")


def format_validation_error(path: Path, exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """Every pydantic error on its own line, with its location in the file (and allowed keys)."""
    lines = [f"{path}: {exc.error_count()} config error(s):"]
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and model is not None:
            allowed = _fields_at(model, err["loc"][:-1])
            if allowed:
                msg = f"unknown key; allowed here: {', '.join(allowed)}"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys a nested model accepts at ``loc`` (empty when the path leaves the models).

    Walks the annotations: model fields by name, list items by index, dict values by key, and a tagged
    union's member by its tag (pydantic puts the tag, or the class name, in the location).
    """
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    found = _model_in(current)
    return [name for name in found.model_fields if name != "base_dir"] if found else []


def _step(annotation: Any, part: int | str) -> Any:
    members = _members(annotation)
    for member, tag in members:
        if tag == part or (isinstance(member, type) and member.__name__ == part):
            return member
    for member, _ in members:
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(str(part))
            if field is not None:
                return field.annotation
        origin = get_origin(member)
        if origin is list and isinstance(part, int):
            return get_args(member)[0]
        if origin is dict:
            return get_args(member)[1]
    return None


def _members(annotation: Any) -> list[tuple[Any, object]]:
    """The alternatives of an annotation (itself when it is not a union), each with its Tag if any."""
    if get_origin(annotation) is Annotated:
        inner, *extras = get_args(annotation)
        tags = [e.tag for e in extras if isinstance(e, Tag)]
        return [(m, tags[0] if tags and t is None else t) for m, t in _members(inner)]
    if get_origin(annotation) in (Union, UnionType):
        return [pair for arg in get_args(annotation) for pair in _members(arg)]
    return [(annotation, None)]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member, _ in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def load_config(path: Path | str) -> FeedgenConfig:
    """Load and validate the catalog side of a config file; relative paths resolve against its folder."""
    path = Path(path)
    data = read_yaml(path)
    check_top_level(path, data)
    own = {key: value for key, value in data.items() if key in FEED_SECTIONS}
    try:
        config = FeedgenConfig.model_validate({**own, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, FeedgenConfig)) from None
    return config.resolved()


def resolve_url(url: str, base: Path) -> str:
    """``${VAR}`` filled from the environment (URL-encoded) and a relative SQLite path made absolute."""
    return _resolve_sqlite(_fill_env(url), base)


def _fill_env(url: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"source url: environment variable {name} is not set; export it before running")
        # a value fills one part of the URL (a password, say): encode what would break the URL
        return quote(os.environ[name], safe="")

    return _ENV_REF.sub(repl, url)


def _resolve_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        rest = url[len(prefix) :]
        if rest and not rest.startswith(":"):
            return prefix + str(base / rest)
    return url
