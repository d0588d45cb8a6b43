"""Streaming file transfers on a real ipykernel: downloads into a local file or an async
sink, uploads from an async iterable re-cut into chunks, 50 MB both ways in bounded
memory, and failing or cancelled uploads that leave nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from jupyter_interp.errors import (
    LocalProtocolError,
)
from jupyter_interp.files.transfer import FileTransfer
from jupyter_interp.protocol.files import CHUNK_SIZE
from jupyter_interp.session import Session

from .shared_kernel import module_backend, shared_kernel  # noqa: F401 (fixtures)
from .test_files import (
    _MB,
    _TIMEOUT,
    _leftovers,
    _names,
    _payload,
    _root,
)

pytestmark = pytest.mark.anyio


async def _make_remote_file(session: Session, path: str, size: int) -> bytes:
    """Have the kernel write ``size`` random bytes at ``path`` (uploading is slow)."""
    target = _root(session) / path
    code = (
        "import os\n"
        f"os.makedirs({str(target.parent)!r}, exist_ok=True)\n"
        f"with open({str(target)!r}, 'wb') as f:\n"
        f"    f.write(os.urandom({size}))\n"
        "del f"
    )
    made = await session.execute(code, store_history=False)
    assert made.ok, made.describe()
    return await anyio.Path(target).read_bytes()


async def test_download_to_a_local_path_streams_and_replaces_atomically(
    session: Session, area: str, tmp_path: Path
) -> None:
    destination = tmp_path / "copy.bin"
    destination.write_bytes(b"old contents")
    with anyio.fail_after(_TIMEOUT):
        data = await _make_remote_file(session, f"{area}/big.bin", 2 * CHUNK_SIZE + 12345)
        stat = await session.download_to(f"{area}/big.bin", destination)

    assert stat.size == len(data)
    assert stat.sha256 == hashlib.sha256(data).hexdigest()
    assert destination.read_bytes() == data
    assert _names(tmp_path) == ["copy.bin"]  # no .part left


async def test_download_to_an_async_sink_gets_bounded_chunks(session: Session, area: str) -> None:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        await anyio.lowlevel.checkpoint()
        chunks.append(chunk)

    with anyio.fail_after(_TIMEOUT):
        data = await _make_remote_file(session, f"{area}/chunked.bin", 2 * CHUNK_SIZE + 1)
        stat = await session.download_to(f"{area}/chunked.bin", sink)

    assert stat.size == len(data)
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, 1]
    assert b"".join(chunks) == data


async def test_upload_from_an_async_iterable_is_recut_into_chunks(
    session: Session, area: str
) -> None:
    pieces = [_payload(size, seed=size) for size in (1, 2500, 0, 999, 1000, 3)]
    data = b"".join(pieces)
    small_chunks = FileTransfer(session, chunk_size=1000)

    async def source() -> AsyncIterator[bytes]:
        for piece in pieces:
            await anyio.lowlevel.checkpoint()
            yield piece

    with anyio.fail_after(_TIMEOUT):
        committed = await small_chunks.upload(f"{area}/streamed.bin", source())

    assert committed.size == len(data)
    assert committed.sha256 == hashlib.sha256(data).hexdigest()
    assert (_root(session) / area / "streamed.bin").read_bytes() == data


async def test_fifty_megabytes_stream_both_ways(
    session: Session, area: str, tmp_path: Path
) -> None:
    piece_count, piece_size = 50, _MB
    digest = hashlib.sha256()

    async def source() -> AsyncIterator[bytes]:
        for index in range(piece_count):
            piece = _payload(piece_size, seed=index)
            digest.update(piece)
            yield piece

    destination = tmp_path / "fifty.bin"
    with anyio.fail_after(180):
        committed = await session.upload(f"{area}/fifty.bin", source())
        stat = await session.download_to(f"{area}/fifty.bin", destination)

    assert committed.size == stat.size == piece_count * piece_size
    assert committed.sha256 == stat.sha256 == digest.hexdigest()
    assert hashlib.sha256(destination.read_bytes()).hexdigest() == digest.hexdigest()


async def test_a_failing_upload_source_leaves_nothing_behind(session: Session, area: str) -> None:
    class SourceBroke(Exception):
        pass

    small_chunks = FileTransfer(session, chunk_size=1000)

    async def source() -> AsyncIterator[bytes]:
        yield _payload(2500, seed=9)  # two chunks reach the kernel
        raise SourceBroke

    with anyio.fail_after(_TIMEOUT):
        await session.upload(f"{area}/keep.txt", b"existing")
        with pytest.raises(SourceBroke):
            await small_chunks.upload(f"{area}/keep.txt", source())
        with pytest.raises(SourceBroke):
            await small_chunks.upload(f"{area}/new.txt", source())
        kept = await session.download(f"{area}/keep.txt")

    assert kept == b"existing"  # the target is replaced only by a complete upload
    assert not (_root(session) / area / "new.txt").exists()
    assert _leftovers(_root(session) / area) == []


async def test_cancelling_an_upload_leaves_nothing_behind(session: Session, area: str) -> None:
    small_chunks = FileTransfer(session, chunk_size=1000)
    sent: list[int] = []

    async def endless() -> AsyncGenerator[bytes, None]:
        while True:
            sent.append(1)
            yield b"x" * 1000

    with anyio.fail_after(_TIMEOUT):
        # the caller owns its source: closing it is the caller's job (trio insists)
        async with aclosing(endless()) as source:
            with anyio.move_on_after(1) as scope:
                await small_chunks.upload(f"{area}/cancelled.bin", source)
        after = await session.execute("'usable'")

    assert scope.cancelled_caught
    assert len(sent) > 1  # some chunks went before the cancellation
    assert after.result == "'usable'"
    assert _names(_root(session) / area) == []  # no target, no temp file


async def test_upload_of_a_non_bytes_source_is_refused(session: Session, area: str) -> None:
    with anyio.fail_after(_TIMEOUT), pytest.raises(LocalProtocolError):
        await session.upload(f"{area}/x.txt", "text is not bytes")  # type: ignore[arg-type]

    assert not (_root(session) / area / "x.txt").exists()
