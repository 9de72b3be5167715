"""``audiences sync``: bring each destination to the audiences of a build, sending only the difference.

For every (audience, destination) of the run: read the export the destination takes, compare its rows with
what the state store says the destination holds, and send the adds and removes in batches. Each confirmed
batch is recorded together with the member change, so a sync that dies half-way resumes where it stopped
and a finished sync, run again, sends nothing. Guards stop one audience (the rest carry on, exit 1 at the
end): fewer rows than the destination's minimum, more removals than ``sync.max_remove_fraction``, a schema
change, or a platform error that retrying cannot fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from audiences.build import MANIFEST_NAME, PLAN_NAME, RUNS
from audiences.config import PipelineConfig
from audiences.destinations.base import Adapter, Row, adapter_for
from audiences.destinations.google_file import GoogleFileAdapter
from audiences.errors import AudiencesError, ConfigError, GuardError
from audiences.plan import PLATFORM_OF_TYPE
from audiences.state import Remote, StateStore, default_url

log = logging.getLogger(__name__)

#: export column -> Meta schema key
META_KEYS = {
    "email": "EMAIL", "phone": "PHONE", "fn": "FN", "ln": "LN", "fi": "FI", "ct": "CT", "st": "ST",
    "zip": "ZIP", "country": "COUNTRY", "doby": "DOBY", "dobm": "DOBM", "dobd": "DOBD", "gen": "GEN",
    "madid": "MADID", "extern_id": "EXTERN_ID",
}  # fmt: skip
SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Target:
    """One (sub-)audience of a run with the files and product set it comes with."""

    name: str
    description: str
    destinations: tuple[str, ...]
    product_set: dict[str, Any] | None


@dataclass
class Outcome:
    """What happened to one audience at one destination (counts only)."""

    audience: str
    destination: str
    status: str = "ok"  # ok, unchanged, dry-run, stopped, failed
    rows: int = 0
    held_before: int = 0
    adds: int = 0
    removes: int = 0
    sent_batches: int = 0
    invalid: int = 0
    message: str = ""


@dataclass
class SyncReport:
    """Every outcome of one sync, and the run it synced."""

    run_dir: Path
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No audience stopped or failed."""
        return all(o.status in ("ok", "unchanged", "dry-run") for o in self.outcomes)

    def counts(self) -> dict[str, Any]:
        """Totals for the run history."""
        totals = {"audiences": len(self.outcomes), "adds": 0, "removes": 0, "invalid": 0, "batches": 0}
        for o in self.outcomes:
            totals["adds"] += o.adds
            totals["removes"] += o.removes
            totals["invalid"] += o.invalid
            totals["batches"] += o.sent_batches
        totals["stopped"] = sum(o.status in ("stopped", "failed") for o in self.outcomes)
        return totals


def latest_run(out_root: Path) -> Path:
    """The newest complete run folder under ``<out>/runs``."""
    runs = sorted(p for p in (out_root / RUNS).glob("*") if p.is_dir() and (p / MANIFEST_NAME).exists())
    runs = [p for p in runs if not p.name.startswith(".")]
    if not runs:
        raise ConfigError(f"{out_root / RUNS}: no finished build; run `audiences build` first")
    return runs[-1]


def sync(
    config: PipelineConfig,
    run_dir: Path | None = None,
    *,
    dry_run: bool = False,
    replace: bool = False,
    only: Sequence[str] = (),
    out_root: Path | None = None,
    adapters: dict[str, Adapter] | None = None,
) -> SyncReport:
    """Sync every audience of ``run_dir`` (default: the latest build) to its destinations.

    ``only`` limits the destinations; ``adapters`` lets tests hand in adapters by destination name.
    """
    root = out_root if out_root is not None else config.feeds.out.parent
    run_dir = run_dir if run_dir is not None else latest_run(root)
    targets = load_targets(run_dir)
    manifest = json.loads((run_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    if manifest.get("audit", {}).get("passed") is False:
        failed = ", ".join(manifest["audit"].get("failed_checks", []))
        raise GuardError(f"{run_dir.name} failed its audit ({failed}); nothing is synced from it. Rebuild.")
    checksums = {f["path"]: f["sha256"] for f in manifest["files"]}
    unknown = sorted(set(only) - {d for t in targets for d in t.destinations})
    if unknown:
        raise ConfigError(f"--destination {', '.join(unknown)}: no audience of {run_dir.name} goes there")
    store = StateStore(config.state.url or default_url(root))
    report = SyncReport(run_dir, dry_run)
    history = store.start_run("sync-dry-run" if dry_run else "sync", str(run_dir))
    made: dict[str, Adapter] = dict(adapters or {})
    finished = False
    try:
        for target in targets:
            for destination in target.destinations:
                if only and destination not in only:
                    continue
                outcome = Outcome(target.name, destination)
                report.outcomes.append(outcome)
                try:
                    _sync_one(
                        config,
                        store,
                        history,
                        run_dir,
                        checksums,
                        target,
                        destination,
                        outcome,
                        made,
                        dry_run,
                        replace,
                    )
                except GuardError as exc:
                    outcome.status, outcome.message = "stopped", str(exc)
                    log.error("%s -> %s stopped: %s", target.name, destination, exc)
                except AudiencesError as exc:
                    outcome.status, outcome.message = "failed", str(exc)
                    log.error("%s -> %s failed: %s", target.name, destination, exc)
        finished = True
    finally:
        for adapter in made.values():
            adapter.close()
        outcome_text = "dry-run" if dry_run else ("ok" if report.ok else "failed")
        if not finished:
            outcome_text = "interrupted"
        store.end_run(history, outcome_text, report.counts())
        store.close()
    return report


def load_targets(run_dir: Path) -> list[Target]:
    """The (sub-)audiences of a run that have files: the unsplit audiences and every sub-audience."""
    plan = json.loads((run_dir / PLAN_NAME).read_text(encoding="utf-8"))
    targets = []
    for entry in plan["audiences"]:
        if entry.get("sub_audiences") and entry["product_set"] is None and entry["parent"] is None:
            continue  # a split audience: its sub-audiences carry the files
        product_set = None
        if entry.get("product_set"):
            product_set = json.loads((run_dir / entry["product_set"]["file"]).read_text(encoding="utf-8"))
        description = entry.get("description", "")
        targets.append(Target(entry["name"], description, tuple(entry["destinations"]), product_set))
    return targets


def _sync_one(
    config: PipelineConfig,
    store: StateStore,
    history: int,
    run_dir: Path,
    checksums: dict[str, str],
    target: Target,
    destination: str,
    outcome: Outcome,
    adapters: dict[str, Adapter],
    dry_run: bool,
    replace: bool,
) -> None:
    settings = config.destinations.get(destination)
    if settings is None and destination not in adapters:
        raise ConfigError(
            f"destination {destination!r} has no settings; add it to the `destinations` section"
        )
    platform = PLATFORM_OF_TYPE[settings.type] if settings is not None else adapters[destination].platform
    relative = f"audiences/{target.name}/{platform}.csv"
    schema, rows = read_export(run_dir, relative, checksums, platform)
    current = {row_digest(row): row for row in rows}
    outcome.rows = len(current)
    minimum = settings.minimum if settings is not None else 1
    if len(current) < minimum:
        raise GuardError(
            f"{len(current)} rows, below {destination}'s minimum of {minimum}; nothing sent "
            "(the platform would not serve it; lower `min_members` only if you know it will)"
        )
    held = store.held(destination, target.name)
    outcome.held_before = len(held)
    adds = [(d, r) for d, r in current.items() if d not in held]
    removes = [(d, r) for d, r in held.items() if d not in current]
    removes_count = len(removes)
    if replace:
        adds = list(current.items())
    outcome.adds, outcome.removes = len(adds), removes_count
    limit = config.sync.max_remove_fraction
    if held and removes_count > limit * len(held):
        raise GuardError(
            f"would remove {removes_count} of {len(held)} members, more than sync.max_remove_fraction "
            f"({limit:g}); check the build, or raise the limit if the drop is real"
        )
    remote = store.remote(destination, target.name)
    if remote is not None and remote.schema and tuple(schema) != remote.schema:
        raise GuardError(
            f"the export's columns changed ({', '.join(remote.schema)} -> {', '.join(schema)}); the platform "
            "refuses another schema for an existing audience: rename the audience to start a new one"
        )
    set_digest = (
        _digest(json.dumps(target.product_set.get("meta_filter"), sort_keys=True))
        if target.product_set
        else None
    )
    product_set_pending = bool(target.product_set) and (
        remote is None or remote.product_set_digest != set_digest
    )
    if dry_run:
        outcome.status = "dry-run"
        return
    if not adds and not removes and not replace and remote is not None and not product_set_pending:
        outcome.status = "unchanged"
        return
    adapter = adapters.get(destination)
    if adapter is None:
        assert settings is not None  # checked above: no settings means a handed-in adapter
        adapter = adapters[destination] = adapter_for(destination, settings)
    known = remote.remote_id if remote is not None and remote.remote_id else None
    audience_id = adapter.ensure_audience(target.name, target.description, schema, known)
    remote = Remote(
        audience_id,
        tuple(schema),
        remote.product_set_id if remote else None,
        remote.product_set_digest if remote else None,
    )
    store.save_remote(destination, target.name, remote)
    if isinstance(adapter, GoogleFileAdapter):
        _write_files(adapter, store, history, target, destination, schema, current, adds, removes, outcome)
    elif replace:
        audience_id = _replace(
            adapter, store, history, target, destination, audience_id, schema, adds, outcome
        )
        store.replace_members(destination, target.name, current.items())
    else:
        for operation, pairs in (("add", adds), ("remove", removes)):
            for batch in _batches(pairs, adapter.max_batch):
                audience_id = _send(
                    adapter,
                    store,
                    history,
                    operation,
                    target,
                    destination,
                    audience_id,
                    schema,
                    batch,
                    outcome,
                )
    if audience_id != remote.remote_id:
        remote = Remote(audience_id, remote.schema, remote.product_set_id, remote.product_set_digest)
        store.save_remote(destination, target.name, remote)
    if product_set_pending and target.product_set is not None:
        set_id = adapter.upsert_product_set(
            target.name, target.product_set["meta_filter"], remote.product_set_id
        )
        # a destination without product sets (files) records the digest too: nothing is pending there
        remote = Remote(remote.remote_id, remote.schema, set_id, set_digest)
        store.save_remote(destination, target.name, remote)
    if outcome.invalid:
        log.warning(
            "%s -> %s: the platform reported %d invalid rows (lost members)",
            target.name,
            destination,
            outcome.invalid,
        )


def _send(
    adapter: Adapter,
    store: StateStore,
    history: int,
    operation: str,
    target: Target,
    destination: str,
    audience_id: str,
    schema: Sequence[str],
    batch: list[tuple[str, Row]],
    outcome: Outcome,
) -> str:
    rows = [row for _, row in batch]
    call = adapter.add if operation == "add" else adapter.remove
    sent = call(audience_id, target.name, schema, rows)
    outcome.invalid += sent.invalid
    outcome.sent_batches += 1
    store.record_batch(
        history, destination, target.name, operation, _batch_digest(batch), batch, sent.received, sent.invalid
    )
    return sent.audience_id or audience_id


def _replace(
    adapter: Adapter,
    store: StateStore,
    history: int,
    target: Target,
    destination: str,
    audience_id: str,
    schema: Sequence[str],
    pairs: list[tuple[str, Row]],
    outcome: Outcome,
) -> str:
    """A usersreplace session: the old members stay until the last batch arrives."""
    session_id = secrets.randbits(62) + 1
    batches = list(_batches(pairs, adapter.max_batch)) or [[]]
    for seq, batch in enumerate(batches, start=1):
        session = {
            "session_id": session_id,
            "batch_seq": seq,
            "last_batch_flag": seq == len(batches),
            "estimated_num_total": len(pairs),
        }
        sent = adapter.replace(audience_id, target.name, schema, [row for _, row in batch], session)
        outcome.invalid += sent.invalid
        outcome.sent_batches += 1
        store.record_batch(
            history,
            destination,
            target.name,
            "replace",
            _batch_digest(batch),
            batch,
            sent.received,
            sent.invalid,
        )
        audience_id = sent.audience_id or audience_id
    return audience_id


def _write_files(
    adapter: GoogleFileAdapter,
    store: StateStore,
    history: int,
    target: Target,
    destination: str,
    schema: Sequence[str],
    current: dict[str, Row],
    adds: list[tuple[str, Row]],
    removes: list[tuple[str, Row]],
    outcome: Outcome,
) -> None:
    """File destinations: the whole list plus this sync's changes, then the state follows."""
    adapter.write_members(target.name, schema, list(current.values()))
    adapter.reset_changes(target.name, schema)
    for operation, pairs in (("add", adds), ("remove", removes)):
        if pairs:  # only real changes reach the ledger (an empty batch would repeat one digest forever)
            rows = [row for _, row in pairs]
            (adapter.add if operation == "add" else adapter.remove)("", target.name, schema, rows)
            outcome.sent_batches += 1
            store.record_batch(
                history, destination, target.name, operation, _batch_digest(pairs), pairs, len(pairs), 0
            )


def read_export(
    run_dir: Path, relative: str, checksums: dict[str, str], platform: str
) -> tuple[list[str], list[Row]]:
    """The export's schema (platform key names) and rows, after checking it is the file the build wrote."""
    path = run_dir / relative
    if relative not in checksums:
        raise ConfigError(
            f"{relative}: not in {run_dir.name}'s manifest; the audience has no {platform} export"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != checksums[relative]:
        raise GuardError(
            f"{relative}: does not match the manifest's checksum; rebuild instead of editing exports"
        )
    header = data.split(b"\n", 1)[0].decode("utf-8").split(",")
    options = pacsv.ConvertOptions(strings_can_be_null=False, column_types={n: pa.string() for n in header})
    table = pacsv.read_csv(pa.BufferReader(data), convert_options=options)  # every cell as text: zips keep 0s
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [tuple(cells) for cells in zip(*columns, strict=True)] if columns else []
    names = list(table.column_names)
    schema = [META_KEYS.get(name, name) for name in names] if platform == "meta" else names
    return schema, rows


def row_digest(row: Row) -> str:
    """Identity of one member row: the SHA-256 of its cells."""
    return _digest(SEPARATOR.join(row))


def _batch_digest(batch: Sequence[tuple[str, Row]]) -> str:
    return _digest(",".join(sorted(d for d, _ in batch)))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _batches(pairs: list[tuple[str, Row]], size: int) -> Iterator[list[tuple[str, Row]]]:
    ordered = sorted(pairs)  # by digest: the same diff always makes the same batches
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]
