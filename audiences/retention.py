"""``audiences prune``: delete run folders older than the retention period, never the latest good one.

A run's age is the build time in its name (``YYYYmmddTHHMMSSZ``), or the folder's modification time when the
name is not one of ours. The newest complete run (it has a manifest) and the run of the newest successful
sync are always kept; half-written ``.partial`` folders older than the period go too. What was deleted is
recorded in the state store.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audiences.build import MANIFEST_NAME, RUNS
from audiences.state import StateStore

log = logging.getLogger(__name__)


@dataclass
class PruneResult:
    """The folders deleted and the ones kept on purpose."""

    deleted: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def run_time(folder: Path) -> datetime:
    """When a run was built: from its name, else the folder's modification time."""
    stem = folder.name.lstrip(".").removesuffix(".partial").split("-", 1)[0]
    try:
        return datetime.strptime(stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(folder.stat().st_mtime, tz=UTC)


def prune(out_root: Path, keep_days: int, store: StateStore, now: datetime | None = None) -> PruneResult:
    """Delete runs under ``<out_root>/runs`` built more than ``keep_days`` days before ``now``."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=keep_days)
    root = out_root / RUNS
    result = PruneResult()
    if not root.is_dir():
        return result
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=run_time)
    complete = [p for p in folders if not p.name.startswith(".") and (p / MANIFEST_NAME).exists()]
    protected = {complete[-1]} if complete else set()
    synced = [
        r["run_dir"] for r in store.history(limit=1000) if r["command"] == "sync" and r["outcome"] == "ok"
    ]
    if synced:
        protected.add(Path(synced[0]))
    keep = {p.resolve() for p in protected if p.exists()}
    for folder in folders:
        if run_time(folder) >= cutoff:
            continue
        if folder.resolve() in keep:
            result.kept.append(folder)
            continue
        shutil.rmtree(folder)
        result.deleted.append(folder)
        log.info("pruned %s", folder.name)
    store.record_prune(str(p) for p in result.deleted)
    return result
