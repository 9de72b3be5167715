"""One error root for the people side; each family carries its exit code.

Messages say what to do and quote the offending setting or column name, never a person's data.
"""

from __future__ import annotations


class AudiencesError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(AudiencesError):
    """The config file or a command-line option is wrong; nothing ran."""

    exit_code = 2


class DataError(AudiencesError):
    """A row-level problem; recorded with a reason and skipped, never fatal to the run."""

    exit_code = 1


class RetriableUploadError(AudiencesError):
    """A platform call failed in a way worth retrying (rate limit, 5xx, timeout)."""

    exit_code = 1


class FatalUploadError(AudiencesError):
    """A platform call failed in a way retrying cannot fix (bad token, permission, schema)."""

    exit_code = 1


class GuardError(AudiencesError):
    """A run stopped on purpose: an audience below the minimum, or too many removals."""

    exit_code = 1
