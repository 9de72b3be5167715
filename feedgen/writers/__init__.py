"""Feed writers, registered by format name and imported lazily.

A writer serialises frames that are already platform-ready: every column is one of the
platform's output fields, in order, dtype ``str`` with ``""`` for an empty value (never NA).
Cleaning, validation and value mapping happen before a frame reaches a writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedgen.writers.base import FeedWriter

#: format name -> (module, class name, platform, file name)
FORMATS: dict[str, tuple[str, str, str, str]] = {
    "meta-csv": ("feedgen.writers.meta", "MetaCsvWriter", "meta", "meta.csv"),
    "meta-xml": ("feedgen.writers.meta", "MetaXmlWriter", "meta", "meta.xml"),
    "google-xml": ("feedgen.writers.google", "GoogleXmlWriter", "google", "google.xml"),
    "google-tsv": ("feedgen.writers.google", "GoogleTsvWriter", "google", "google.tsv"),
    "tiktok-csv": ("feedgen.writers.tiktok", "TiktokCsvWriter", "tiktok", "tiktok.csv"),
}


def writer_class(fmt: str) -> type[FeedWriter]:
    """Return the writer class registered for a format name (imports its module on first use)."""
    module_name, class_name, _platform, _filename = FORMATS[fmt]
    module = importlib.import_module(module_name)
    cls: type[FeedWriter] = getattr(module, class_name)
    return cls


def platform_of(fmt: str) -> str:
    """The platform ("meta", "google", "tiktok") whose rules a format's rows must pass."""
    return FORMATS[fmt][2]


def filename_of(fmt: str) -> str:
    """The published file name of a format."""
    return FORMATS[fmt][3]
