"""File transfer over the Contents API, against a real Jupyter Server and real kernels.

The Deno kernel has no file snippets, so its Session's ``files`` falls back to the
Contents API; the python3 kernel has snippets, so both backends meet on one file root
there. Kernel code reads what the Contents API wrote and writes what it reads, which
proves the path mapping (kernel working directory + file root + path). Kernels are
started with ``path`` so that their working directory is known to be under the server
root. A Kernel Gateway has no Contents API: a Deno session there is refused clearly.

A python3 kernel's downloads take the ``files/`` route when it serves the file the
kernel's stat snippet described. Which route ran is seen from inside the kernel: an
audit hook counts the kernel's opens of a watched file (the stat snippet opens it
once, every read_chunk snippet once more).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import anyio
import pytest

from jupyter_interp._contents_transfer import ContentsTransfer
from jupyter_interp._transfer import FileTransfer
from jupyter_interp.client import Client
from jupyter_interp.errors import (
    ChecksumMismatch,
    FileTransferError,
    PathNotConfined,
    RemoteFileNotFound,
    UnsupportedKernel,
)
from jupyter_interp.protocol.file_replies import EntryKind
from jupyter_interp.protocol.result import ExecutionStatus
from jupyter_interp.session import Session

from .conftest import TEST_CLIENT_SETTINGS
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TIMEOUT = 120
_KERNEL_DIR = f"kdir-{uuid.uuid4().hex[:8]}"  # the python3 kernel's working directory


@pytest.fixture(
    scope="module", params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def client(anyio_backend: str, jupyter_server: RunningServer) -> AsyncIterator[Client]:
    async with Client(jupyter_server.url, token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as c:
        yield c


@pytest.fixture(scope="module")
async def deno(client: Client) -> AsyncIterator[Session]:
    """A Deno kernel in the server root; its file root is a fresh relative directory."""
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session("deno", path="", file_root=f"deno-{uuid.uuid4().hex}")
    yield session
    with anyio.fail_after(_TIMEOUT):
        await session.shutdown()


@pytest.fixture(scope="module")
async def python(client: Client, jupyter_server: RunningServer) -> AsyncIterator[Session]:
    """A python3 kernel started in ``_KERNEL_DIR``, its file root ``files`` below it."""
    (jupyter_server.root_dir / _KERNEL_DIR).mkdir(exist_ok=True)
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session("python3", path=_KERNEL_DIR, file_root="files")
    yield session
    with anyio.fail_after(_TIMEOUT):
        await session.shutdown()


@pytest.fixture
def area() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _on_disk(server: RunningServer, session: Session, kernel_dir: str = "") -> Path:
    return server.root_dir / kernel_dir / session.file_root


def _payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _visible(directory: Path) -> list[str]:
    """Names in ``directory`` but hidden ones (every rename makes .ipynb_checkpoints)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.suffix in (".part", ".old"))


async def _deno_holds(session: Session, path: str, data: bytes) -> bool:
    """Whether the Deno kernel reads ``data`` at ``path`` (relative to its working
    directory). The answer travels as the execute_reply's status, which Deno always
    sends; its iopub output may come after idle and be missed."""
    expected = f"{len(data)} {hashlib.sha256(data).hexdigest()}"
    code = _DENO_CHECK.replace("PATH", repr(path)).replace("EXPECTED", repr(expected))
    result = await session.execute(code)
    return result.status is ExecutionStatus.OK


_DENO_CHECK = """\
const data = await Deno.readFile(PATH);
const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
if (`${data.length} ${hex}` !== EXPECTED) throw new Error(`read ${data.length} ${hex}`);
"""


@pytest.mark.parametrize("size", [0, 1, 9 * 1024 * 1024 + 7], ids=["0B", "1B", "9MB"])
async def test_deno_reads_what_the_contents_api_wrote(
    deno: Session, jupyter_server: RunningServer, area: str, size: int
) -> None:
    data = _payload(size)
    path = f"{area}/nested/blob.bin"
    with anyio.fail_after(_TIMEOUT):
        committed = await deno.upload(path, data)
        holds = await _deno_holds(deno, f"{deno.file_root}/{path}", data)
        downloaded = await deno.download(path)

    digest = hashlib.sha256(data).hexdigest()
    assert (committed.size, committed.sha256) == (size, digest)
    assert holds
    assert downloaded == data
    assert _leftovers(_on_disk(jupyter_server, deno)) == []


async def test_contents_api_reads_what_deno_wrote(deno: Session, area: str) -> None:
    size = 100_003
    code = f"""\
const data = new Uint8Array({size});
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) % 256;
await Deno.mkdir({deno.file_root + "/" + area!r}, {{ recursive: true }});
await Deno.writeFile({f"{deno.file_root}/{area}/från deno.bin"!r}, data);
"""
    received: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        received.append(chunk)

    with anyio.fail_after(_TIMEOUT):
        assert (await deno.execute(code)).status is ExecutionStatus.OK
        files = ContentsTransfer.for_session(deno, chunk_size=4096)
        stat = await files.download_to(f"{area}/från deno.bin", sink)
        listing = await deno.files.list_dir(area)

    expected = bytes((i * 7 + 3) % 256 for i in range(size))
    assert b"".join(received) == expected
    assert len(received) == -(-size // 4096)  # streamed range by range
    assert stat.sha256 == hashlib.sha256(expected).hexdigest()
    assert [(e.name, e.kind, e.size) for e in listing.entries] == [
        ("från deno.bin", EntryKind.FILE, size)
    ]


async def test_chunked_upload_replaces_an_existing_file(
    deno: Session, jupyter_server: RunningServer, area: str
) -> None:
    files = ContentsTransfer.for_session(deno, chunk_size=1000)
    path = f"{area}/replace me.txt"

    async def pieces() -> AsyncGenerator[bytes, None]:
        for index in range(7):
            yield bytes([65 + index]) * 333

    with anyio.fail_after(_TIMEOUT):
        await files.upload(path, b"old contents")
        committed = await files.upload(path, pieces())
        expected = b"".join(bytes([65 + index]) * 333 for index in range(7))
        holds_new = await _deno_holds(deno, f"{deno.file_root}/{path}", expected)
        holds_old = await _deno_holds(deno, f"{deno.file_root}/{path}", b"old contents")

    assert committed.size == len(expected)
    assert holds_new
    assert not holds_old  # the check can fail
    assert _leftovers(_on_disk(jupyter_server, deno)) == []


async def test_a_failing_source_leaves_the_old_file_and_no_temp_file(
    deno: Session, jupyter_server: RunningServer, area: str
) -> None:
    files = ContentsTransfer.for_session(deno, chunk_size=100)
    path = f"{area}/kept.txt"

    async def broken() -> AsyncGenerator[bytes, None]:
        yield b"x" * 250  # two chunks reach the server before the source fails
        raise OSError("the source broke")

    with anyio.fail_after(_TIMEOUT):
        await files.upload(path, b"the old file")
        with pytest.raises(OSError, match="the source broke"):
            await files.upload(path, broken())
        kept = await files.download(path)

    assert kept == b"the old file"
    assert _leftovers(_on_disk(jupyter_server, deno)) == []


async def test_a_cancelled_upload_cleans_up(
    deno: Session, jupyter_server: RunningServer, area: str
) -> None:
    files = ContentsTransfer.for_session(deno, chunk_size=100)
    sent = anyio.Event()

    async def stalls() -> AsyncGenerator[bytes, None]:
        yield b"y" * 300
        sent.set()
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    with anyio.fail_after(_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(files.upload, f"{area}/never.txt", stalls())
            await sent.wait()
            tg.cancel_scope.cancel()
        with pytest.raises(RemoteFileNotFound):
            await files.stat(f"{area}/never.txt")

    assert _leftovers(_on_disk(jupyter_server, deno)) == []


async def test_a_file_changing_during_download_is_refused(
    deno: Session, jupyter_server: RunningServer, area: str
) -> None:
    files = ContentsTransfer.for_session(deno, chunk_size=1000)
    path = f"{area}/moving.bin"
    local = _on_disk(jupyter_server, deno) / path

    async def rewrite(chunk: bytes) -> None:
        local.write_bytes(b"z" * 5000)

    with anyio.fail_after(_TIMEOUT):
        await files.upload(path, _payload(5000))
        with pytest.raises(FileTransferError, match="changed"):
            await files.download_to(path, rewrite)


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "a/../../b", "nul\0.txt"])
async def test_paths_are_confined(deno: Session, path: str) -> None:
    with anyio.fail_after(_TIMEOUT), pytest.raises(PathNotConfined):
        await deno.upload(path, b"x")


async def test_a_symlink_out_of_the_server_root_is_not_downloaded(
    deno: Session, jupyter_server: RunningServer, area: str
) -> None:
    outside = jupyter_server.root_dir.parent / f"outside-{area}.txt"
    outside.write_bytes(b"secret")
    link = _on_disk(jupyter_server, deno) / area / "link.txt"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with anyio.fail_after(_TIMEOUT), pytest.raises(PathNotConfined):
        await deno.download(f"{area}/link.txt")


async def test_errors_match_the_snippet_backend(deno: Session, area: str) -> None:
    with anyio.fail_after(_TIMEOUT):
        await deno.upload(f"{area}/dir/file.txt", b"1")
        with pytest.raises(RemoteFileNotFound):
            await deno.download(f"{area}/missing.txt")
        with pytest.raises(FileTransferError, match="directory"):
            await deno.download(f"{area}/dir")
        directory = await deno.files.stat(f"{area}/dir")  # a stat says what it is
        with pytest.raises(FileTransferError, match="directory"):
            await deno.upload(f"{area}/dir", b"2")
        with pytest.raises(FileTransferError, match="not empty"):
            await deno.files.delete(f"{area}/dir")
        deleted = await deno.files.delete(f"{area}/dir", recursive=True)
        with pytest.raises(RemoteFileNotFound):
            await deno.files.delete(f"{area}/dir")

    assert directory.kind is EntryKind.DIRECTORY
    assert deleted.kind is EntryKind.DIRECTORY


async def test_both_backends_share_the_python_kernels_file_root(
    python: Session, jupyter_server: RunningServer, area: str, tmp_path: Path
) -> None:
    contents = ContentsTransfer.for_session(python, kernel_dir=_KERNEL_DIR, chunk_size=4096)
    data = _payload(10_000)
    with anyio.fail_after(_TIMEOUT):
        await contents.upload(f"{area}/via-contents.bin", data)
        read = await python.execute(
            "import hashlib; "
            f"hashlib.sha256(open('files/{area}/via-contents.bin', 'rb').read()).hexdigest()"
        )
        by_snippets = await python.download(f"{area}/via-contents.bin")
        await python.upload(f"{area}/via-snippets.bin", data[::-1])
        by_contents = await contents.download(f"{area}/via-snippets.bin")
        local = tmp_path / "local.bin"
        await contents.download_file(f"{area}/via-contents.bin", local)

    assert read.result == repr(hashlib.sha256(data).hexdigest())
    assert by_snippets == data
    assert by_contents == data[::-1]
    assert _visible(tmp_path) == ["local.bin"]
    assert local.read_bytes() == data
    on_disk = jupyter_server.root_dir / _KERNEL_DIR / "files" / area
    assert _visible(on_disk) == ["via-contents.bin", "via-snippets.bin"]


async def test_a_gateway_without_contents_api_refuses_deno_clearly(
    kernel_gateway: RunningServer, anyio_backend: str
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with (
            Client(kernel_gateway.url, token=kernel_gateway.token) as client,
            client.session("deno") as session,
        ):
            with pytest.raises(UnsupportedKernel) as caught:
                await session.upload("x.txt", b"x")
            with pytest.raises(UnsupportedKernel):  # the probe's answer is kept
                await session.download("x.txt")

    message = str(caught.value)
    assert "'deno'" in message
    assert "no Contents API" in message


# -- snippet kernels' downloads over the server's files/ route ------------------------

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
    """The kernel runs in ``_KERNEL_DIR``: ``files/`` is asked for the wrong path."""
    name = f"ji-watch-{area}.bin"
    path = f"{area}/{name}"
    data = _payload(3 * _MB)
    real = jupyter_server.root_dir / _KERNEL_DIR / watched_python.file_root / path
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
            real = jupyter_server.root_dir / _KERNEL_DIR / watched_python.file_root / area / name
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
