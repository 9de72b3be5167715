"""The ``destinations``, ``state``, ``sync`` and ``retention`` sections: where audiences go and how safely.

Each destination is one adapter by ``type``; its settings are checked by that type's model (a key that
belongs to another type is an error naming the type). Tokens are never in the file: ``token_env`` names the
environment variable that holds one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, HttpUrl, Tag

#: members each platform needs before it serves an audience (specs/audiences.md)
DEFAULT_MINIMUM = {"meta": 100, "mock": 100, "tiktok": 1000, "google-file": 1000}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryConfig(_Strict):
    """How long a retriable failure (rate limit, 5xx, timeout) is retried before the audience gives up."""

    attempts: int = Field(6, ge=1, le=50, description="Tries per call, the first included.")
    max_seconds: float = Field(300, gt=0, description="Give up once this much time went to one call.")
    initial_wait: float = Field(1.0, ge=0, description="First backoff in seconds; doubles, with jitter.")
    max_wait: float = Field(60, ge=0, description="Longest single wait (a Retry-After above it is capped).")


class _Destination(_Strict):
    type: str
    min_members: int | None = Field(
        None, ge=1, description="Smallest audience uploaded (default per platform)."
    )

    @property
    def minimum(self) -> int:
        """The smallest audience this destination takes."""
        kind = self.type
        return self.min_members if self.min_members is not None else DEFAULT_MINIMUM[kind]


class _HttpDestination(_Destination):
    base_url: HttpUrl = Field(
        description="API root, e.g. https://graph.facebook.com (a mock: http://127.0.0.1:8765)."
    )
    token_env: str = Field(description="Environment variable that holds the access token.")
    timeout: float = Field(30, gt=0, description="Seconds to wait for one response.")
    retry: RetryConfig = Field(default_factory=RetryConfig)
    batch_size: int = Field(10_000, ge=1, le=10_000, description="Rows per request (Meta allows 10,000).")


class MetaDestination(_HttpDestination):
    """Meta custom audiences from customer lists, and catalog product sets."""

    type: Literal["meta"]
    ad_account_id: str = Field(description="The ad account, with or without the act_ prefix.")
    catalog_id: str | None = Field(None, description="Catalog for the product sets; none skips product sets.")
    api_version: str = Field("v21.0", pattern=r"^v\d+\.\d+$", description="Graph API version prefix.")
    customer_file_source: Literal[
        "USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"
    ] = Field("USER_PROVIDED_ONLY", description="Where the customer data came from (Meta asks).")


class MockDestination(MetaDestination):
    """The local mock platform, spoken to by the Meta adapter's own code."""

    type: Literal["mock"]  # type: ignore[assignment]
    token_env: str = Field("MOCK_TOKEN", description="Environment variable with the token (any value).")
    ad_account_id: str = Field("act_1", description="Any ad account id.")
    catalog_id: str | None = Field("1", description="Any catalog id.")


class TikTokDestination(_HttpDestination):
    """TikTok custom audiences from customer files."""

    type: Literal["tiktok"]
    advertiser_id: str = Field(description="The TikTok advertiser id.")
    phone_format: Literal["e164", "digits"] = Field("e164", description="Phones before hashing.")
    retention_in_days: int | None = Field(None, ge=1, le=365, description="How long TikTok keeps members.")


class GoogleFileDestination(_Destination):
    """Google Customer Match upload files, one per audience and consent group, for pickup."""

    type: Literal["google-file"]
    dir: Path = Field(description="Folder the files go to (relative to the config file).")


TYPES = ("meta", "tiktok", "google-file", "mock")


def _type_of(value: object) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in TYPES else None


Destination = Annotated[
    Annotated[MetaDestination, Tag("meta")]
    | Annotated[MockDestination, Tag("mock")]
    | Annotated[TikTokDestination, Tag("tiktok")]
    | Annotated[GoogleFileDestination, Tag("google-file")],
    Discriminator(
        _type_of,
        custom_error_type="destination_type",
        custom_error_message=f"give `type`, one of: {', '.join(TYPES)}",
    ),
]


class StateConfig(_Strict):
    """Where what each destination holds is remembered (hashes only) with the run history."""

    url: str | None = Field(None, description="SQLAlchemy URL; default SQLite at <out>/state.db.")


class SyncConfig(_Strict):
    """Guards for uploads."""

    max_remove_fraction: float = Field(
        0.3, ge=0, le=1, description="Stop an audience removing more than this."
    )


class RetentionConfig(_Strict):
    """How long run folders are kept."""

    keep_days: int = Field(30, ge=1, description="Run folders older than this are pruned.")
