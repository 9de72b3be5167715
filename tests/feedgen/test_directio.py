"""Direct-I/O writes hold exactly the bytes written, fall back where the file system refuses, and
report write errors."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
from pathlib import Path

import pytest

from feedgen import directio, publish

O_DIRECT = getattr(os, "O_DIRECT", 0)


def _open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


def _direct_or_skip(path: Path, block: int) -> directio.DirectWriter:
    fd = _open(path)
    writer = directio.DirectWriter.open(fd, block)
    if writer is None:
        os.close(fd)
        pytest.skip(f"{path.parent}: this file system takes no O_DIRECT")
    return writer


def _pieces(seed: int, total: int) -> list[bytes]:
    """Pieces of every size from empty to several blocks, with varied bytes."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < total:
        n = rng.choice([0, 1, 7, 4095, 4096, 4097, rng.randrange(1, 30_000)])
        out.append(rng.randbytes(n))
        size += n
    return out


@pytest.mark.parametrize("seed", range(4))
def test_bytes_written_are_the_bytes_given(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "feed.csv"
    writer = _direct_or_skip(path, block=2 * directio.ALIGN)
    assert fcntl.fcntl(writer.fd, fcntl.F_GETFL) & O_DIRECT
    pieces = _pieces(seed, 100_000 + seed * 4096)  # seed 0..3: the last block partial or whole
    writer.digest = digest = hashlib.sha256()
    for piece in pieces:
        writer.write(memoryview(piece))
    writer.finish()
    assert not fcntl.fcntl(writer.fd, fcntl.F_GETFL) & O_DIRECT  # the tail went through the cache
    os.close(writer.fd)
    assert path.read_bytes() == b"".join(pieces)
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_whole_last_block_and_nothing_at_all(tmp_path: Path) -> None:
    for name, data in (("whole", b"x" * (3 * directio.ALIGN)), ("empty", b"")):
        writer = _direct_or_skip(tmp_path / name, block=directio.ALIGN)
        writer.write(memoryview(data))
        writer.finish()
        os.close(writer.fd)
        assert (tmp_path / name).read_bytes() == data


def test_no_direct_io_from_an_unaligned_position(tmp_path: Path) -> None:
    fd = _open(tmp_path / "f")
    os.write(fd, b"abc")
    assert directio.DirectWriter.open(fd) is None
    assert not fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT
    os.close(fd)


def test_no_direct_io_where_the_system_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "O_DIRECT", raising=False)
    fd = _open(tmp_path / "f")
    assert directio.DirectWriter.open(fd) is None
    os.close(fd)


def test_block_size_must_be_aligned() -> None:
    with pytest.raises(ValueError, match="multiple of 4096"):
        directio.DirectWriter(0, block=1000)


def test_a_write_refused_with_direct_io_goes_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems accept O_DIRECT at open and refuse the write (EINVAL): the same bytes are
    written without it, none twice."""
    real, refused = os.write, []

    def picky(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    path = tmp_path / "feed.xml"
    writer = _direct_or_skip(path, block=directio.ALIGN)
    monkeypatch.setattr(os, "write", picky)
    data = bytes(range(256)) * 100
    writer.write(memoryview(data))
    writer.finish()
    os.close(writer.fd)
    assert refused == [directio.ALIGN]  # once; every later write went through the cache
    assert path.read_bytes() == data


def test_a_failed_background_write_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = _direct_or_skip(tmp_path / "feed.tsv", block=directio.ALIGN)
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):  # at the latest when the file is finished
        writer.write(memoryview(b"y" * (5 * directio.ALIGN)))
        writer.finish()
    os.close(writer.fd)


def test_digest_file_direct_matches_buffered(tmp_path: Path) -> None:
    pieces = _pieces(7, 3 * directio.BLOCK + 12_345)
    files = {}
    for direct in (True, False):
        path = tmp_path / f"feed-{direct}.csv"
        fh = publish.DigestFile(open(path, "wb", buffering=0), direct=direct)  # noqa: SIM115 - closed below
        if direct and fh.direct is None:
            pytest.skip(f"{tmp_path}: this file system takes no O_DIRECT")
        for at in range(0, len(pieces), 5):
            fh.writelines(pieces[at : at + 5])
            so_far = b"".join(pieces[: at + 5])  # the hash so far counts the bytes still staged
            assert fh.size == len(so_far) and fh.hexdigest() == hashlib.sha256(so_far).hexdigest()
        fh.close()
        assert fh.closed and fh.direct is None
        files[direct] = (path.read_bytes(), fh.size, fh.hexdigest())
    data = b"".join(pieces)
    assert files[True] == files[False] == (data, len(data), hashlib.sha256(data).hexdigest())


def test_digest_file_closes_its_file_when_the_last_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fh = publish.DigestFile(open(tmp_path / "f", "wb", buffering=0), direct=True)  # noqa: SIM115 - closed below
    if fh.direct is None:
        pytest.skip(f"{tmp_path}: this file system takes no O_DIRECT")
    fh.write(b"z" * 100)

    def full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        fh.close()
    assert fh.closed
