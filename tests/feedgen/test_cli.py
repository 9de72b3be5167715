from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from feedgen.cli import main

DATA = Path(__file__).parent / "data"


def write_config(folder: Path, extra: str = "") -> Path:
    (folder / "catalog.csv").write_bytes((DATA / "small_catalog.csv").read_bytes())
    config = folder / "retarget.yaml"
    config.write_text(
        "shop: {name: Demo Shop, currency: JPY, default_country: JP}\n"
        "catalog: {source: {path: catalog.csv}}\n"
        "feeds: {out: out/feeds, formats: [meta-csv, google-xml], labels: {custom_label_0: line}}\n" + extra
    )
    return config


def test_build_with_config_publishes_relative_to_config(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path)
    monkeypatch.chdir("/")
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--as-of", "2026-11-20"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out" / "feeds").iterdir()) == [
        "feed_report.json",
        "google.xml",
        "meta.csv",
        "rejects.csv",
    ]
    assert "meta-csv" in result.output and "Published into" in result.output


def test_out_overrides_config(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "meta.csv").exists() and not (tmp_path / "out").exists()


def test_ad_hoc_build_with_formats(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "build",
            "--catalog",
            str(DATA / "small_catalog.csv"),
            "--out",
            str(tmp_path),
            "--format",
            "tiktok-csv",
            "--currency",
            "JPY",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed_report.json", "rejects.csv", "tiktok.csv"]


def test_config_errors_exit_2_with_location(tmp_path: Path) -> None:
    config = write_config(tmp_path, "feedz: {}\n")
    result = CliRunner().invoke(main, ["build", "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown top-level section(s) feedz" in result.output
    config.write_text(config.read_text().replace("feedz: {}\n", "").replace("currency: JPY", "currency: XYZ"))
    result = CliRunner().invoke(main, ["build", "--config", str(config)])
    assert result.exit_code == 2
    assert "shop.currency: unknown ISO 4217 currency code 'XYZ'" in result.output


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(main, ["build", "--config", "a.yaml", "--catalog", "b.csv", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "either --config FILE, or --catalog FILE" in both.output
    no_out = runner.invoke(main, ["build", "--catalog", "b.csv"])
    assert no_out.exit_code == 2 and "--catalog needs --out DIR" in no_out.output
    bad_format = runner.invoke(main, ["build", "--catalog", "b.csv", "--out", "x", "--format", "bing"])
    assert bad_format.exit_code == 2
    missing = runner.invoke(
        main, ["build", "--catalog", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]
    )
    assert missing.exit_code == 2 and "nope.csv: file not found" in missing.output


def test_guard_exits_1_and_force_publishes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["build", "--config", str(config), "--as-of", "2026-11-20"]).exit_code == 0
    lines = (tmp_path / "catalog.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "catalog.csv").write_text("".join(lines[:2]), encoding="utf-8")
    refused = runner.invoke(main, ["build", "--config", str(config), "--as-of", "2026-11-20"])
    assert refused.exit_code == 1
    assert "refusing to publish" in refused.output and "previous feeds are kept" in refused.output
    forced = runner.invoke(main, ["build", "--config", str(config), "--as-of", "2026-11-20", "--force"])
    assert forced.exit_code == 0, forced.output


def test_validate_reports_without_publishing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    rejects = tmp_path / "r.csv"
    result = CliRunner().invoke(
        main,
        ["validate", "--config", str(config), "--json", "--rejects", str(rejects), "--as-of", "2026-11-20"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["formats"]["google-xml"]["rejected"] == 5
    assert not (tmp_path / "out").exists()
    assert "duplicate_id" in rejects.read_text()
