"""What both command-line tools share: logging set-up, errors to exit codes, a progress bar on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from feedgen.build import ProgressHook


def setup_logging(verbose: int) -> None:
    """Warnings by default; ``-v`` info, ``-vv`` debug; always on stderr."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@contextmanager
def exit_on(*errors: type[Exception]) -> Iterator[None]:
    """Turn our own errors into ``Error: message`` on stderr and the error's ``exit_code``."""
    try:
        yield
    except errors as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))


@contextmanager
def progress(label: str) -> Iterator[ProgressHook | None]:
    """A row counter on stderr when it is a terminal (cron logs stay clean); ``None`` otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn(label), BarColumn(), TextColumn("{task.completed:,} rows"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda rows: bar.advance(task, rows)


class DateParam(click.ParamType):
    """A date (2026-11-20) or an ISO 8601 date-time; naive values are UTC.

    A bare date means its first instant, or with ``end_of_day`` its last (so "as of the 20th" includes
    what happened on the 20th).
    """

    name = "DATE"

    def __init__(self, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date such as 2026-11-20", param, ctx)
        if len(str(value)) <= 10:
            parsed = datetime.combine(parsed.date(), time.max if self.end_of_day else time.min)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
