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
import random
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import (
    FileTransferError,
    PathNotConfined,
    RemoteFileNotFound,
    UnsupportedKernel,
)
from jupyter_interp.files.contents import ContentsTransfer
from jupyter_interp.protocol.files.replies import EntryKind
from jupyter_interp.protocol.result import ExecutionStatus
from jupyter_interp.session import Session

from .servers import RunningServer
from .shared_kernel import KERNEL_DIR, module_backend, module_client, subdir_python  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 120


@pytest.fixture(scope="module")
async def deno(client: Client) -> AsyncIterator[Session]:
    """A Deno kernel in the server root; its file root is a fresh relative directory."""
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session("deno", path="", file_root=f"deno-{uuid.uuid4().hex}")
    yield session
    with anyio.fail_after(_TIMEOUT):
        await session.shutdown()


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
    contents = ContentsTransfer.for_session(python, kernel_dir=KERNEL_DIR, chunk_size=4096)
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
    on_disk = jupyter_server.root_dir / KERNEL_DIR / "files" / area
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
