"""Snippet kernels' downloads over the server's ``files/`` route (``files.direct``): taken
when the server serves the file the kernel's stat described, verified the same way, and
given up for chunk snippets whenever the route cannot be trusted.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import (
    ChecksumMismatch,
    PathNotConfined,
)
from jupyter_interp.files.transfer import FileTransfer
from jupyter_interp.protocol.result import ExecutionStatus
from jupyter_interp.session import Session

from .servers import RunningServer
from .shared_kernel import KERNEL_DIR, module_backend, module_client, subdir_python  # noqa: F401 (fixtures)
from .test_contents_transfer import _TIMEOUT, _payload

pytestmark = pytest.mark.anyio


_MB = 1024 * 1024
#: Kernel code that records every file the kernel opens whose path contains ``ji-watch``:
#: the stat snippet opens a file once, each read_chunk snippet once more.
_WATCH_OPENS = """\
import sys
_ji_opens = []
sys.addaudithook(lambda event, args: event == "open" and isinstance(args[0], str)
                 and "ji-watch" in args[0] and _ji_opens.append(args[0]))
"""


async def _watched(session: Session) -> Session:
    assert (await session.execute(_WATCH_OPENS)).status is ExecutionStatus.OK
    return session


async def _opens(session: Session, name: str) -> int:
    """How often the kernel opened a file whose path ends with ``name``."""
    result = await session.execute(f"sum(1 for p in _ji_opens if p.endswith({name!r}))")
    assert result.result is not None
    return int(result.result)


@pytest.fixture(scope="module")
async def rooted(client: Client) -> AsyncIterator[Session]:
    """A python3 kernel in the server root, its file root two directories below it."""
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session(
            "python3", path="", file_root=f"auto-{uuid.uuid4().hex[:8]}/sub"
        )
        yield await _watched(session)
    with anyio.fail_after(_TIMEOUT):
        await session.shutdown()


@pytest.fixture(scope="module")
async def watched_python(python: Session) -> Session:
    with anyio.fail_after(_TIMEOUT):
        return await _watched(python)


def _snippets_only(session: Session) -> FileTransfer:
    return FileTransfer(session, chunk_size=_MB, direct_download_min=1 << 62)


async def test_downloads_take_the_files_route_in_a_subdirectory_file_root(
    rooted: Session, jupyter_server: RunningServer, area: str, tmp_path: Path
) -> None:
    name = f"ji-watch-{area}.bin"
    data = _payload(9 * 1024 * 1024 + 7)  # three default chunks
    received: list[int] = []

    async def sink(chunk: bytes) -> None:
        received.append(len(chunk))

    with anyio.fail_after(_TIMEOUT):
        await rooted.upload(f"{area}/{name}", data)
        before = await _opens(rooted, name)
        downloaded = await rooted.download(f"{area}/{name}")
        await rooted.download_to(f"{area}/{name}", tmp_path / "copy.bin")
        await rooted.download_to(f"{area}/{name}", sink)
        direct = await _opens(rooted, name)
        by_snippets = await _snippets_only(rooted).download(f"{area}/{name}")
        snippets = await _opens(rooted, name)

    assert downloaded == data
    assert (tmp_path / "copy.bin").read_bytes() == data
    assert received == [4 * _MB, 4 * _MB, _MB + 7]
    assert direct - before == 3  # one stat snippet per download, no read_chunk
    assert by_snippets == data
    assert snippets - direct == 1 + 10  # the observable can see read_chunk snippets
    assert (jupyter_server.root_dir / rooted.file_root / area / name).read_bytes() == data


async def test_files_the_route_cannot_serve_do_not_turn_it_off(
    rooted: Session, jupyter_server: RunningServer, area: str
) -> None:
    """A hidden path is not tried; a symlink (the server stats the link) falls back
    once the route has worked, without turning it off."""
    name, link = f"ji-watch-{area}.bin", f"ji-watch-{area}-link.bin"
    data = _payload(2 * _MB + 1)
    files = FileTransfer(rooted, chunk_size=_MB)
    (jupyter_server.root_dir / rooted.file_root / area).mkdir(parents=True)
    (jupyter_server.root_dir / rooted.file_root / area / link).symlink_to(name)

    async def opens(path: str, watched: str) -> int:
        before = await _opens(rooted, watched)
        assert await files.download(path) == data
        return await _opens(rooted, watched) - before

    with anyio.fail_after(_TIMEOUT):
        await rooted.upload(f"{area}/.hidden/{name}", data)
        await rooted.upload(f"{area}/{name}", data)
        counts = [
            await opens(f"{area}/.hidden/{name}", f".hidden/{name}"),
            await opens(f"{area}/{name}", f"{area}/{name}"),
            await opens(f"{area}/{link}", link),
            await opens(f"{area}/{name}", f"{area}/{name}"),
        ]

    assert counts == [4, 1, 4, 1]  # stat + 3 read_chunk snippets, or the stat alone


async def test_a_symlink_out_of_the_file_root_is_refused_as_by_the_snippets(
    rooted: Session, jupyter_server: RunningServer, area: str
) -> None:
    # inside the server root, so files/ alone would serve it; the file root's stat refuses
    outside = jupyter_server.root_dir / f"ji-watch-outside-{area}.txt"
    outside.write_bytes(b"secret" * 1000)
    link = jupyter_server.root_dir / rooted.file_root / area / "link.txt"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)

    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(PathNotConfined) as auto:
            await rooted.download(f"{area}/link.txt")
        with pytest.raises(PathNotConfined) as snippets:
            await _snippets_only(rooted).download(f"{area}/link.txt")
        opened = await _opens(rooted, outside.name)

    assert str(auto.value) == str(snippets.value)
    assert opened == 0


async def test_a_kernel_outside_the_server_root_falls_back_and_stays_there(
    watched_python: Session, jupyter_server: RunningServer, area: str
) -> None:
    """The kernel runs in ``KERNEL_DIR``: ``files/`` is asked for the wrong path."""
    name = f"ji-watch-{area}.bin"
    path = f"{area}/{name}"
    data = _payload(3 * _MB)
    real = jupyter_server.root_dir / KERNEL_DIR / watched_python.file_root / path
    wrong = jupyter_server.root_dir / watched_python.file_root / path
    missing, decoyed, fresh = (FileTransfer(watched_python, chunk_size=_MB) for _ in range(3))
    downloads: list[bytes] = []

    async def download(files: FileTransfer) -> int:
        before = await _opens(watched_python, name)
        downloads.append(await files.download(path))
        return await _opens(watched_python, name) - before

    with anyio.fail_after(_TIMEOUT):
        await watched_python.upload(path, data)
        opens = [await download(missing)]  # files/ answers 404
        wrong.parent.mkdir(parents=True)
        wrong.write_bytes(_payload(3 * _MB + 1)[1:])  # same size, other bytes and mtime
        opens.append(await download(decoyed))
        shutil.copy2(real, wrong)  # files/ now serves the same bytes and mtime, but
        opens.append(await download(decoyed))  # the route is off for this transfer
        opens.append(await download(fresh))  # (a fresh one takes it)

    assert downloads == [data] * 4
    assert opens == [4, 4, 4, 1]  # stat + 3 read_chunk snippets, or the stat alone


async def test_a_lookalike_file_is_caught_by_its_sha256(
    watched_python: Session, jupyter_server: RunningServer, area: str
) -> None:
    """Same size and mtime at the wrongly mapped path, other bytes: the sha256 shows it.
    A one-range file falls back unseen; a longer one has reached the sink but its last
    range and raises ChecksumMismatch."""
    small, large = f"ji-watch-{area}-s.bin", f"ji-watch-{area}-l.bin"
    received: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        received.append(chunk)

    with anyio.fail_after(_TIMEOUT):
        for name, size in ((small, _MB), (large, 3 * _MB)):
            await watched_python.upload(f"{area}/{name}", _payload(size))
            real = jupyter_server.root_dir / KERNEL_DIR / watched_python.file_root / area / name
            wrong = jupyter_server.root_dir / watched_python.file_root / area / name
            wrong.parent.mkdir(parents=True, exist_ok=True)
            wrong.write_bytes(bytes(size))
            os.utime(wrong, ns=(real.stat().st_atime_ns, real.stat().st_mtime_ns))
        small_files = FileTransfer(watched_python, chunk_size=_MB)
        before = await _opens(watched_python, small)
        assert await small_files.download(f"{area}/{small}") == _payload(_MB)
        small_opens = await _opens(watched_python, small) - before
        large_files = FileTransfer(watched_python, chunk_size=_MB)
        with pytest.raises(ChecksumMismatch):
            await large_files.download_to(f"{area}/{large}", sink)
        assert await large_files.download(f"{area}/{large}") == _payload(3 * _MB)

    assert small_opens == 2  # stat, then one read_chunk: the fallback
    assert received == [bytes(_MB)] * 2  # the lookalike's first ranges, not the last


async def test_a_gateway_without_contents_api_keeps_the_snippets(
    kernel_gateway: RunningServer, anyio_backend: str, area: str
) -> None:
    name = f"ji-watch-{area}.bin"
    data = _payload(2 * _MB + 5)
    with anyio.fail_after(_TIMEOUT):
        async with (
            Client(kernel_gateway.url, token=kernel_gateway.token) as client,
            client.session("python3") as session,
        ):
            await _watched(session)
            files = FileTransfer(session, chunk_size=_MB)
            await files.upload(name, data)
            before = await _opens(session, name)
            downloaded = await files.download(name)
            again = await files.download(name)
            opened = await _opens(session, name) - before

    assert downloaded == again == data
    assert opened == 2 * (1 + 3)  # stat + three chunks, twice: no other route
