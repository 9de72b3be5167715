"""The whole pipeline on the demo shop at debug level leaves no customer's e-mail, phone or name in a log."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from audiences.cli import main as audiences_main
from audiences.mockserver.server import MockServer
from feedgen.cli import main as feedgen_main

DEMO = Path(__file__).parents[2] / "fixtures" / "demo"


def _needles() -> tuple[set[str], set[str], set[str]]:
    people = pd.concat(
        [
            pd.read_csv(DEMO / name, dtype=str, keep_default_na=False)
            for name in ("customers.csv", "prospects.csv")
        ]
    )
    emails = {v.strip() for v in people["email"] if "@" in v}
    phones = {v.strip() for v in people["phone"] if len(re.sub(r"\D", "", v)) >= 7}
    names = {v.strip() for v in pd.concat([people["first_name"], people["last_name"]]) if len(v.strip()) >= 4}
    return emails, phones, names


def test_debug_logs_of_the_whole_pipeline_hold_no_personal_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MOCK_TOKEN", "demo-token")
    with MockServer() as server:
        text = (DEMO / "retarget.yaml").read_text().replace("{path: ", f"{{path: {DEMO}/")
        text = text.replace("http://127.0.0.1:8765", server.base_url).replace("out/", f"{tmp_path}/out/")
        config = tmp_path / "retarget.yaml"
        config.write_text(text)
        runner = CliRunner()
        outputs = []
        for cli, args in (
            (feedgen_main, ["-vv", "build", "--config", str(config)]),
            (audiences_main, ["-vv", "preview", "--config", str(config), "--as-of", "2026-11-20"]),
            (audiences_main, ["-vv", "build", "--config", str(config), "--as-of", "2026-11-20"]),
            (audiences_main, ["-vv", "sync", "--config", str(config)]),
            (audiences_main, ["-vv", "sync", "--config", str(config)]),  # the second sends nothing
            (
                audiences_main,
                ["-vv", "hash", "--platform", "meta", str(DEMO / "customers.csv"), str(tmp_path / "h.csv")],
            ),
        ):
            result = runner.invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
            outputs.append(result.output)
        assert server.state()["meta"]["audiences"]  # the sync really reached the mock
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) > 10  # debug logging was on and something was logged
    everything = logs + "\n".join(outputs)
    emails, phones, names = _needles()
    assert "@" not in everything
    assert not [e for e in emails if e in everything]
    assert not [p for p in phones if p in everything]
    found = [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", everything)]
    assert not found
    assert "demo-token" not in everything
