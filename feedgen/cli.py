"""``feedgen``: a thin click layer over ``feedgen.build``; it parses, calls one function, reports."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from feedgen import build
from feedgen.clitools import DateParam, exit_on, progress, setup_logging
from feedgen.config import SourceConfig, load_config
from feedgen.errors import ConfigError, FeedgenError
from feedgen.money import is_currency
from feedgen.writers import FORMATS
from feedgen.writers.base import Channel


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for debug).")
@click.version_option(package_name="retarget-exporter")
def main(verbose: int) -> None:
    """Build product catalog feeds for Meta, Google Merchant Center and TikTok."""
    setup_logging(verbose)


@main.command("build")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="The pipeline's YAML file.")
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path),
    help="Ad hoc: a catalog file with logical column names.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for the feed files and reports (overrides feeds.out).",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(list(FORMATS)),
    help="Ad hoc: formats to build (default all).",
)
@click.option("--currency", help="Ad hoc: ISO 4217 code for rows without a currency column.")
@click.option("--force", is_flag=True, help="Publish even when a guard would stop it (empty or shrunk feed).")
@click.option("--as-of", type=DateParam(), help="Judge sale windows at this date instead of now.")
def build_command(
    config_path: Path | None,
    catalog_path: Path | None,
    out: Path | None,
    formats: tuple[str, ...],
    currency: str | None,
    force: bool,
    as_of: datetime | None,
) -> None:
    """Build all configured feeds and publish them atomically into the feed folder."""
    with exit_on(FeedgenError):
        job = _job(config_path, catalog_path, out, formats, currency)
        with progress("reading catalog") as hook:
            report = build.run(job, force=force, as_of=as_of, progress=hook)
        _summary(report, job.out)


@main.command("validate")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The pipeline's YAML file.",
)
@click.option(
    "--rejects", type=click.Path(path_type=Path), help="Also write every reject and warning to this CSV."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
@click.option("--as-of", type=DateParam(), help="Judge sale windows at this date instead of now.")
def validate_command(config_path: Path, rejects: Path | None, as_json: bool, as_of: datetime | None) -> None:
    """Check the catalog against every platform's rules; publish nothing."""
    with exit_on(FeedgenError):
        job = _job(config_path, None, None, (), None)
        with progress("reading catalog") as hook:
            report = build.run(job, publish_files=False, as_of=as_of, progress=hook, rejects_to=rejects)
        if as_json:
            click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            _summary(report, None)


def _job(
    config_path: Path | None,
    catalog_path: Path | None,
    out: Path | None,
    formats: tuple[str, ...],
    currency: str | None,
) -> build.FeedJob:
    if (config_path is None) == (catalog_path is None):
        raise ConfigError("give either --config FILE, or --catalog FILE with --out DIR")
    if config_path is not None:
        if formats or currency:
            raise ConfigError(
                "--format and --currency go with --catalog; with --config set feeds.formats and shop.currency"
            )
        return build.FeedJob.from_config(load_config(config_path), out)
    assert catalog_path is not None
    if out is None:
        raise ConfigError("--catalog needs --out DIR (the folder to publish into)")
    code = (currency or "").strip().upper()
    if currency is not None and not is_currency(code):
        raise ConfigError(f"--currency {currency!r} is not an ISO 4217 code")
    return build.FeedJob(
        source=SourceConfig(path=catalog_path),
        out=out,
        formats=tuple(formats) or tuple(FORMATS),
        currency=code,
        country="US",
        channel=Channel(
            title=catalog_path.stem, link="https://example.com/", description=f"{catalog_path.stem} catalog"
        ),
    )


def _summary(report: build.FeedReport, out: Path | None) -> None:
    table = Table(title=f"{report.rows_read} catalog rows from {report.source}")
    for name in ("format", "written", "rejected", "warnings", "top reject reasons", "guard"):
        table.add_column(name, justify="right" if name in {"written", "rejected", "warnings"} else "left")
    for fmt, stats in report.formats.items():
        top = ", ".join(f"{reason} {n}" for reason, n in stats.rejected_by_reason.most_common(3))
        table.add_row(
            fmt,
            str(stats.written),
            str(stats.rejected),
            str(sum(stats.warnings_by_reason.values())),
            top,
            stats.guard or "-",
        )
    Console(width=140).print(table)
    if out is not None:
        click.echo(
            f"Published into {out} (report: {out / 'feed_report.json'}, rejects: {out / build.REJECTS_NAME})"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
