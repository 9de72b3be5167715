"""``audiences build``: write one run folder with the hashed exports, product sets, plan and manifest.

The folder is written as ``runs/.<run_id>.partial`` and renamed to ``runs/<run_id>`` only when complete,
so a crashed build never looks like a finished one. The folder is readable by its owner only (0700) and
so is every file in it (0600): the exports are hashed, but they are still personal data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from audiences.audit import AuditReport, audit_run
from audiences.config import IDENTIFIER_COLUMNS, PipelineConfig
from audiences.destinations.config import TikTokDestination
from audiences.errors import AudiencesError
from audiences.exports import PLAIN_COLUMNS, export_frame
from audiences.hashfile import csv_rows
from audiences.normalize import NORMALIZATION_SPEC_VERSION
from audiences.pairing import Offer
from audiences.plan import AudiencePlan, Plan, make_plan
from audiences.report import render_report

log = logging.getLogger(__name__)

RUNS = "runs"
PLAN_NAME = "plan.json"
MANIFEST_NAME = "manifest.json"
PROBLEMS_NAME = "input_problems.csv"
REPORT_NAME = "report.html"
_DIR_MODE, _FILE_MODE = 0o700, 0o600


class BuildError(AudiencesError):
    """The run folder could not be written (disk full, permissions); no partial run is left."""


@dataclass(frozen=True)
class BuildResult:
    """Where the run went, the plan it wrote, and the audit of the written files."""

    run_dir: Path
    run_id: str
    plan: Plan
    manifest: dict[str, Any]
    audit: AuditReport


def build(config: PipelineConfig, config_path: Path, as_of: datetime, out: Path | None = None) -> BuildResult:
    """Plan every audience and write the run folder under ``<out>/runs/`` (``out`` defaults to the
    folder above ``feeds.out``, so feeds and runs share one output root)."""
    plan = make_plan(config, as_of)
    root = (out if out is not None else config.feeds.out.parent) / RUNS
    run_id = _run_id(root)
    partial = root / f".{run_id}.partial"
    try:
        root.mkdir(parents=True, exist_ok=True)
        partial.mkdir(mode=_DIR_MODE)
        writer = _RunWriter(partial)
        manifest = _write_run(writer, config, config_path, plan, run_id)
        assert writer.audit is not None
        final = root / run_id
        partial.rename(final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BuildError(
            f"{root}: writing the run failed ({exc.strerror or exc}); nothing was kept"
        ) from None
    return BuildResult(final, run_id, plan, manifest, writer.audit)


def _run_id(root: Path) -> str:
    """The UTC time of the build, unique within ``root``."""
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while (root / run_id).exists() or (root / f".{run_id}.partial").exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


class _RunWriter:
    """Writes files under the run folder, owner-only, and remembers each file's sha256 and rows."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.files: list[dict[str, Any]] = []
        self.sets: dict[str, str] = {}  # product set name -> its path in the run
        self.audit: AuditReport | None = None

    def write_unlisted(self, relative: str, data: bytes) -> None:
        """Write (or replace) a file the manifest does not list: the manifest itself."""
        path = self.base / relative
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def write(self, relative: str, data: bytes, rows: int | None) -> None:
        path = self.base / relative
        for parent in reversed(path.relative_to(self.base).parents):
            folder = self.base / parent
            if not folder.exists():
                folder.mkdir(mode=_DIR_MODE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        entry = {
            "path": relative,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "rows": rows,
        }
        self.files.append(entry)

    def json(self, relative: str, value: Any) -> None:
        self.write(relative, _json_bytes(value), None)


def _write_run(
    writer: _RunWriter, config: PipelineConfig, config_path: Path, plan: Plan, run_id: str
) -> dict[str, Any]:
    config_digest = hashlib.sha256(config_path.read_bytes()).hexdigest()
    audiences: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    for item in plan.audiences:
        exports: dict[str, Any] = {}
        for offer in item.offers:
            exports |= _write_exports(writer, config, item, offer)
            if offer.strategy is not None:
                writer.json(f"product_sets/{offer.name}.json", product_set(offer))
                writer.sets[offer.name] = f"product_sets/{offer.name}.json"
        entries += plan_entries(item)
        audiences[item.audience.name] = _manifest_audience(item, exports, config_digest)
    problems = plan.tables.problems
    writer.write(PROBLEMS_NAME, _csv_bytes(problems), len(problems))
    writer.json(PLAN_NAME, {"run_id": run_id, "as_of": _iso(plan.as_of), "audiences": entries})
    manifest = {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "as_of": _iso(plan.as_of),
        "normalization_spec_version": NORMALIZATION_SPEC_VERSION,
        "config_digest": config_digest,
        "plain_columns": {platform: list(columns) for platform, columns in PLAIN_COLUMNS.items()},
        "inputs": plan.tables.counts,
        "audiences": audiences,
        "files": list(writer.files),
    }
    writer.write_unlisted(MANIFEST_NAME, _json_bytes(manifest))  # it lists the others, not itself
    # the audit runs on the finished files; its results go into the reviewer's page, which the manifest lists
    audit = audit_run(writer.base, config)
    sets = {
        name: json.loads((writer.base / path).read_text(encoding="utf-8"))
        for name, path in writer.sets.items()
    }
    page = render_report(
        manifest, json.loads((writer.base / PLAN_NAME).read_text(encoding="utf-8")), sets, audit
    )
    writer.write(REPORT_NAME, page.encode("utf-8"), None)
    failed = [check.name for check in audit.checks if not check.passed]
    manifest["audit"] = {"passed": audit.passed, "failed_checks": failed}
    manifest["files"] = list(writer.files)
    (writer.base / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )
    writer.audit = audit
    return manifest


def product_set(offer: Offer) -> dict[str, Any]:
    """``product_sets/<name>.json``: the set, a reason per product, and how each platform selects it."""
    products = offer.products
    return {
        "audience": offer.name,
        "parent": offer.parent,
        "strategy": offer.strategy,
        "members": len(offer.members),
        "product_ids": offer.product_ids,
        "reasons": dict(zip(products["id"], products["reason"], strict=True)) if len(products) else {},
        "meta_filter": offer.meta_filter(),
        "google_labels": offer.google_labels(),
    }


def plan_entries(item: AudiencePlan) -> list[dict[str, Any]]:
    """``plan.json`` entries: the audience, then each sub-audience when it was split."""
    audience, counts = item.audience, item.counts
    split = len(item.offers) > 1 or (len(item.offers) == 1 and item.offers[0].name != audience.name)
    strategy = audience.pairing.strategy if audience.pairing else None
    head: dict[str, Any] = {
        "name": audience.name,
        "parent": None,
        "who": audience.who,
        "strategy": strategy,
        "description": audience.description,
        **counts,
        "destinations": list(item.platforms),
        "minimum": item.minimum,
    }
    entries = []
    if split or not item.offers:
        head |= {"sub_audiences": [o.name for o in item.offers], "product_set": None}
        head["below_minimum"] = counts["members"] < item.minimum
        entries.append(head)
    for offer in item.offers:
        entry = head | {"name": offer.name, "parent": audience.name} if split else dict(head)
        if split:
            entry |= {"candidates": len(offer.members), "members": len(offer.members), "excluded": {}}
            entry.pop("sub_audiences", None)
        entry["product_set"] = _set_summary(offer)
        entry["below_minimum"] = len(offer.members) < item.minimum
        entry["below_destination_minimum"] = item.below_minimum(offer)
        entries.append(entry)
    return entries


def _set_summary(offer: Offer) -> dict[str, Any] | None:
    if offer.strategy is None:
        return None
    products = offer.products
    return {
        "file": f"product_sets/{offer.name}.json",
        "size": len(products),
        "products": [
            {"id": pid, "reason": reason}
            for pid, reason in zip(products["id"], products["reason"], strict=True)
        ],
    }


def _write_exports(
    writer: _RunWriter, config: PipelineConfig, item: AudiencePlan, offer: Offer
) -> dict[str, Any]:
    """One hashed file per platform the audience goes to; returns what the manifest says of each."""
    people = item.selection.people
    frame = people.frame.iloc[offer.members]
    identifiers = frame[_identifier_columns(people.frame)]
    out: dict[str, Any] = {}
    for platform in dict.fromkeys(item.platforms.values()):
        rows = identifiers
        not_exported: dict[str, int] = {}
        if platform == "google":  # both Google consent signals granted, or not uploaded at all
            granted = (frame["ad_user_data_ok"] & frame["ad_personalization_ok"]).to_numpy(dtype=bool)
            not_exported["google_consent_not_granted"] = int((~granted).sum())
            rows = identifiers[granted]
        phones = _tiktok_phone_format(config, item) if platform == "tiktok" else "e164"
        result = export_frame(rows, platform, config.shop.default_country, tiktok_phone_format=phones)
        table = result.frame[~result.empty_rows.to_numpy(dtype=bool)]
        not_exported["no_identifier_for_platform"] = int(result.empty_rows.sum())
        relative = f"audiences/{offer.name}/{platform}.csv"
        writer.write(relative, _csv_bytes(table), len(table))
        out[relative] = {
            "platform": platform,
            "rows": len(table),
            "members": len(offer.members),
            "not_exported": not_exported,
            "hashed_columns": list(result.hashed_columns),
            "plain_columns": list(result.plain_columns),
            "key_counts": result.counts,
        }
    return out


def _tiktok_phone_format(config: PipelineConfig, item: AudiencePlan) -> str:
    """The phone form the audience's TikTok destination asks for (TikTok's help pages disagree)."""
    for name, platform in item.platforms.items():
        settings = config.destinations.get(name)
        if platform == "tiktok" and isinstance(settings, TikTokDestination):
            return settings.phone_format
    return "e164"


def _identifier_columns(people: pd.DataFrame) -> list[str]:
    """Identifier columns with a value in at least one row of the whole table (so every audience of a
    table exports the same columns, and a column the shop does not have is left out)."""
    return [c for c in IDENTIFIER_COLUMNS if c in people.columns and (people[c].str.strip() != "").any()]


def _manifest_audience(item: AudiencePlan, exports: dict[str, Any], config_digest: str) -> dict[str, Any]:
    counts = item.counts
    selection = item.selection
    candidates = selection.candidates
    frame = selection.people.frame
    members = selection.members
    consent = {
        "candidates_with_ads_consent": int(selection.people.ads_ok[candidates].sum()),
        "candidates_without_ads_consent": int((~selection.people.ads_ok[candidates]).sum()),
        "members_google_consent_granted": int(
            (frame["ad_user_data_ok"] & frame["ad_personalization_ok"]).to_numpy(dtype=bool)[members].sum()
        ),
    }
    return {
        "who": item.audience.who,
        "strategy": item.audience.pairing.strategy if item.audience.pairing else None,
        **counts,
        "adds_up": counts["candidates"] == counts["members"] + sum(counts["excluded"].values()),
        "sub_audiences": {o.name: len(o.members) for o in item.offers},
        "consent": consent,
        "normalization_spec_version": NORMALIZATION_SPEC_VERSION,
        "config_digest": config_digest,
        "exports": exports,
    }


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """A header and the rows, quoted only where a value needs it (hashes never do)."""
    header = ",".join(frame.columns) + "\n"
    body = csv_rows(frame.astype("str")) if len(frame) else b""
    return header.encode() + body


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
