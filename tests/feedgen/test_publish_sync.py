"""A feed file synced to disk behind the writes holds and hashes exactly what was written."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
