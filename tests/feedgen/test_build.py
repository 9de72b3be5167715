from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from feedgen import build, publish
from feedgen.config import SourceConfig, load_config
from feedgen.errors import GuardError, PublishError
from feedgen.writers import FORMATS, filename_of
from tests.feedgen.helpers import feed_job

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden" / "small"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "demo"
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
G = "{http://base.google.com/ns/1.0}"


def job(out: Path, catalog: Path = DATA / "small_catalog.csv", chunk_size: int = 50_000) -> build.FeedJob:
    return feed_job(out, catalog, chunk_size)


def rows_in(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))
    if path.suffix == ".tsv":
        header, *lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        return [dict(zip(header.split("\t"), line.split("\t"), strict=True)) for line in lines]
    tree = etree.parse(str(path))
    return [{el.tag.removeprefix(G): el.text or "" for el in item} for item in tree.getroot().iter("item")]


def test_golden_files(tmp_path: Path) -> None:
    report = build.run(job(tmp_path), as_of=AS_OF)
    names = [filename_of(fmt) for fmt in FORMATS] + [build.REJECTS_NAME]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(tmp_path / name, GOLDEN / name)
    for name in names:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), f"{name} differs from golden"
    assert report.rows_read == 10


def test_counts_add_up_and_match_files(tmp_path: Path) -> None:
    report = build.run(job(tmp_path), as_of=AS_OF)
    saved = json.loads((tmp_path / "feed_report.json").read_text())
    for fmt, stats in report.formats.items():
        assert stats.rows_read == stats.written + stats.rejected == 10
        assert len(rows_in(tmp_path / filename_of(fmt))) == stats.written
        assert saved["formats"][fmt]["written"] == stats.written
        assert saved["formats"][fmt]["sha256"] == stats.sha256 and len(stats.sha256) == 64
    assert report.formats["meta-csv"].written == 7
    assert report.formats["google-xml"].written == 5
    assert dict(report.formats["google-tsv"].rejected_by_reason) == {
        "id:duplicate_id": 1,
        "gtin:invalid_gtin": 1,
        "color:missing": 1,
        "price:missing": 1,
        "link:invalid_url": 1,
    }


def test_files_parse_back_field_by_field(tmp_path: Path) -> None:
    build.run(job(tmp_path), as_of=AS_OF)
    meta = {r["id"]: r for r in rows_in(tmp_path / "meta.csv")}
    google = {r["id"]: r for r in rows_in(tmp_path / "google.xml")}
    tiktok = {r["sku_id"]: r for r in rows_in(tmp_path / "tiktok.csv")}
    tsv = {r["id"]: r for r in rows_in(tmp_path / "google.tsv")}
    premium = meta["DRK-PRM-1"]
    assert premium["title"] == 'Green Tea Drink "Premium", 12 pack'
    assert premium["description"] == "Premium blend & extra catechins \u2013 12 bottles."
    assert premium["price"] == "1180 JPY" and premium["sale_price"] == "1080 JPY"
    assert premium["additional_image_link"].count(",") == 1
    assert premium["custom_label_0"] == "health-drink" and premium["custom_label_1"] == "2"
    assert premium["custom_label_2"] == "1000-5000"
    assert google["DRK-PRM-1"]["title"] == premium["title"]
    assert google["DRK-PRM-1"]["availability"] == "in_stock"
    assert (
        meta["CAM-BAD-GTIN"]["availability"] == "available for order" and meta["CAM-BAD-GTIN"]["gtin"] == ""
    )
    assert "CAM-BAD-GTIN" not in google
    assert meta["CAM-ENT-1"]["description"] == "Compact camera with bell tab and control"
    assert meta["CAM-ENT-1"]["sale_price"] == ""  # expired sale dropped
    assert meta["DRK-STD-1"]["description"] == "Everyday green tea drink.\n\n500 ml\nNo sugar"
    assert tsv["DRK-STD-1"]["description"] == "Everyday green tea drink.  500 ml No sugar"
    assert google["DRK-PRO-1"]["description"] == "Clinical strength.\nTwo paragraphs."
    assert tiktok.keys() == meta.keys()
    assert "TEE-NAVY-L" in meta and "TEE-NAVY-L" not in google  # Google apparel needs color


def test_chunking_does_not_change_output(tmp_path: Path) -> None:
    build.run(job(tmp_path / "one"), as_of=AS_OF)
    build.run(job(tmp_path / "many", chunk_size=3), as_of=AS_OF)
    for name in [*(filename_of(f) for f in FORMATS), build.REJECTS_NAME]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), name


@pytest.mark.parametrize(
    ("formats", "rows"),
    [(("meta-csv",), 40_000), (("google-xml",), 40_000), (("meta-csv", "meta-xml"), 20_000)],
)
def test_chunks_default_to_fewer_rows_for_several_formats(
    tmp_path: Path, formats: tuple[str, ...], rows: int
) -> None:
    unset = replace(job(tmp_path), source=SourceConfig(path=DATA / "small_catalog.csv"), formats=formats)
    assert unset.read_from().chunk_size == rows
    assert unset.read_from().path == unset.source.path


def test_a_chunk_size_that_is_set_is_kept(tmp_path: Path) -> None:
    assert job(tmp_path, chunk_size=40_000).read_from().chunk_size == 40_000  # all five formats
    assert job(tmp_path, chunk_size=7).read_from().chunk_size == 7
    loaded = load_config(FIXTURES / "retarget.yaml")  # sets no chunk_size
    assert build.FeedJob.from_config(loaded).read_from().chunk_size == 20_000


def test_the_build_reads_in_the_chunks_read_from_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = build.read_chunks

    def spy(source: SourceConfig, *args: object) -> object:
        seen.append(source.chunk_size)
        return real(source, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "read_chunks", spy)
    unset = replace(job(tmp_path), source=SourceConfig(path=DATA / "small_catalog.csv"))
    build.run(unset, as_of=AS_OF)
    assert seen == [20_000]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_shrink_guard_keeps_old_feed(tmp_path: Path) -> None:
    out = tmp_path / "feeds"
    build.run(job(out), as_of=AS_OF)
    before = _snapshot(out)
    lines = (DATA / "small_catalog.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    smaller = tmp_path / "smaller.csv"
    smaller.write_text("".join(lines[:3]), encoding="utf-8")  # header + 2 good rows
    with pytest.raises(GuardError, match="would shrink from 7 to 2 rows") as info:
        build.run(job(out, smaller), as_of=AS_OF)
    assert info.value.exit_code == 1
    assert _snapshot(out) == before  # old files intact, no temporary file left behind
    report = build.run(job(out, smaller), as_of=AS_OF, force=True)
    assert report.formats["meta-csv"].guard.startswith("forced:")
    assert len(rows_in(out / "meta.csv")) == 2


def test_empty_feed_is_never_published(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text((DATA / "small_catalog.csv").read_text(encoding="utf-8").splitlines()[0] + "\n")
    with pytest.raises(GuardError, match="would be empty"):
        build.run(job(tmp_path / "out", empty), as_of=AS_OF)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_failure_while_writing_leaves_old_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "feeds"
    build.run(job(out), as_of=AS_OF)
    before = _snapshot(out)

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.DigestFile, "writelines", explode)  # the disk fills up while rows are written
    with pytest.raises(PublishError, match=r"No space left on device.*previous feeds are kept") as info:
        build.run(job(out), as_of=AS_OF)
    assert info.value.exit_code == 1
    assert _snapshot(out) == before


def test_validate_mode_publishes_nothing(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    report = build.run(job(tmp_path / "out"), publish_files=False, as_of=AS_OF, rejects_to=rejects)
    assert report.formats["meta-csv"].written == 7
    assert not (tmp_path / "out").exists()
    assert rejects.read_text().startswith("row,id,platform,field,severity,reason,detail\n")


def test_too_many_distinct_label_values_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    header, first = (DATA / "small_catalog.csv").read_text(encoding="utf-8").splitlines()[:2]
    rows = [first.replace("DRK-STD-1", f"DRK-{i}").replace("health-drink", f"line-{i}") for i in range(1002)]
    catalog = tmp_path / "wide.csv"
    catalog.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        report = build.run(job(tmp_path / "out", catalog), as_of=AS_OF)
    assert report.label_values["custom_label_0"] > 1000
    assert report.label_values["custom_label_1"] == 1
    assert "custom_label_0 has more than 1000 distinct values" in caplog.text
