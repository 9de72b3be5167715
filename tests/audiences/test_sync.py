"""``audiences sync`` over the demo build, with in-memory adapters: diffs, guards, resume, state."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from audiences.build import build
from audiences.cli import main
from audiences.config import PipelineConfig, load_config
from audiences.destinations.base import Adapter, Row, Sent
from audiences.state import StateStore, default_url
from audiences.sync import load_targets, read_export, row_digest, sync
from feedgen.clitools import DateParam

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"
AS_OF = DateParam(end_of_day=True).convert("2026-11-20", None, None)


class Crash(Exception):
    """Stands for the process dying mid-run (not an error the sync handles)."""


class FakePlatform(Adapter):
    """Holds members in memory per audience; can crash after N calls."""

    platform = "meta"

    def __init__(
        self, platform: str = "meta", max_batch: int = 10_000, crash_after: int | None = None
    ) -> None:
        self.platform = platform  # type: ignore[misc]
        self.max_batch = max_batch
        self.crash_after = crash_after
        self.audiences: dict[str, set[Row]] = {}
        self.names: dict[str, str] = {}
        self.calls: list[tuple[str, str, int]] = []
        self.sessions: dict[str, list[Row]] = {}
        self.product_sets: dict[str, dict[str, Any]] = {}

    def _tick(self, op: str, name: str, rows: int) -> None:
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise Crash
        self.calls.append((op, name, rows))

    def ensure_audience(
        self, name: str, description: str, schema: Sequence[str], known_id: str | None
    ) -> str:
        if known_id in self.audiences:
            return known_id
        audience_id = f"id-{name}"
        self.audiences.setdefault(audience_id, set())
        return audience_id

    def add(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        self._tick("add", name, len(rows))
        self.audiences[audience_id] |= set(rows)
        return Sent(received=len(rows), audience_id=audience_id)

    def remove(self, audience_id: str, name: str, schema: Sequence[str], rows: Sequence[Row]) -> Sent:
        self._tick("remove", name, len(rows))
        self.audiences[audience_id] -= set(rows)
        return Sent(received=len(rows), audience_id=audience_id)

    def replace(
        self,
        audience_id: str,
        name: str,
        schema: Sequence[str],
        batch: Sequence[Row],
        session: dict[str, Any],
    ) -> Sent:
        self._tick("replace", name, len(batch))
        self.sessions.setdefault(audience_id, []).extend(batch)
        if session["last_batch_flag"]:
            self.audiences[audience_id] = set(self.sessions.pop(audience_id))
        return Sent(received=len(batch), audience_id=audience_id)

    def upsert_product_set(self, name: str, filter_: dict[str, Any], known_id: str | None) -> str | None:
        set_id = known_id or f"set-{name}"
        self.product_sets[set_id] = filter_
        return set_id


def _config_text(tmp: Path, extra: str = "", customers: str = "customers.csv") -> str:
    text = (DEMO / "retarget.yaml").read_text()
    text = text.replace("{path: ", f"{{path: {DEMO}/").replace(f"{DEMO}/customers.csv", customers)
    text = text.replace("out: out/feeds", f"out: {tmp}/out/feeds")
    return (
        text
        + (
            "destinations:\n"
            "  meta: {type: mock, base_url: 'http://127.0.0.1:9', min_members: 100}\n"
            "  tiktok: {type: tiktok, base_url: 'http://127.0.0.1:9', token_env: T, advertiser_id: '1',"
            " min_members: 100}\n"
            f"  google: {{type: google-file, dir: {tmp}/google, min_members: 100}}\n"
        )
        + extra
    )


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, PipelineConfig]:
    shutil.copy(DEMO / "customers.csv", tmp_path / "customers.csv")
    path = tmp_path / "retarget.yaml"
    path.write_text(_config_text(tmp_path, customers=str(tmp_path / "customers.csv")))
    config = load_config(path)
    build(config, path, AS_OF)
    return path, config


def _exports(run: Path, platform: str) -> dict[str, set[Row]]:
    manifest = json.loads((run / "manifest.json").read_text())
    checksums = {f["path"]: f["sha256"] for f in manifest["files"]}
    out = {}
    for target in load_targets(run):
        _, rows = read_export(run, f"audiences/{target.name}/{platform}.csv", checksums, platform)
        out[target.name] = set(rows)
    return out


def _holdings(fake: FakePlatform) -> dict[str, set[Row]]:
    return {key.removeprefix("id-"): rows for key, rows in fake.audiences.items()}


def _adapters() -> dict[str, Adapter]:
    return {"meta": FakePlatform(), "tiktok": FakePlatform("tiktok")}


def test_the_first_sync_sends_everything_and_a_second_sends_nothing(
    shop: tuple[Path, PipelineConfig],
) -> None:
    _, config = shop
    adapters = _adapters()
    report = sync(config, adapters=adapters)
    assert report.ok, [(o.audience, o.destination, o.message) for o in report.outcomes]
    meta, tiktok = adapters["meta"], adapters["tiktok"]
    assert isinstance(meta, FakePlatform) and isinstance(tiktok, FakePlatform)
    assert _holdings(meta) == _exports(report.run_dir, "meta")
    assert _holdings(tiktok) == _exports(report.run_dir, "tiktok")
    assert {o.status for o in report.outcomes} == {"ok"}
    assert set(meta.product_sets) == {f"set-{t.name}" for t in load_targets(report.run_dir)}
    calls = len(meta.calls) + len(tiktok.calls)
    again = sync(config, adapters=adapters)
    assert {o.status for o in again.outcomes} == {"unchanged"}
    assert len(meta.calls) + len(tiktok.calls) == calls  # nothing sent


def test_dry_run_changes_nothing(shop: tuple[Path, PipelineConfig]) -> None:
    _, config = shop
    adapters = _adapters()
    report = sync(config, dry_run=True, adapters=adapters)
    assert {o.status for o in report.outcomes} == {"dry-run"}
    assert all(o.adds == o.rows and o.removes == 0 for o in report.outcomes)
    assert all(not a.calls for a in adapters.values() if isinstance(a, FakePlatform))
    store = StateStore(default_url(config.feeds.out.parent))
    assert store.held("meta", report.outcomes[0].audience) == {}
    assert store.history()[0]["outcome"] == "dry-run"
    store.close()


def test_consent_withdrawn_removes_the_member(shop: tuple[Path, PipelineConfig]) -> None:
    path, config = shop
    adapters = _adapters()
    first = sync(config, adapters=adapters)
    customers = pd.read_csv(path.parent / "customers.csv", dtype=str, keep_default_na=False)
    meta_rows = _exports(first.run_dir, "meta")["camera-cross-sell"]
    # the first consenting customer whose hashed e-mail is in the camera audience
    from audiences.load import person_hashes

    hashes = person_hashes(customers, "JP")["email_sha256"]
    exported = {row[0] for row in meta_rows} - {""}
    who = next(i for i, h in enumerate(hashes) if h in exported and (hashes == h).sum() == 1)
    customers.loc[who, "ads_consent"] = "no"
    customers.to_csv(path.parent / "customers.csv", index=False)
    build(load_config(path), path, AS_OF)
    second = sync(config, adapters=adapters)
    assert second.ok
    outcome = next(o for o in second.outcomes if (o.audience, o.destination) == ("camera-cross-sell", "meta"))
    assert (outcome.adds, outcome.removes) == (0, 1)
    meta = adapters["meta"]
    assert isinstance(meta, FakePlatform)
    assert hashes[who] not in {row[0] for row in meta.audiences["id-camera-cross-sell"]}
    assert _holdings(meta) == _exports(second.run_dir, "meta")


def test_a_sync_that_dies_half_way_resumes_without_sending_a_batch_twice(
    shop: tuple[Path, PipelineConfig],
) -> None:
    _, config = shop
    dying = FakePlatform(max_batch=40, crash_after=5)
    with pytest.raises(Crash):
        sync(config, adapters={"meta": dying}, only=["meta"])
    healthy = FakePlatform(max_batch=40)
    healthy.audiences = {k: set(v) for k, v in dying.audiences.items()}  # what the platform kept
    report = sync(config, adapters={"meta": healthy}, only=["meta"])
    assert report.ok
    assert _holdings(healthy) == _exports(report.run_dir, "meta")
    sent = dying.calls + healthy.calls
    total = sum(-(-len(rows) // 40) for rows in _exports(report.run_dir, "meta").values())
    assert len(sent) == total  # every batch exactly once across the two runs
    store = StateStore(default_url(config.feeds.out.parent))
    assert [r["outcome"] for r in store.history()][:2] == ["ok", "interrupted"]
    store.close()


def test_replace_swaps_all_members_in_one_session(shop: tuple[Path, PipelineConfig]) -> None:
    _, config = shop
    meta = FakePlatform(max_batch=50)
    meta.audiences["id-camera-cross-sell"] = {("stale",) * 9}
    report = sync(config, replace=True, adapters={"meta": meta}, only=["meta"])
    assert report.ok
    assert _holdings(meta) == _exports(report.run_dir, "meta")
    assert {op for op, _, _ in meta.calls} == {"replace"}


def test_below_the_minimum_stops_that_audience_only(tmp_path: Path) -> None:
    extra_min = "sync: {max_remove_fraction: 0.3}\n"
    path = tmp_path / "retarget.yaml"
    text = _config_text(tmp_path, extra_min, customers=str(DEMO / "customers.csv"))
    path.write_text(text.replace("min_members: 100}\n  tiktok", "min_members: 300}\n  tiktok"))
    config = load_config(path)
    build(config, path, AS_OF)
    adapters = _adapters()
    report = sync(config, adapters=adapters)
    assert not report.ok
    stopped = {(o.audience, o.destination) for o in report.outcomes if o.status == "stopped"}
    small = {(o.audience, "meta") for o in report.outcomes if o.destination == "meta" and o.rows < 300}
    assert stopped == small and stopped
    assert all("below meta's minimum of 300" in o.message for o in report.outcomes if o.status == "stopped")
    assert all(o.status == "ok" for o in report.outcomes if (o.audience, o.destination) not in stopped)
    result = CliRunner().invoke(main, ["sync", "--config", str(path)])
    assert result.exit_code == 1
    assert "below meta's minimum of 300" in result.output


def test_too_many_removals_stop_the_audience(shop: tuple[Path, PipelineConfig]) -> None:
    path, config = shop
    adapters = _adapters()
    assert sync(config, adapters=adapters).ok
    later = DateParam(end_of_day=True).convert("2027-01-10", None, None)  # most purchases leave the windows
    build(load_config(path), path, later)
    report = sync(config, adapters=adapters, only=["meta"])
    stopped = [o for o in report.outcomes if o.status == "stopped"]
    assert stopped and all("sync.max_remove_fraction" in o.message or "minimum" in o.message for o in stopped)
    assert any(o.removes > 0.3 * o.held_before for o in stopped)


def test_google_files_are_written_per_consent_group(shop: tuple[Path, PipelineConfig]) -> None:
    _, config = shop
    report = sync(config, adapters=_adapters(), only=["google"])
    assert report.ok
    google = config.destinations["google"]
    assert google.type == "google-file"
    for target, rows in _exports(report.run_dir, "google").items():
        members = google.dir / target / "members.consent-granted.csv"
        assert stat.S_IMODE(members.stat().st_mode) == 0o600
        lines = members.read_text().splitlines()
        assert lines[0] == "Email,Phone,First Name,Last Name,Country,Zip"
        assert len(lines) - 1 == len(rows)
        adds = (google.dir / target / "adds.consent-granted.csv").read_text().splitlines()
        assert len(adds) - 1 == len(rows)  # the first sync adds everyone
    again = sync(config, adapters=_adapters(), only=["google"])
    assert {o.status for o in again.outcomes} == {"unchanged"}


def test_a_changed_export_is_refused(shop: tuple[Path, PipelineConfig]) -> None:
    _, config = shop
    run = sorted((config.feeds.out.parent / "runs").iterdir())[-1]
    export = run / "audiences" / "camera-cross-sell" / "meta.csv"
    export.chmod(0o600)
    export.write_text(export.read_text() + "0" * 64 + "\n")
    report = sync(config, adapters=_adapters(), only=["meta"])
    outcome = next(o for o in report.outcomes if o.audience == "camera-cross-sell")
    assert outcome.status == "stopped" and "checksum" in outcome.message


def test_row_digest_is_the_identity_of_a_member_row() -> None:
    assert row_digest(("a", "b")) != row_digest(("ab", ""))
    assert row_digest(("a", "b")) == row_digest(("a", "b"))


@pytest.mark.postgres
def test_the_state_can_live_in_postgresql(tmp_path: Path) -> None:
    import secrets

    import sqlalchemy as sa

    schema = f"sync_test_{secrets.token_hex(4)}"
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        path = tmp_path / "retarget.yaml"
        text = _config_text(tmp_path, customers=str(DEMO / "customers.csv"))
        path.write_text(text + f"state: {{url: '{url}'}}\n")
        config = load_config(path)
        build(config, path, AS_OF)
        adapters = _adapters()
        first = sync(config, adapters=adapters, only=["meta", "tiktok"])
        assert first.ok and {o.status for o in first.outcomes} == {"ok"}
        again = sync(config, adapters=adapters, only=["meta", "tiktok"])
        assert {o.status for o in again.outcomes} == {"unchanged"}
        with admin.connect() as conn:
            held = conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".members')).scalar()
        assert held == sum(o.rows for o in first.outcomes)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_run_and_destination_options_pick_what_is_synced(shop: tuple[Path, PipelineConfig]) -> None:
    path, config = shop
    run = sorted((config.feeds.out.parent / "runs").iterdir())[-1]
    result = CliRunner().invoke(
        main, ["sync", "--config", str(path), "--run", str(run), "--destination", "google"]
    )
    assert result.exit_code == 0, result.output
    assert "google" in result.output and "tiktok" not in result.output
    result = CliRunner().invoke(main, ["sync", "--config", str(path), "--destination", "pinterest"])
    assert result.exit_code == 2 and "--destination pinterest: no audience" in result.output
