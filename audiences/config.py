"""The people side's config sections, and the whole file's model composed with ``feedgen``'s.

``feedgen`` owns ``shop``, ``catalog`` and ``feeds``; this module owns the rest and validates the whole
file strictly: unknown keys anywhere are errors, each printed with its location.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audiences.errors import ConfigError
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
    prospects: CustomersConfig | None = None
    views: TableConfig | None = None
    suppression: TableConfig | None = None
    consent: ConsentConfig = Field(default_factory=ConsentConfig)
    # Sections whose models arrive with the audience, delivery and compliance issues; kept as data until then.
    audiences: list[dict[str, Any]] = Field(
        default_factory=list, description="The marketers' audience rules."
    )
    destinations: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Upload adapters by name."
    )
    state: dict[str, Any] = Field(default_factory=dict, description="Where destination state is kept.")
    retention: dict[str, Any] = Field(default_factory=dict, description="How long run folders are kept.")
    base_dir: Path = Field(Path("."), exclude=True)

    def resolved(self) -> PipelineConfig:
        """A copy with every relative path resolved against the config file's folder."""
        base = self.base_dir
        update: dict[str, Any] = {}
        for name in (
            "customers",
            "orders",
            "satisfaction",
            "complaints",
            "prospects",
            "views",
            "suppression",
        ):
            table = getattr(self, name)
            if table is not None:
                update[name] = table.resolved(base)
        if self.catalog is not None:
            update["catalog"] = self.catalog.model_copy(update={"source": self.catalog.source.resolved(base)})
        out = self.feeds.out if self.feeds.out.is_absolute() else base / self.feeds.out
        update["feeds"] = self.feeds.model_copy(update={"out": out})
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
        raise ConfigError(feed_config.format_validation_error(path, exc, PipelineConfig)) from None
    try:
        return config.resolved()
    except FeedConfigError as exc:
        raise ConfigError(str(exc)) from None
