"""What both command-line tools share: logging set-up, errors to exit codes, a progress bar on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
