"""``audiences``: a thin click layer over the people side's library; it parses, calls, reports."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from audiences.audit import audit_run, format_report
from audiences.build import build
from audiences.config import load_config
from audiences.errors import AudiencesError, ConfigError
from audiences.hashfile import CHUNK_ROWS, HashOptions, HashSummary, hash_file
from audiences.normalize import NORMALIZATION_SPEC_VERSION, PHONE_FORMATS, PLATFORMS
from audiences.plan import Plan, make_plan
from audiences.preview import preview_data
from audiences.retention import prune
from audiences.state import StateStore, default_url
from audiences.sync import SyncReport, sync
from feedgen.clitools import DateParam, exit_on, progress, setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv for debug).")
@click.version_option(package_name="retarget-exporter")
def main(verbose: int) -> None:
    """Build, hash, export and audit retargeting audiences."""
    setup_logging(verbose)


@main.command("hash")
@click.option(
    "--platform", required=True, type=click.Choice(PLATFORMS), help="Whose rules and template to use."
)
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="Take column names and country from it."
)
@click.option("--default-country", help="ISO 3166-1 alpha-2 code for phones and addresses without a country.")
@click.option(
    "--tiktok-phone-format",
    type=click.Choice(PHONE_FORMATS),
    default="e164",
    show_default=True,
    help="TikTok phones before hashing: E.164 with + or digits only.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=CHUNK_ROWS,
    show_default=True,
    help="Rows per chunk (memory per worker).",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per two cores; each uses two)."
)
def hash_command(
    platform: str,
    input_path: Path,
    output_path: Path,
    config_path: Path | None,
    default_country: str | None,
    tiktok_phone_format: str,
    chunk_size: int,
    jobs: int | None,
) -> None:
    """Normalize and SHA-256-hash a customer file into PLATFORM's upload file, one row per input row.

    INPUT is a CSV or Parquet file with logical column names (email, phone, first_name, last_name, city,
    state, zip, country, gender, birth_date, madid, extern_id; any subset), or the shop's own names mapped
    by the config's customers.columns. Prints counts per column at the end, never values.
    """
    with exit_on(AudiencesError):
        mapping: dict[str, str] = {}
        country = default_country
        if config_path is not None:
            config = load_config(config_path)
            mapping = dict(config.customers.columns) if config.customers else {}
            country = country or config.shop.default_country
        if input_path.resolve() == output_path.resolve():
            raise ConfigError("OUTPUT must differ from INPUT")
        options = HashOptions(platform, country.upper() if country else None, tiktok_phone_format)
        with progress("hashing") as hook:
            summary = hash_file(
                input_path, output_path, options, mapping, chunk_size=chunk_size, jobs=jobs, progress=hook
            )
        _print_summary(summary, output_path)


def _print_summary(summary: HashSummary, output: Path) -> None:
    table = Table(
        title=f"{summary.rows} rows → {output} ({summary.platform}, spec {NORMALIZATION_SPEC_VERSION})"
    )
    for name in ("column", "kind", "valid", "blank", "invalid"):
        table.add_column(name, justify="left" if name in {"column", "kind"} else "right")
    for column in summary.columns:
        counts = summary.counts.get(column, {})
        kind = "sha256" if column in summary.hashed_columns else "plain"
        table.add_row(column, kind, *(str(counts.get(s, 0)) for s in ("valid", "blank", "invalid")))
    Console(width=120).print(table)
    click.echo(f"rows with no usable identifier: {summary.empty_rows}")


AS_OF_HELP = "Look back from this date (end of day, UTC) instead of now; the same date gives the same run."


@main.command("build")
@click.option(
    "--config", "config_path", required=True, type=click.Path(path_type=Path), help="The pipeline's YAML."
)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), help="Output root (runs/ goes under it)."
)
@click.option("--as-of", type=DateParam(end_of_day=True), help=AS_OF_HELP)
def build_command(config_path: Path, out: Path | None, as_of: datetime | None) -> None:
    """Select, exclude and pair every audience; write hashed exports, product sets, plan and manifest."""
    with exit_on(AudiencesError):
        config = load_config(config_path)
        result = build(config, config_path, as_of or datetime.now(UTC), out)
        _print_plan(result.plan)
        click.echo(f"run written to {result.run_dir} (reviewer's page: report.html)")
        if not result.audit.passed:
            click.echo(format_report(result.audit), err=True)
            click.echo(
                "Error: the run failed its audit; it will not be synced. Fix the cause and rebuild.", err=True
            )
            raise click.exceptions.Exit(1)


@main.command("preview")
@click.option(
    "--config", "config_path", required=True, type=click.Path(path_type=Path), help="The pipeline's YAML."
)
@click.option("--as-of", type=DateParam(end_of_day=True), help=AS_OF_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--top", type=click.IntRange(min=0), default=3, show_default=True, help="Products shown per set."
)
def preview_command(config_path: Path, as_of: datetime | None, as_json: bool, top: int) -> None:
    """Audience sizes, exclusions by reason, overlaps and the top products with reasons; writes nothing."""
    with exit_on(AudiencesError):
        config = load_config(config_path)
        plan = make_plan(config, as_of or datetime.now(UTC))
        if as_json:
            click.echo(json.dumps(preview_data(plan, top), indent=2, ensure_ascii=False))
        else:
            _print_plan(plan, top)


@main.command("sync")
@click.option(
    "--config", "config_path", required=True, type=click.Path(path_type=Path), help="The pipeline's YAML."
)
@click.option(
    "--run", "run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True), help="A run folder."
)
@click.option(
    "--dry-run", is_flag=True, help="Print adds and removes per audience and destination; change nothing."
)
@click.option(
    "--replace", is_flag=True, help="Replace each audience's members (Meta usersreplace) instead of a diff."
)
@click.option("--destination", "destinations", multiple=True, help="Only these destinations (repeatable).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Output root the build used.")
def sync_command(
    config_path: Path,
    run_dir: Path | None,
    dry_run: bool,
    replace: bool,
    destinations: tuple[str, ...],
    out: Path | None,
) -> None:
    """Send each destination the difference between what it holds and the latest build (or --run)."""
    with exit_on(AudiencesError):
        config = load_config(config_path)
        report = sync(config, run_dir, dry_run=dry_run, replace=replace, only=destinations, out_root=out)
        _print_sync(report)
        if not report.ok:
            raise click.exceptions.Exit(1)


@main.command("audit")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="Also check against the sources."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def audit_command(run_dir: Path, config_path: Path | None, as_json: bool) -> None:
    """Check a run folder: checksums, hashes only, allowed plain columns, no plaintext, counts, exclusions."""
    with exit_on(AudiencesError):
        config = load_config(config_path) if config_path is not None else None
        report = audit_run(run_dir, config)
        click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
        if not report.passed:
            raise click.exceptions.Exit(1)


@main.command("mock-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0 picks a free one."
)
@click.option("--token-env", help="Accept only the token in this environment variable (default: any token).")
def mock_server_command(host: str, port: int, token_env: str | None) -> None:
    """Run a local fake of the Meta and TikTok endpoints (state in memory; admin under /__mock__/)."""
    from audiences.mockserver.server import serve  # imported here: only this command needs it

    token = None
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise click.UsageError(f"--token-env {token_env}: the variable is not set")
    serve(host, port, token)


@main.command("prune")
@click.option(
    "--keep-days", type=click.IntRange(min=1), help="Keep runs this many days (default: retention.keep_days)."
)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="The pipeline's YAML.")
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), help="Output root (runs/ is under it)."
)
def prune_command(keep_days: int | None, config_path: Path | None, out: Path | None) -> None:
    """Delete run folders older than the retention period; never the latest run or the latest synced one.

    Give --config (output root, state store and retention.keep_days from it), or --out and --keep-days.
    """
    with exit_on(AudiencesError):
        if config_path is not None:
            config = load_config(config_path)
            root = out if out is not None else config.feeds.out.parent
            days = keep_days if keep_days is not None else config.retention.keep_days
            url = config.state.url or default_url(root)
        elif out is not None and keep_days is not None:
            root, days, url = out, keep_days, default_url(out)
        else:
            raise ConfigError("give --config FILE, or both --out DIR and --keep-days N")
        store = StateStore(url)
        try:
            result = prune(root, days, store)
        finally:
            store.close()
        for folder in result.deleted:
            click.echo(f"deleted {folder}")
        for folder in result.kept:
            click.echo(f"kept {folder} (the latest run or the latest synced one)")
        click.echo(f"{len(result.deleted)} run folder(s) older than {days} days deleted")


def _print_sync(report: SyncReport) -> None:
    title = f"sync of {report.run_dir.name}" + (" (dry run: nothing sent)" if report.dry_run else "")
    table = Table(title=title)
    for name in ("audience", "destination", "status", "rows", "held", "adds", "removes", "invalid"):
        table.add_column(name, justify="left" if name in ("audience", "destination", "status") else "right")
    for o in report.outcomes:
        numbers = (o.rows, o.held_before, o.adds, o.removes, o.invalid)
        table.add_row(o.audience, o.destination, o.status, *(str(n) for n in numbers))
    Console(width=140).print(table)
    for o in report.outcomes:
        if o.message:
            click.echo(f"{o.audience} -> {o.destination}: {o.status}: {o.message}", err=True)


def _print_plan(plan: Plan, top: int = 0) -> None:
    console = Console(width=140)
    data = preview_data(plan, top)
    table = Table(title=f"audiences as of {data['as_of']}")
    for name in ("audience", "who", "strategy", "candidates", "members", "excluded by reason", "products"):
        table.add_column(name, justify="right" if name in ("candidates", "members", "products") else "left")
    for entry in data["audiences"]:
        excluded = ", ".join(f"{k} {v}" for k, v in entry["excluded"].items()) or "-"
        size = str(entry.get("product_set_size", ""))
        name = ("  " if entry["parent"] else "") + entry["name"]
        table.add_row(
            name, entry["who"], entry["strategy"] or "-", str(entry["candidates"]), str(entry["members"]),
            excluded, size,
        )  # fmt: skip
    console.print(table)
    for entry in data["audiences"]:
        for product in (entry["product_set"] or [])[:top]:
            console.print(f"  {entry['name']}: {product['id']} - {product['reason']}", highlight=False)
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if data["overlaps"]:
        shared = ", ".join(f"{' & '.join(o['audiences'])} {o['shared_members']}" for o in data["overlaps"])
        console.print(f"overlaps (members in both): {shared}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    main()
