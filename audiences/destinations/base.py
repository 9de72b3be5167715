"""What every destination adapter offers the sync, and the registry that finds one by ``type``.

An adapter speaks one platform. The sync hands it rows that are already hashed (one tuple per member, in
the order of ``schema``, the platform's key names such as ``EMAIL``/``PHONE``) and never plaintext. Platform
modules are imported only when a destination of their type is used.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from audiences.destinations.config import Destination
from audiences.errors import ConfigError

Row = tuple[str, ...]

#: destination type -> "module:Class", imported on first use
REGISTRY = {
    "meta": "audiences.destinations.meta:MetaAdapter",
    "mock": "audiences.destinations.meta:MetaAdapter",
    "tiktok": "audiences.destinations.tiktok:TikTokAdapter",
    "google-file": "audiences.destinations.google_file:GoogleFileAdapter",
}


@dataclass
class Sent:
    """What the platform said about rows it was sent (counts only; samples never kept)."""

    received: int = 0
    invalid: int = 0
    #: the platform's audience id (TikTok creates the audience with its first file)
    audience_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Adapter(ABC):
    """One destination. Every call raises ``RetriableUploadError`` (after its retry budget is spent) or
    ``FatalUploadError``; both carry a message without tokens, hashes or response bodies."""

    #: the export template its rows come from (meta, tiktok, google)
    platform: ClassVar[str]
    #: most rows one call may carry (an adapter may lower it per destination)
    max_batch: int = 10_000

    def __init__(self, name: str, config: Destination) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    def ensure_audience(
        self, name: str, description: str, schema: Sequence[str], known_id: str | None
    ) -> str:
        """The platform's id for audience ``name``: ``known_id`` when it still exists, else found by name or
        created. May return "" when the platform creates audiences with their first upload (TikTok)."""

    @abstractmethod
    def add(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        """Add one batch of members (at most ``max_batch`` rows)."""

    @abstractmethod
    def remove(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        """Remove one batch of members."""

    def replace(
        self,
        audience_id: str,
        name: str,
        schema: Sequence[str],
        batch: Sequence[Row],
        session: dict[str, Any],
    ) -> Sent:
        """One batch of a full replacement; ``session`` holds session_id, batch_seq, last_batch_flag and
        estimated_num_total (Meta's usersreplace). Platforms without it raise ``ConfigError``."""
        raise ConfigError(
            f"destination {self.name}: {type(self).__name__} cannot replace an audience; "
            "sync without --replace"
        )

    def upsert_product_set(self, name: str, filter_: dict[str, Any], known_id: str | None) -> str | None:
        """Create or update the product set shown to an audience; its id (None: the platform has none)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""


def adapter_for(name: str, config: Destination) -> Adapter:
    """The adapter of ``config.type``, imported now."""
    target = REGISTRY.get(config.type)
    if target is None:
        raise ConfigError(
            f"destination {name}: no adapter for type {config.type!r}; known: {', '.join(REGISTRY)}"
        )
    module, _, cls = target.partition(":")
    adapter_class: type[Adapter] = getattr(importlib.import_module(module), cls)
    return adapter_class(name, config)
