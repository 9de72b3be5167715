"""One chunk's whole way from raw rows to serialised feed rows, serially or on every core.

``process`` is a pure function of a raw chunk: clean it once, check it once per platform, and
serialise each format's rows and the chunk's rejects, so that a worker process can do it all and
hand back bytes and counts. ``results`` runs it chunk by chunk in input order, in worker processes
when there is more than one chunk and more than one job, with at most ``jobs + 1`` chunks in flight.
Only the id check runs in the caller, because a duplicate may sit in any earlier chunk.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feedgen import catalog, issues, validate
from feedgen.platforms import PLATFORMS
from feedgen.sources import ROW
from feedgen.writers import platform_of, writer_class
from feedgen.writers.base import Pieces, Spilled, spill


@dataclass(frozen=True)
class ChunkPlan:
    """What every chunk is turned into (small and picklable: it travels to the workers)."""

    ctx: catalog.CleanContext
    formats: tuple[str, ...]
    country: str
    labels: dict[str, str] = field(default_factory=dict)
    #: serialise each format's rows (False when only validating)
    encode: bool = True
    #: serialise the chunk's issues as rejects.csv rows
    rejects: bool = True
    #: a folder for each format's serialised rows (so they never wait in memory); None keeps them there
    spill: str | None = None

    @property
    def platforms(self) -> list[str]:
        """The platforms whose rules the formats need, each once."""
        return sorted({platform_of(fmt) for fmt in self.formats})


@dataclass
class PlatformCounts:
    """One platform's outcome for one chunk."""

    written: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    warnings_by_reason: Counter[str] = field(default_factory=Counter)


@dataclass
class ChunkResult:
    """One chunk, done: counts, the rows of every format as bytes, rejects.csv text, label values."""

    rows: int
    platforms: dict[str, PlatformCounts]
    #: per format: its rows serialised (in memory, or spilled to a file) and how many there are
    encoded: dict[str, tuple[Pieces | Spilled, int]]
    issues: int
    rejects_text: str
    label_values: dict[str, set[str]]


def duplicates(tracker: catalog.IdTracker, chunk: pd.DataFrame) -> np.ndarray:
    """The chunk's duplicate-id flags (ids cleaned as ``catalog.clean`` cleans them), in input order."""
    return tracker.duplicates(catalog.clean_ids(chunk["id"])).to_numpy(dtype=bool)


def process(chunk: pd.DataFrame, duplicate: np.ndarray, plan: ChunkPlan) -> ChunkResult:
    """Clean, check and serialise one raw chunk; ``duplicate`` flags the ids seen before."""
    clean, found = catalog.clean(chunk, plan.ctx)
    clean["_duplicate"] = pd.Series(duplicate, index=clean.index)
    facts = validate.Facts(clean)
    counts: dict[str, PlatformCounts] = {}
    encoded: dict[str, tuple[Pieces | Spilled, int]] = {}
    chunk_issues = [found]
    for platform in plan.platforms:
        checked = validate.check(clean, PLATFORMS[platform], plan.country, plan.labels, facts=facts)
        chunk_issues.append(checked)
        counts[platform], keep = _platform(clean, checked, found, platform)
        if not plan.encode:
            continue
        rows = validate.frame(clean, PLATFORMS[platform], plan.labels)
        for fmt in plan.formats:
            if platform_of(fmt) == platform:
                pieces, count = writer_class(fmt).encode(rows, keep)
                encoded[fmt] = (spill(pieces, plan.spill) if plan.spill else pieces), count
                del pieces  # one format's bytes in memory at a time
    merged = issues.concat(chunk_issues)
    return ChunkResult(
        rows=len(chunk),
        platforms=counts,
        encoded=encoded,
        issues=len(merged),
        rejects_text=issues.csv_text(merged) if plan.rejects else "",
        label_values={label: set(clean[column].unique()) for label, column in plan.labels.items()},
    )


def _platform(
    clean: pd.DataFrame, checked: pd.DataFrame, found: pd.DataFrame, platform: str
) -> tuple[PlatformCounts, np.ndarray]:
    """One platform's counts for the chunk and which rows it keeps (those without errors)."""
    is_error = (checked["severity"] == issues.ERROR).to_numpy(dtype=bool)
    errors = checked[is_error]
    first = errors.drop_duplicates("row")
    warned = pd.concat(
        [checked[~is_error & (checked["severity"] == issues.WARNING).to_numpy(dtype=bool)], found]
    )
    keep = ~clean[ROW].isin(errors["row"]).to_numpy(dtype=bool)
    counts = PlatformCounts(
        written=int(keep.sum()),
        rejected_by_reason=Counter(first["field"] + ":" + first["reason"]),
        warnings_by_reason=Counter(warned["field"] + ":" + warned["reason"]),
    )
    return counts, keep


def results(
    chunks: Iterable[pd.DataFrame], plan: ChunkPlan, jobs: int | None = None
) -> Iterator[ChunkResult]:
    """Every chunk processed, in input order; with ``jobs`` > 1 (default: every core), in worker processes.

    A catalog of one chunk runs here, so it never pays for starting the workers.
    """
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    tracker = catalog.IdTracker()
    source = iter(chunks)
    first = next(source, None)
    second = next(source, None) if first is not None else None
    if first is None:
        return
    if workers <= 1 or second is None:
        for chunk in _chain(first, second, source):
            yield process(chunk, duplicates(tracker, chunk), plan)
        return
    pending: deque[Future[ChunkResult]] = deque()
    # forkserver, not fork: the reading process runs Arrow's thread pools, which a fork would copy mid-use
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # the workers take about half a second to start: hand them the next chunks, and do the first
        # one here meanwhile instead of waiting
        head_duplicates = duplicates(tracker, first)
        rest = itertools.chain([second], source)
        del second
        for chunk in itertools.islice(rest, workers):
            pending.append(pool.submit(process, chunk, duplicates(tracker, chunk), plan))
        del chunk
        yield process(first, head_duplicates, plan)
        del first
        for chunk in rest:
            pending.append(pool.submit(process, chunk, duplicates(tracker, chunk), plan))
            del chunk
            if len(pending) > workers:  # bounded: at most workers + 1 chunks in flight
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _chain(
    first: pd.DataFrame, second: pd.DataFrame | None, rest: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    yield first
    if second is not None:
        yield second
        yield from rest
