"""One chunk's whole way from raw rows to feed rows in the files, serially or on every core.

``process`` takes a raw chunk through cleaning (once), the checks of each platform and the
serialisation of every format, and appends the rows to the feed files itself, in input order: a
worker thread that finishes chunk *n* writes it once chunk *n - 1* is written (``Turns``). So no
chunk's rows wait in memory or on disk for another thread to copy them. ``results`` runs the chunks
on worker threads, at most ``jobs`` at a time while the caller reads the next; most of the work is in
Arrow and numpy kernels, which let go of the GIL. Only the id check runs in the caller, because a
duplicate may sit in any earlier chunk.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedgen import catalog, issues, text, validate
from feedgen.errors import FeedgenError
from feedgen.platforms import PLATFORMS
from feedgen.sources import ROW
from feedgen.writers import platform_of, writer_class
from feedgen.writers.base import FeedWriter

#: how long jemalloc keeps freed pages before handing them back (see ``lean_memory``)
_DECAY_MS = 1000


class Cancelled(FeedgenError):
    """A chunk stopped because another one failed (that one's error is the one reported)."""


class Turns:
    """Each output written chunk after chunk in input order, by whichever thread made the chunk's rows."""

    def __init__(self) -> None:
        """No chunk written yet."""
        self._changed = threading.Condition()
        self._next: Counter[str] = Counter()
        self._stop_from: int | None = None  # chunks from this index on are cancelled

    def take(self, output: str, index: int, write: Callable[[], None]) -> None:
        """Wait until chunk ``index - 1`` is written to ``output``, then run ``write``."""
        with self._changed:
            self._changed.wait_for(lambda: self._next[output] == index or self._stopped(index))
            if self._stopped(index):
                raise Cancelled(f"chunk {index}: stopped, as an earlier step failed")
        try:
            write()
        except BaseException:
            self.fail(index)
            raise
        with self._changed:
            self._next[output] += 1
            self._changed.notify_all()

    def fail(self, index: int = 0) -> None:
        """Cancel chunk ``index`` and every later one (the earlier ones still get their turns)."""
        with self._changed:
            self._stop_from = index if self._stop_from is None else min(index, self._stop_from)
            self._changed.notify_all()

    def _stopped(self, index: int) -> bool:
        return self._stop_from is not None and index >= self._stop_from


@dataclass
class Sinks:
    """Where the chunks' rows go: each format's writer and the rejects.csv file (None: no rejects)."""

    writers: dict[str, FeedWriter]
    rejects: IO[str] | None = None
    turns: Turns = field(default_factory=Turns)
    #: the buffers the formats' rows are made in, each worker thread's reused chunk after chunk
    spares: text.SpareBuffers = field(default_factory=text.SpareBuffers)


@dataclass(frozen=True)
class ChunkPlan:
    """What every chunk is turned into."""

    ctx: catalog.CleanContext
    formats: tuple[str, ...]
    country: str
    labels: dict[str, str] = field(default_factory=dict)
    #: serialise each format's rows (False when only validating)
    encode: bool = True
    #: serialise the chunk's issues as rejects.csv rows
    rejects: bool = True

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
    """One chunk, done and written: its counts and label values."""

    rows: int
    platforms: dict[str, PlatformCounts]
    issues: int
    label_values: dict[str, set[str]]


@contextmanager
def lean_memory() -> Iterator[None]:
    """Arrow's jemalloc pool for the duration, where this pyarrow has one: with worker threads it
    holds on to less freed memory than the default pool (mimalloc), so the peak stays lower. Its
    freed pages go back to the system after a second (a setting of the jemalloc pool, left so): a
    chunk's pages then serve the next chunks instead of being faulted in afresh. At 500,000 products
    with 25,000-row chunks, 1 s against 100 ms: 8.48 s instead of 9.0-9.4 s, about 35 MB more peak.
    Allocations of 8 MB and more it never keeps; the largest buffers come from ``text.heap_buffer``."""
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(_DECAY_MS)
    except NotImplementedError:  # a pyarrow built without jemalloc
        yield
        return
    previous = pa.default_memory_pool()
    if previous.backend_name == pool.backend_name:  # already (another build on another thread, say)
        yield
        return
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def duplicates(tracker: catalog.IdTracker, chunk: pd.DataFrame) -> np.ndarray:
    """The chunk's duplicate-id flags (ids cleaned as ``catalog.clean`` cleans them), in input order."""
    return tracker.duplicates(catalog.clean_ids(chunk["id"])).to_numpy(dtype=bool)


def process(
    chunk: pd.DataFrame, duplicate: np.ndarray, plan: ChunkPlan, sinks: Sinks, index: int = 0
) -> ChunkResult:
    """Clean, check and serialise one raw chunk, the ``index``-th, and write its rows into ``sinks``
    in their turn; ``duplicate`` flags the ids seen before."""
    try:
        return _process(chunk, duplicate, plan, sinks, index)
    except BaseException:
        sinks.turns.fail(index)  # the later chunks must not wait for this one's turn
        raise


def _process(
    chunk: pd.DataFrame, duplicate: np.ndarray, plan: ChunkPlan, sinks: Sinks, index: int
) -> ChunkResult:
    clean, found = catalog.clean(chunk, plan.ctx)
    found_counts = _count_at(_keys(found), np.arange(len(found)))
    clean["_duplicate"] = pd.Series(duplicate, index=clean.index)
    facts = validate.Facts(clean)
    counts: dict[str, PlatformCounts] = {}
    chunk_issues = [found]
    shared: validate.Shared = {}  # derived columns one platform makes that another can reuse
    for platform in plan.platforms:
        checked = validate.check(clean, PLATFORMS[platform], plan.country, plan.labels, facts=facts)
        chunk_issues.append(checked)
        counts[platform], keep = _platform(clean, checked, found_counts, platform)
        if not plan.encode:
            continue
        formats = [fmt for fmt in plan.formats if platform_of(fmt) == platform and fmt in sinks.writers]
        if not formats:
            continue
        columns = validate.columns(clean, PLATFORMS[platform], plan.labels, shared)
        table = writer_class(formats[0]).table(columns)
        for fmt in formats:
            pieces, count = writer_class(fmt).encode_table(table, keep, sinks.spares)
            sinks.turns.take(fmt, index, partial(sinks.writers[fmt].write_encoded, pieces, count))
            del pieces  # one format's bytes in memory at a time
    merged = issues.concat(chunk_issues)
    rejects = sinks.rejects
    if plan.rejects and rejects is not None:
        sinks.turns.take("rejects.csv", index, partial(_write_text, rejects, issues.csv_text(merged)))
    return ChunkResult(
        rows=len(chunk),
        platforms=counts,
        issues=len(merged),
        label_values={label: set(clean[column].unique()) for label, column in plan.labels.items()},
    )


def _write_text(fh: IO[str], text: str) -> None:
    fh.write(text)


def _platform(
    clean: pd.DataFrame, checked: pd.DataFrame, found: Counter[str], platform: str
) -> tuple[PlatformCounts, np.ndarray]:
    """One platform's counts for the chunk and which rows it keeps (those without errors);
    ``found`` counts the warnings of cleaning, which every platform reports. A rejected row counts
    once, by its first error; ``checked`` is in row order, as ``validate.check`` returns it."""
    severity = text.to_arrow(checked["severity"])
    is_error = text.flags(pc.equal(severity, issues.ERROR))
    is_warning = text.flags(pc.equal(severity, issues.WARNING))
    rows = checked["row"].to_numpy()
    errors = np.flatnonzero(is_error)
    first = errors[np.r_[True, rows[errors][1:] != rows[errors][:-1]]] if len(errors) else errors
    keys = _keys(checked)
    keep = ~np.isin(clean[ROW].to_numpy(), rows[errors])
    counts = PlatformCounts(
        written=int(np.count_nonzero(keep)),
        rejected_by_reason=_count_at(keys, first),
        warnings_by_reason=_count_at(keys, np.flatnonzero(is_warning)) + found,
    )
    return counts, keep


def _keys(found: pd.DataFrame) -> pa.Array | pa.ChunkedArray:
    """``field:reason`` of each issue, the key its count is reported under."""
    field, reason = (text.to_arrow(found[name]).cast(pa.large_string()) for name in ("field", "reason"))
    return pc.binary_join_element_wise(field, reason, pa.scalar(":", pa.large_string()))


def _count_at(keys: pa.Array | pa.ChunkedArray, positions: np.ndarray) -> Counter[str]:
    """How often each of ``keys`` at ``positions`` occurs, counted by Arrow (no Python object per key)."""
    if not len(positions):
        return Counter()
    tally = pc.value_counts(keys.take(pa.array(positions)))
    return Counter(
        dict(zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True))
    )


def results(
    chunks: Iterable[pd.DataFrame], plan: ChunkPlan, sinks: Sinks, jobs: int | None = None
) -> Iterator[ChunkResult]:
    """Every chunk processed and written, results in input order; with ``jobs`` > 1 (default: one per
    core), on that many worker threads."""
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    tracker = catalog.IdTracker()
    if workers <= 1:
        for index, chunk in enumerate(chunks):
            yield process(chunk, duplicates(tracker, chunk), plan, sinks, index)
        return
    pending: deque[Future[ChunkResult]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feed-chunk") as pool:
        try:
            for index, chunk in enumerate(chunks):
                pending.append(pool.submit(process, chunk, duplicates(tracker, chunk), plan, sinks, index))
                del chunk
                # bounded: a chunk per worker, and the one being read; one more would only add its
                # memory, the reading thread being busy meanwhile
                if len(pending) >= workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BaseException:  # a chunk failed, reading failed, or the caller stopped early
            sinks.turns.fail(0)
            for future in pending:
                future.cancel()
            raise
