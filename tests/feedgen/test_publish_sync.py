"""A feed file synced to disk behind the writes holds and hashes exactly what was written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from feedgen import publish


def test_sync_behind_changes_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    pieces = [bytes([i % 251]) * (1000 + i) for i in range(200)]
    fh = publish.DigestFile(open(path, "wb"), sync_every=10_000)  # noqa: SIM115 - closed below
    for piece in pieces:
        fh.write(piece)
        fh.write(memoryview(piece))
    fh.close()
    fh.close()
    data = b"".join(p + p for p in pieces)
    assert fh.closed and path.read_bytes() == data
    assert fh.size == len(data) and fh.hexdigest() == hashlib.sha256(data).hexdigest()


def test_writelines_after_buffered_writes_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    raw = open(path, "wb")  # noqa: SIM115 - closed below; buffered, so "head" waits in its buffer
    fh = publish.DigestFile(raw)
    raw.write(b"head,")
    fh.writelines([b"a", memoryview(b"bc"), b"", b"d" * 5000])
    fh.close()
    assert path.read_bytes() == b"head," + b"abc" + b"d" * 5000
    assert fh.hexdigest() == hashlib.sha256(b"abc" + b"d" * 5000).hexdigest()


def test_writelines_finishes_views_that_writev_writes_in_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = os.writev, []

    def at_most_five_bytes(fd: int, views: list[memoryview]) -> int:
        calls.append(len(views))
        head, left = [], 5
        for view in views:
            head.append(view[:left])
            left -= len(head[-1])
        return real(fd, head)

    monkeypatch.setattr(os, "writev", at_most_five_bytes)
    path = tmp_path / "out"
    fh = publish.DigestFile(open(path, "wb", buffering=0))  # noqa: SIM115 - closed below
    fh.writelines([b"abc", b"", b"defghij", b"k"])
    fh.close()
    assert path.read_bytes() == b"abcdefghijk" and fh.size == 11
    assert len(calls) == 3


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here (macOS)")
def test_synced_pages_leave_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sync behind the writes drops what it synced from the cache: the whole file so far, after
    the data is on disk; the file's bytes stay what was written."""
    calls: list[tuple[str, int, int, int]] = []
    real_sync, real_advise = os.fdatasync, os.posix_fadvise

    def sync(fd: int) -> None:
        calls.append(("sync", fd, 0, 0))
        real_sync(fd)

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append(("advise", fd, offset, length))
        assert advice == os.POSIX_FADV_DONTNEED
        real_advise(fd, offset, length, advice)

    monkeypatch.setattr(os, "fdatasync", sync)
    monkeypatch.setattr(os, "posix_fadvise", advise)
    path = tmp_path / "feed.csv"
    fh = publish.DigestFile(open(path, "wb", buffering=0), sync_every=4096)  # noqa: SIM115 - closed below
    fd = fh.raw.fileno()
    fh.write(b"x" * 5000)
    fh.close()
    assert calls == [("sync", fd, 0, 0), ("advise", fd, 0, 5000)]
    assert path.read_bytes() == b"x" * 5000
