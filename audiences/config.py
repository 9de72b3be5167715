"""The people side's config sections, and the whole file's model composed with ``feedgen``'s.

``feedgen`` owns ``shop``, ``catalog`` and ``feeds``; this module owns the rest and validates the whole
file strictly: unknown keys anywhere are errors, each printed with its location. Locations inside the
``audiences`` list name the audience (``audiences[drink-upsell].pairing``) instead of its index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audiences.destinations.config import (
    Destination,
    GoogleFileDestination,
    RetentionConfig,
    StateConfig,
    SyncConfig,
)
from audiences.errors import ConfigError
from audiences.rules import Audience, AudienceList, Problem, raise_problems
from feedgen import config as feed_config
from feedgen.config import CatalogConfig, FeedsConfig, ShopConfig, SourceConfig
from feedgen.errors import ConfigError as FeedConfigError

#: identifier columns a customer (or prospect) file can have, by logical name
IDENTIFIER_COLUMNS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "city",
    "state",
    "zip",
    "country",
    "gender",
    "birth_date",
    "madid",
    "extern_id",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    *IDENTIFIER_COLUMNS,
    "ads_consent",
    "ad_user_data",
    "ad_personalization",
    "created_at",
)
#: where an audience can go when the file has no ``destinations`` section
DEFAULT_DESTINATIONS = ("meta", "google", "tiktok")


PROSPECT_COLUMNS = (
    "prospect_id",
    *IDENTIFIER_COLUMNS,
    "ads_consent",
    "ad_user_data",
    "ad_personalization",
    "signed_up_at",
)


#: sections that are tables read from a source (their paths resolve against the config's folder)
TABLE_SECTIONS = ("customers", "orders", "satisfaction", "complaints", "prospects", "views", "suppression")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableConfig(_Strict):
    """A table from a source, with the shop's column names mapped to logical ones."""

    source: SourceConfig
    columns: dict[str, str] = Field(
        default_factory=dict, description="logical name -> the source's column, only where they differ."
    )

    def resolved(self, base: Path) -> TableConfig:
        """A copy whose source paths resolve against ``base``."""
        return self.model_copy(update={"source": self.source.resolved(base)})


class CustomersConfig(TableConfig):
    """The shop's customers: identifiers, consent columns, sign-up date."""

    @field_validator("columns")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        return feed_config.check_mapping(value, CUSTOMER_COLUMNS)


class ProspectsConfig(TableConfig):
    """People who signed up or browsed but never bought: identifiers, consent columns, sign-up date."""

    @field_validator("columns")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        return feed_config.check_mapping(value, PROSPECT_COLUMNS)


class GoogleConsentConfig(_Strict):
    """Which logical columns hold Google's two consent signals."""

    ad_user_data: str = Field("ad_user_data", description="Column for Google's ad_user_data consent.")
    ad_personalization: str = Field(
        "ad_personalization", description="Column for Google's ad_personalization."
    )


class ConsentConfig(_Strict):
    """Which column allows ad use; true/yes/y/1 (any case) allow, anything else does not."""

    column: str = Field("ads_consent", description="Logical column that allows ad use.")
    google: GoogleConsentConfig = Field(default_factory=GoogleConsentConfig)


class PipelineConfig(_Strict):
    """The whole config file."""

    shop: ShopConfig
    catalog: CatalogConfig | None = None
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    customers: CustomersConfig | None = None
    orders: TableConfig | None = None
    satisfaction: TableConfig | None = None
    complaints: TableConfig | None = None
    prospects: ProspectsConfig | None = None
    views: TableConfig | None = None
    suppression: TableConfig | None = None
    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    audiences: AudienceList = Field(default_factory=list, description="The marketers' audience rules.")
    destinations: dict[str, Destination] = Field(default_factory=dict, description="Upload adapters by name.")
    state: StateConfig = Field(default_factory=StateConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    base_dir: Path = Field(Path("."), exclude=True)

    @model_validator(mode="after")
    def _audiences_fit_the_file(self) -> Self:
        """Each audience's rules need the tables they read, and its destinations must exist."""
        problems = [
            (("audiences", i, *loc), message)
            for i, audience in enumerate(self.audiences)
            for loc, message in _file_problems(self, audience)
        ]
        raise_problems("PipelineConfig", problems)
        return self

    def resolved(self) -> PipelineConfig:
        """A copy with every relative path resolved against the config file's folder."""
        base = self.base_dir
        update: dict[str, Any] = {}
        for name in TABLE_SECTIONS:
            table = getattr(self, name)
            if table is not None:
                update[name] = table.resolved(base)
        if self.catalog is not None:
            update["catalog"] = self.catalog.model_copy(update={"source": self.catalog.source.resolved(base)})
        out = self.feeds.out if self.feeds.out.is_absolute() else base / self.feeds.out
        update["feeds"] = self.feeds.model_copy(update={"out": out})
        update["destinations"] = {
            name: d.model_copy(update={"dir": d.dir if d.dir.is_absolute() else base / d.dir})
            if isinstance(d, GoogleFileDestination)
            else d
            for name, d in self.destinations.items()
        }
        if self.state.url:
            update["state"] = self.state.model_copy(
                update={"url": feed_config.resolve_url(self.state.url, base)}
            )
        return self.model_copy(update=update)


def load_config(path: Path | str) -> PipelineConfig:
    """Load and validate the whole config file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        data = feed_config.read_yaml(path)
        feed_config.check_top_level(path, data)
    except FeedConfigError as exc:
        raise ConfigError(str(exc)) from None
    try:
        config = PipelineConfig.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        message = feed_config.format_validation_error(path, exc, PipelineConfig)
        raise ConfigError(_name_audiences(message, exc, data.get("audiences"))) from None
    try:
        return config.resolved()
    except FeedConfigError as exc:
        raise ConfigError(str(exc)) from None


def _file_problems(config: PipelineConfig, audience: Audience) -> Iterator[Problem]:
    """What one audience needs from the rest of the file, located below the audience."""
    if audience.who == "purchasers":
        missing = [name for name in ("customers", "orders") if getattr(config, name) is None]
        if missing:
            sections = " and ".join(f"`{name}`" for name in missing)
            yield ("who",), f"purchasers are read from the `customers` and `orders` sections; add {sections}"
    elif config.prospects is None:
        yield ("who",), "prospects are read from the `prospects` section; add it"
    if audience.viewed is not None and config.views is None:
        yield ("viewed",), "needs the `views` section (prospect_id, product_id, viewed_at); add it"
    exclude, or_drop = audience.exclude, "add it or drop the exclusion"
    if exclude.satisfaction_below is not None and config.satisfaction is None:
        table = "the `satisfaction` section (customer_id, score, surveyed_at)"
        yield ("exclude", "satisfaction_below"), f"needs {table}; {or_drop}"
    if exclude.complaint_within_days is not None and config.complaints is None:
        table = "the `complaints` section (customer_id, opened_at, status)"
        yield ("exclude", "complaint_within_days"), f"needs {table}; {or_drop}"
    if config.catalog is None:
        if audience.pairing is not None:
            yield ("pairing",), "needs the `catalog` section (the products to pair with); add it"
        for loc, selector in (
            (("purchased",), audience.purchased),
            (("viewed",), audience.viewed),
            (("exclude", "purchased"), exclude.purchased),
        ):
            by = [name for name in selector.conditions() if name != "product_ids"] if selector else []
            if by:
                fields = ", ".join(by)
                yield loc, f"selecting by {fields} needs the `catalog` section; add it or use product_ids"
    if "destinations" in config.model_fields_set:
        allowed, where = sorted(config.destinations), "keys of the `destinations` section"
    else:
        allowed, where = list(DEFAULT_DESTINATIONS), "no `destinations` section, so built-in names"
    choices = ", ".join(allowed) or "none"
    for name in audience.destinations:
        if name not in allowed:
            yield ("destinations",), f"unknown destination {name!r}; allowed ({where}): {choices}"


def _name_audiences(message: str, exc: ValidationError, raw: Any) -> str:
    """Error locations name the audience: ``audiences.0.pairing`` becomes ``audiences[drink-upsell].pairing``.

    ``format_validation_error`` writes one line per error, in ``exc.errors()`` order, after a header line;
    the name comes from the raw YAML, so it is there even when the audience itself failed validation.
    """
    header, *lines = message.split("\n")
    if len(lines) != exc.error_count() or not isinstance(raw, list):
        return message
    for k, err in enumerate(exc.errors()):
        loc = err["loc"]
        if len(loc) < 2 or loc[0] != "audiences" or not isinstance(loc[1], int) or loc[1] >= len(raw):
            continue
        item = raw[loc[1]]
        name = item.get("name") if isinstance(item, dict) else None
        old = f"  audiences.{loc[1]}"
        if isinstance(name, str) and name.strip() and name.isprintable() and lines[k].startswith(old):
            rest = lines[k][len(old) :]
            if rest[:1] in (".", ":"):
                lines[k] = f"  audiences[{name}]{rest}"
    return "\n".join([header, *lines])
