"""The chunk pipeline: worker threads write the very files one thread writes, in input order."""

from __future__ import annotations

import csv
import io
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from feedgen import build, catalog, issues, pipeline, text, validate
from feedgen.config import CATALOG_COLUMNS
from feedgen.errors import PublishError
from feedgen.platforms import PLATFORMS
from feedgen.writers import FORMATS, filename_of, writer_class
from feedgen.writers.base import Channel
from tests.feedgen.helpers import LABELS, chunk, feed_job

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
CHANNEL = Channel("Shop", "https://shop.example/", "Test")
DESCRIPTIONS = [
    "<p>Tom &amp; Jerry &#8211; <b>bold</b></p><!-- hidden --><br/>end",
    "a < b &and; c > d<!-- two\nlines -->&copy 2024  &nbsp; x\u3000y",
    "Sakura & Co. <p>first</p>\n\n\n\n<p>second</p> \t tab\r\nbreak",
    "<a <br> b> &&#110;ot; &amp;lt; <P CLASS='x'>caps</P>",
    "plain text, no markup",
    "<!",
    "-- not a comment --> &#0; bell\x07 c1\x85 \ufffe",
    "",
]
TITLES = ["Tea, 12 pack", 'The "Best" Tea', "Caf\u0065\u0301 &amp; more", "  spaced\tout  ", "x" * 160]


def messy_catalog(path: Path, rows: int, seed: int = 7) -> Path:
    """A catalog whose rows mix the cleaning and checking edge cases, with duplicates across chunks."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CATALOG_COLUMNS)
        for i in range(rows):
            row = {
                "id": f"SKU-{rng.randrange(rows)}" if rng.random() < 0.1 else f"SKU-{i}",
                "title": rng.choice(TITLES) if rng.random() < 0.9 else "",
                "description": rng.choice(DESCRIPTIONS) + f" #{i}",
                "price": rng.choice(["980", "1,180", "0", "abc", "", "15.00 USD"]),
                "currency": rng.choice(["JPY", "jpy", ""]),
                "sale_price": rng.choice(["", "", "500", "2000"]),
                "sale_price_effective_date": rng.choice(["", "2024-01-01/2099-12-31", "soon"]),
                "availability": rng.choice(["in stock", "Out of Stock", "preorder", "", "maybe"]),
                "condition": rng.choice(["new", "New", "used", "broken"]),
                "brand": rng.choice(["Demo", "", "Sakura & Co."]),
                "gtin": rng.choice(["4901234567894", "4901234567890", "", "4901 2345 6789 4"]),
                "mpn": rng.choice(["", "M-1"]),
                "link": rng.choice(["https://shop.example/p/1", "/p/1", ""]),
                "image_link": "https://cdn.shop.example/1.jpg",
                "additional_image_link": ",".join(
                    f"https://cdn.shop.example/{k}.jpg" for k in range(rng.randrange(25))
                ),
                "category": rng.choice(["Apparel > Tops", "Health > Drinks"]),
                "google_product_category": rng.choice(["Apparel & Accessories > Clothing", "499", "166"]),
                "color": rng.choice(["", "navy"]),
                "size": rng.choice(["", "M"]),
                "gender": rng.choice(["", "female", "Women", "x"]),
                "age_group": rng.choice(["", "adult", "teen"]),
                "line": rng.choice(["tea", "camera", "l" * 101]),
                "tier": rng.choice(["1", "2.0", ""]),
            }
            writer.writerow([row.get(column, "") for column in CATALOG_COLUMNS])
    return path


def job(catalog_path: Path, out: Path, chunk_size: int, jobs: int | None) -> build.FeedJob:
    return feed_job(out, catalog_path, chunk_size, jobs)


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in [*map(filename_of, FORMATS), build.REJECTS_NAME]}


def counts(folder: Path) -> dict[str, object]:
    report = json.loads((folder / "feed_report.json").read_text())
    return {
        key: report[key] for key in ("rows_read", "issues_in_rejects_csv", "distinct_label_values", "formats")
    }


def test_worker_threads_write_the_files_one_thread_writes(tmp_path: Path) -> None:
    source = messy_catalog(tmp_path / "messy.csv", 400)
    build.run(job(source, tmp_path / "serial", 400, jobs=1), as_of=AS_OF, force=True)
    build.run(job(source, tmp_path / "parallel", 37, jobs=2), as_of=AS_OF, force=True)
    assert outputs(tmp_path / "parallel") == outputs(tmp_path / "serial")
    leftovers = [p.name for p in (tmp_path / "parallel").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary file is left
    assert counts(tmp_path / "parallel") == counts(tmp_path / "serial")
    assert json.loads((tmp_path / "serial" / "feed_report.json").read_text())["issues_in_rejects_csv"] > 400


def test_validate_mode_on_threads_counts_like_one_thread(tmp_path: Path) -> None:
    source = messy_catalog(tmp_path / "messy.csv", 120)
    serial = build.run(job(source, tmp_path / "a", 120, jobs=1), publish_files=False, as_of=AS_OF, force=True)
    parallel = build.run(
        job(source, tmp_path / "b", 25, jobs=2), publish_files=False, as_of=AS_OF, force=True
    )
    assert {f: s.as_dict() for f, s in parallel.formats.items()} == {
        f: s.as_dict() for f, s in serial.formats.items()
    }
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_results_keep_input_order_and_find_duplicates_across_chunks() -> None:
    rows = chunk(*({"id": f"SKU-{i % 7}"} for i in range(30)))
    parts = [rows.iloc[i : i + 4].reset_index(drop=True) for i in range(0, 30, 4)]
    plan = pipeline.ChunkPlan(
        ctx=catalog.CleanContext(currency="JPY", as_of=AS_OF), formats=("meta-csv",), country="JP"
    )
    fh = io.BytesIO()
    sinks = pipeline.Sinks({"meta-csv": writer_class("meta-csv")(fh, CHANNEL)})
    results = list(pipeline.results(parts, plan, sinks, jobs=2))
    assert [r.rows for r in results] == [len(p) for p in parts]
    assert sum(r.platforms["meta"].rejected_by_reason["id:duplicate_id"] for r in results) == 23
    lines = fh.getvalue().decode().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [f'"SKU-{i}"' for i in range(7)]


def test_each_formats_rows_are_made_in_the_sinks_spare_buffers() -> None:
    rows = chunk(*({"id": f"SKU-{i}"} for i in range(12)))
    parts = [rows.iloc[i : i + 4].reset_index(drop=True) for i in range(0, 12, 4)]
    plan = pipeline.ChunkPlan(
        ctx=catalog.CleanContext(currency="JPY", as_of=AS_OF),
        formats=("meta-csv", "google-xml"),
        country="JP",
    )
    asked: list[int] = []

    class Counted(text.SpareBuffers):
        def __call__(self, size: int) -> pa.Buffer:
            asked.append(size)
            return super().__call__(size)

    writers = {fmt: writer_class(fmt)(io.BytesIO(), CHANNEL) for fmt in plan.formats}
    list(pipeline.results(parts, plan, pipeline.Sinks(writers, spares=Counted()), jobs=1))
    assert len(asked) == len(parts) * len(plan.formats)


@pytest.mark.parametrize("jobs", [2, 3])
def test_results_read_a_chunk_only_when_fewer_than_jobs_are_unfinished(jobs: int) -> None:
    """Memory holds the workers' chunks and the one being read, never one more."""
    rows = chunk(*({"id": f"SKU-{i}"} for i in range(40)))
    parts = [rows.iloc[i : i + 4].reset_index(drop=True) for i in range(0, 40, 4)]
    plan = pipeline.ChunkPlan(
        ctx=catalog.CleanContext(currency="JPY", as_of=AS_OF), formats=("meta-csv",), country="JP"
    )
    sinks = pipeline.Sinks({"meta-csv": writer_class("meta-csv")(io.BytesIO(), CHANNEL)})
    done: list[int] = []
    unfinished_at_read = []

    def chunks() -> Iterator[pd.DataFrame]:
        for index, part in enumerate(parts):
            unfinished_at_read.append(index - len(done))  # chunks handed out, not yet back
            yield part

    for result in pipeline.results(chunks(), plan, sinks, jobs=jobs):
        done.append(result.rows)
    assert len(done) == len(parts)
    assert max(unfinished_at_read) == jobs - 1  # the workers busy, the caller reading the next


def test_turns_write_in_index_order_whatever_order_threads_finish() -> None:
    turns, written = pipeline.Turns(), []
    threads = [
        threading.Thread(target=turns.take, args=("out", i, partial(written.append, i))) for i in (3, 1, 0, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert written == [0, 1, 2, 3]


def test_a_failed_chunk_cancels_the_later_ones_only() -> None:
    turns, written = pipeline.Turns(), []
    turns.fail(2)
    with pytest.raises(pipeline.Cancelled):
        turns.take("out", 3, partial(written.append, 3))
    waiting = threading.Thread(target=turns.take, args=("out", 1, partial(written.append, 1)))
    waiting.start()
    turns.take("out", 0, partial(written.append, 0))
    waiting.join(timeout=10)
    assert written == [0, 1]


def test_a_failing_chunk_stops_the_others_and_its_error_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk that fails must not leave later chunks waiting for its turn forever."""
    source = messy_catalog(tmp_path / "messy.csv", 300)
    real = catalog.clean

    def clean(chunk: pd.DataFrame, ctx: catalog.CleanContext) -> tuple[pd.DataFrame, pd.DataFrame]:
        if int(chunk["_row"].iloc[0]) > 100:
            raise PublishError("disk on fire")
        return real(chunk, ctx)

    monkeypatch.setattr(catalog, "clean", clean)
    with pytest.raises(PublishError, match="disk on fire"):
        build.run(job(source, tmp_path / "out", 25, jobs=2), as_of=AS_OF, force=True)
    assert not (tmp_path / "out" / "meta.csv").exists()
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_shared_facts_give_what_each_check_finds_alone(tmp_path: Path) -> None:
    source = messy_catalog(tmp_path / "messy.csv", 200)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False).astype("str")
    frame.insert(0, "_row", range(1, len(frame) + 1))
    clean, _ = catalog.clean(frame, catalog.CleanContext(currency="JPY", as_of=AS_OF))
    clean["_duplicate"] = catalog.IdTracker().duplicates(clean["id"])
    facts = validate.Facts(clean)
    for platform in PLATFORMS.values():
        shared = validate.check(clean, platform, "JP", LABELS, facts=facts)
        alone = validate.check(clean, platform, "JP", LABELS)
        pd.testing.assert_frame_equal(shared, alone)
        assert len(alone)


def test_collector_equals_one_collect_per_rule() -> None:
    frame = pd.DataFrame({"_row": [3, 1, 2, 5], "id": ["c", "a", "b", "e"]})
    frame = frame.astype({"id": "str"})
    rules = [
        (np.array([True, False, True, False]), "title", "missing", issues.ERROR, "title is required"),
        (np.array([False, False, False, False]), "link", "invalid_url", issues.ERROR, ""),
        (np.array([True, True, False, True]), "gtin", "bad", issues.WARNING, pd.Series(["w", "x", "y", "z"])),
    ]
    collector = issues.Collector(frame, "meta")
    for mask, field, reason, severity, detail in rules:
        collector.add(mask, field, reason, severity, detail)
    expected = issues.concat(
        [issues.collect(frame, pd.Series(m), "meta", f, r, s, d) for m, f, r, s, d in rules]
    )
    pd.testing.assert_frame_equal(collector.frame(), expected, check_dtype=False)
    assert list(collector.frame()["row"]) == [1, 2, 3, 3, 5]
    assert issues.Collector(frame, "meta").frame().empty


def test_collector_takes_one_detail_per_issue_as_an_arrow_array() -> None:
    frame = pd.DataFrame({"_row": [1, 2, 3], "id": ["a", "b", "c"]}).astype({"id": "str"})
    collector = issues.Collector(frame, "google")
    collector.add(
        np.array([True, False, True]), "title", "too_long", issues.ERROR, pa.array(["first", "third"])
    )
    collector.add(np.array([False, True, False]), "gtin", "bad", issues.WARNING, "same for all")
    assert list(collector.frame()["detail"]) == ["first", "same for all", "third"]
    with pytest.raises(ValueError, match="1 details for 2 issues"):
        collector.add(np.array([True, True, False]), "title", "too_long", issues.ERROR, pa.array(["one"]))


def test_serial_run_matches_jobs_default_on_one_chunk(tmp_path: Path) -> None:
    source = messy_catalog(tmp_path / "messy.csv", 50)
    build.run(job(source, tmp_path / "a", 1000, jobs=None), as_of=AS_OF, force=True)
    build.run(job(source, tmp_path / "b", 1000, jobs=1), as_of=AS_OF, force=True)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")


def test_lean_memory_uses_jemalloc_inside_and_restores_the_pool() -> None:
    before = pa.default_memory_pool().backend_name
    with pipeline.lean_memory():
        inside = pa.default_memory_pool().backend_name
        with pipeline.lean_memory():  # nested: left as it is
            assert pa.default_memory_pool().backend_name == inside
        assert pa.default_memory_pool().backend_name == inside
    assert pa.default_memory_pool().backend_name == before
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow has no jemalloc")
    assert inside == "jemalloc"


def _platform_reference(
    clean: pd.DataFrame, checked: pd.DataFrame
) -> tuple[dict[str, int], dict[str, int], list[bool]]:
    """The counts as the rules read: a rejected row once, by its first error; every warning."""
    errors = checked[checked["severity"] == issues.ERROR]
    first = errors.drop_duplicates("row")
    warned = checked[checked["severity"] == issues.WARNING]
    keep = ~clean["_row"].isin(errors["row"])
    return (
        dict((first["field"] + ":" + first["reason"]).value_counts()),
        dict((warned["field"] + ":" + warned["reason"]).value_counts()),
        list(keep),
    )


@pytest.mark.parametrize("seed", range(6))
def test_platform_counts_match_the_rules_on_random_issues(seed: int) -> None:
    rng = random.Random(seed)
    n = 40
    clean = pd.DataFrame({"_row": np.arange(101, 101 + n), "id": [f"p{i}" for i in range(n)]})
    found = issues.Collector(clean, "meta")
    for _ in range(rng.randrange(0, 12)):
        mask = np.array([rng.random() < 0.2 for _ in range(n)])
        field, reason = rng.choice(["title", "price", "gtin"]), rng.choice(["missing", "too_long", "invalid"])
        found.add(mask, field, reason, rng.choice([issues.ERROR, issues.WARNING]))
    checked = found.frame()
    cleaning = Counter({"description:html_stripped": 3}) if seed % 2 else Counter()
    counts, keep = pipeline._platform(clean, checked, cleaning, "meta")
    rejected, warned, expected_keep = _platform_reference(clean, checked)
    assert counts.rejected_by_reason == Counter(rejected)
    assert counts.warnings_by_reason == Counter(warned) + cleaning
    assert list(keep) == expected_keep and counts.written == sum(expected_keep)
