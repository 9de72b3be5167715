"""One error root for the catalog side; each family carries its exit code."""

from __future__ import annotations


class FeedgenError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(FeedgenError):
    """The config file or a command-line option is wrong; nothing ran."""

    exit_code = 2


class SourceError(FeedgenError):
    """A source could not be opened or read (missing file, bad URL, unknown column)."""

    exit_code = 2


class DataError(FeedgenError):
    """A row-level problem; recorded in rejects and skipped, never fatal to the run."""

    exit_code = 1


class GuardError(FeedgenError):
    """A run stopped on purpose: publishing would empty or sharply shrink a feed."""

    exit_code = 1


class PublishError(FeedgenError):
    """Writing or renaming a feed file failed; the previous feed is left in place."""

    exit_code = 1
