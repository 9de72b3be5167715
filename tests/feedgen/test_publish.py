from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from feedgen import publish
from feedgen.errors import GuardError, PublishError


def test_stage_then_publish_replaces_atomically(tmp_path: Path) -> None:
    final = tmp_path / "meta.csv"
    final.write_text("old\n")
    staged, fd = publish.stage(final)
    with open(fd, "w") as fh:
        fh.write("new\n")
    assert final.read_text() == "old\n"  # nothing visible before the rename
    assert staged.temp.parent == tmp_path and staged.temp.name.startswith(".meta.csv.")
    publish.publish([staged])
    assert final.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.csv"]


def test_discard_leaves_old_file(tmp_path: Path) -> None:
    final = tmp_path / "google.xml"
    final.write_text("old")
    staged, fd = publish.stage(final)
    with open(fd, "w") as fh:
        fh.write("partial")
    staged.discard()
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["google.xml"]


def test_publish_failure_keeps_old_and_cleans_temps(tmp_path: Path) -> None:
    final = tmp_path / "a.csv"
    final.write_text("old")
    staged, fd = publish.stage(final)
    with open(fd, "w") as fh:
        fh.write("new")
    blocker = tmp_path / "dir"
    blocker.mkdir()
    (blocker / "x").write_text("not empty")
    second, fd2 = publish.stage(blocker)
    with open(fd2, "w") as fh:
        fh.write("cannot replace a non-empty folder")
    with pytest.raises(PublishError, match="cannot publish"):
        publish.publish([second, staged])
    assert final.read_text() == "old"
    assert not staged.temp.exists() and not second.temp.exists()


@pytest.mark.parametrize(
    ("written", "previous", "ok"),
    [(0, None, False), (0, 10, False), (10, None, True), (80, 100, True), (79, 100, False), (150, 100, True)],
)
def test_guard(written: int, previous: int | None, ok: bool) -> None:
    assert publish.guard("meta-csv", written, previous, 0.2).ok is ok


def test_enforce_raises_unless_forced(caplog: pytest.LogCaptureFixture) -> None:
    failed = [publish.guard("meta-csv", 50, 100, 0.2)]
    with pytest.raises(GuardError, match="meta-csv would shrink from 100 to 50 rows") as info:
        publish.enforce(failed, force=False)
    assert info.value.exit_code == 1
    with caplog.at_level(logging.WARNING):
        publish.enforce(failed, force=True)
    assert "--force" in caplog.text


def test_previous_counts_reads_last_report(tmp_path: Path) -> None:
    assert publish.previous_counts(tmp_path) == {}
    report = {"formats": {"meta-csv": {"written": 12, "published": True}, "google-xml": {"written": 3}}}
    (tmp_path / publish.REPORT_NAME).write_text(json.dumps(report))
    assert publish.previous_counts(tmp_path) == {"meta-csv": 12, "google-xml": 3}
    (tmp_path / publish.REPORT_NAME).write_text("{broken")
    assert publish.previous_counts(tmp_path) == {}
