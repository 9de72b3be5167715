"""``audiences prune``: old run folders go, the latest run and the latest synced run stay."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from audiences.cli import main
from audiences.retention import prune, run_time
from audiences.state import StateStore, default_url, pruned

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _run(root: Path, name: str, complete: bool = True) -> Path:
    folder = root / "runs" / name
    folder.mkdir(parents=True)
    if complete:
        (folder / "manifest.json").write_text("{}")
    return folder


def test_old_runs_go_and_the_latest_and_the_synced_one_stay(tmp_path: Path) -> None:
    old = _run(tmp_path, "20261001T020000Z")
    synced = _run(tmp_path, "20261002T020000Z")
    older_crash = _run(tmp_path, ".20261003T020000Z.partial", complete=False)
    recent = _run(tmp_path, "20261120T020000Z")
    newest_incomplete = _run(tmp_path, ".20261124T020000Z.partial", complete=False)
    store = StateStore(default_url(tmp_path))
    store.end_run(store.start_run("sync", str(synced)), "ok", {})
    store.end_run(store.start_run("sync", str(recent)), "failed", {})
    result = prune(tmp_path, 30, store, now=NOW)
    assert result.deleted == [old, older_crash]
    assert result.kept == [synced]
    assert {p.name for p in (tmp_path / "runs").iterdir()} == {
        synced.name,
        recent.name,
        newest_incomplete.name,
    }
    with store.engine.connect() as conn:
        assert {row.run_dir for row in conn.execute(sa.select(pruned))} == {str(old), str(older_crash)}
    store.close()


def test_the_latest_complete_run_stays_however_old(tmp_path: Path) -> None:
    only = _run(tmp_path, "20250101T000000Z")
    store = StateStore(default_url(tmp_path))
    assert prune(tmp_path, 1, store, now=NOW).deleted == []
    assert only.exists()
    store.close()


def test_run_time_reads_the_name_or_falls_back_to_mtime(tmp_path: Path) -> None:
    assert run_time(Path("20261120T020000Z-2")) == datetime(2026, 11, 20, 2, tzinfo=UTC)
    odd = tmp_path / "manual-copy"
    odd.mkdir()
    assert run_time(odd).year >= 2026


def test_prune_command_uses_the_config_and_reports(tmp_path: Path) -> None:
    config = tmp_path / "retarget.yaml"
    config.write_text(
        "shop: {name: S, currency: JPY, default_country: JP}\n"
        f"feeds: {{out: {tmp_path}/feeds}}\nretention: {{keep_days: 10}}\n"
    )
    _run(tmp_path, "20200101T000000Z")
    _run(tmp_path, "20200102T000000Z")
    result = CliRunner().invoke(main, ["prune", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "deleted" in result.output and "1 run folder(s) older than 10 days deleted" in result.output
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["20200102T000000Z"]


def test_prune_command_without_a_config_needs_out_and_keep_days(tmp_path: Path) -> None:
    _run(tmp_path, "20200101T000000Z")
    _run(tmp_path, "20200102T000000Z")
    result = CliRunner().invoke(main, ["prune", "--keep-days", "5"])
    assert result.exit_code == 2 and "--out DIR and --keep-days N" in result.output
    result = CliRunner().invoke(main, ["prune", "--keep-days", "5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["20200102T000000Z"]
    assert (tmp_path / "state.db").exists()
