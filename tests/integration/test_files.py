"""File transfer through a real ipykernel: round trips, streaming, confinement, errors.

The kernel runs on this machine, so its file root (``shared_session.file_root``, one
fresh local directory per module and backend) can be checked directly on disk. Each
test works under a directory of its own inside that root.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import anyio
import anyio.lowlevel
import attrs
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import (
    FileTransferError,
    PathNotConfined,
    RemoteFileNotFound,
)
from jupyter_interp.files.transfer import FileTransfer
from jupyter_interp.protocol.files import CHUNK_SIZE
from jupyter_interp.protocol.files.replies import EntryKind
from jupyter_interp.protocol.messages import Message
from jupyter_interp.session import Session

from .conftest import TEST_CLIENT_SETTINGS, ServerUnderTest
from .shared_kernel import module_backend, shared_kernel  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 60
_MB = 1024 * 1024


def _root(session: Session) -> Path:
    return Path(session.file_root)


def _payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".part"))


@pytest.mark.parametrize("size", [0, 1, 5 * _MB], ids=["0B", "1B", "5MB"])
async def test_upload_download_round_trip(session: Session, area: str, size: int) -> None:
    data = _payload(size, seed=size)
    path = f"{area}/blob-{size}.bin"
    with anyio.fail_after(_TIMEOUT):
        before = await session.execute("'files do not touch the count'")
        committed = await session.upload(path, data)
        downloaded = await session.download(path)
        after = await session.execute("'files do not touch the count'")

    assert committed.size == size
    assert committed.sha256 == hashlib.sha256(data).hexdigest()
    assert downloaded == data
    assert (_root(session) / path).read_bytes() == data
    assert _leftovers(_root(session) / area) == []
    assert before.execution_count is not None
    assert after.execution_count == before.execution_count + 1  # transfers use no history


async def test_every_byte_value_survives(session: Session, area: str) -> None:
    data = bytes(range(256)) * 513  # not a multiple of anything base64 or chunking likes
    path = f"{area}/all-bytes.bin"
    with anyio.fail_after(_TIMEOUT):
        await session.upload(path, data)
        assert await session.download(path) == data

    assert (_root(session) / path).read_bytes() == data


@pytest.mark.parametrize(
    "name",
    ["with space.txt", "dir with space/naïve café.txt", "文件/数据 🌍.bin", "emoji-only-🚀"],
)
async def test_names_with_spaces_and_unicode(session: Session, area: str, name: str) -> None:
    data = name.encode("utf-8") * 3
    path = f"{area}/{name}"
    with anyio.fail_after(_TIMEOUT):
        await session.upload(path, data)
        downloaded = await session.download(path)
        stat = await session.files.stat(path)

    assert downloaded == data
    assert (_root(session) / area / name).read_bytes() == data
    assert stat.size == len(data)


async def test_overwrite_replaces_the_file(session: Session, area: str) -> None:
    path = f"{area}/overwritten.txt"
    with anyio.fail_after(_TIMEOUT):
        await session.upload(path, b"a much longer first version")
        await session.upload(path, b"short")
        assert await session.download(path) == b"short"


@pytest.mark.parametrize(
    "bad",
    ["/etc/passwd", "../escaped.txt", "inner/../../escaped.txt", "nul\x00byte.txt", "back\\slash"],
    ids=["absolute", "dotdot", "nested-dotdot", "nul", "backslash"],
)
async def test_path_escapes_are_rejected(session: Session, bad: str, tmp_path: Path) -> None:
    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(PathNotConfined):
            await session.upload(bad, b"never written")
        with pytest.raises(PathNotConfined):
            await session.download(bad)
        with pytest.raises(PathNotConfined):
            await session.download_to(bad, tmp_path / "local.bin")
        with pytest.raises(PathNotConfined):
            await session.files.stat(bad)
        with pytest.raises(PathNotConfined):
            await session.files.delete(bad)
        still = await session.execute("'usable'")

    assert still.result == "'usable'"
    assert not (_root(session).parent / "escaped.txt").exists()
    assert _names(tmp_path) == []


async def test_symlinks_inside_the_root_cannot_lead_out(
    session: Session, area: str, tmp_path: Path
) -> None:
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    secret = outside_dir / "secret.txt"
    secret.write_bytes(b"do not read me")
    inside = _root(session) / area
    setup = (
        "import os\n"
        f"os.makedirs({str(inside)!r})\n"
        f"os.symlink({str(outside_dir)!r}, {str(inside / 'to-dir')!r})\n"
        f"os.symlink({str(secret)!r}, {str(inside / 'to-file')!r})\n"
    )
    with anyio.fail_after(_TIMEOUT):
        created = await session.execute(setup)
        assert created.ok, created.describe()
        with pytest.raises(PathNotConfined):
            await session.download(f"{area}/to-file")
        with pytest.raises(PathNotConfined):
            await session.download(f"{area}/to-dir/secret.txt")
        with pytest.raises(PathNotConfined):
            await session.upload(f"{area}/to-dir/planted.txt", b"planted")
        with pytest.raises(PathNotConfined):
            await session.upload(f"{area}/to-file", b"overwritten")
        with pytest.raises(PathNotConfined):
            await session.files.stat(f"{area}/to-file")
        listing = await session.files.list_dir(area)
        deleted = await session.files.delete(f"{area}/to-file")

    assert not (outside_dir / "planted.txt").exists()
    assert secret.read_bytes() == b"do not read me"
    kinds = {entry.name: entry.kind for entry in listing.entries}
    assert kinds == {"to-dir": EntryKind.SYMLINK, "to-file": EntryKind.SYMLINK}
    assert deleted.kind is EntryKind.SYMLINK  # the link went, not what it pointed to
    assert not (inside / "to-file").is_symlink()
    assert secret.exists()


async def test_missing_file_raises_remote_file_not_found(
    session: Session, area: str, tmp_path: Path
) -> None:
    destination = tmp_path / "never.bin"
    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(RemoteFileNotFound) as caught:
            await session.download(f"{area}/missing.bin")
        with pytest.raises(RemoteFileNotFound):
            await session.download_to(f"{area}/missing.bin", destination)
        with pytest.raises(RemoteFileNotFound):
            await session.files.stat(f"{area}/missing.bin")

    assert isinstance(caught.value, FileNotFoundError)
    assert "missing.bin" in str(caught.value)
    assert _names(tmp_path) == []  # no partial local file either


async def test_download_of_a_directory_is_refused(session: Session, area: str) -> None:
    with anyio.fail_after(_TIMEOUT):
        await session.upload(f"{area}/sub/file.txt", b"x")
        with pytest.raises(FileTransferError) as caught:
            await session.download(f"{area}/sub")

    assert not isinstance(caught.value, RemoteFileNotFound)
    assert "directory" in str(caught.value)


async def test_list_stat_and_delete(session: Session, area: str) -> None:
    with anyio.fail_after(_TIMEOUT):
        await session.upload(f"{area}/a.txt", b"aaa")
        await session.upload(f"{area}/sub/b.txt", b"bb")
        listing = await session.files.list_dir(area)
        stat = await session.files.stat(f"{area}/a.txt")
        on_disk = os.stat(_root(session) / area / "a.txt")
        removed_file = await session.files.delete(f"{area}/a.txt")
        with pytest.raises(FileTransferError):
            await session.files.delete(f"{area}/sub")  # not empty, not recursive
        removed_dir = await session.files.delete(f"{area}/sub", recursive=True)
        empty = await session.files.list_dir(area)

    assert [(e.name, e.kind, e.size) for e in listing.entries] == [
        ("a.txt", EntryKind.FILE, 3),
        ("sub", EntryKind.DIRECTORY, None),
    ]
    assert stat.size == 3
    assert stat.sha256 == hashlib.sha256(b"aaa").hexdigest()
    assert stat.mtime_ns == on_disk.st_mtime_ns
    assert removed_file.kind is EntryKind.FILE
    assert removed_dir.kind is EntryKind.DIRECTORY
    assert empty.entries == ()


async def test_upload_chunks_travel_as_binary_buffers_on_every_server(
    any_server: ServerUnderTest, area: str
) -> None:
    data = _payload(CHUNK_SIZE + 1234, seed=6)
    with anyio.fail_after(120):
        async with (
            Client(any_server.url, token=any_server.token, **TEST_CLIENT_SETTINGS) as client,
            client.session() as session,
        ):
            committed = await session.upload(f"{area}/binary.bin", data)
            downloaded = await session.download(f"{area}/binary.bin")
            await session.files.delete(area, recursive=True)
            assert session.files._buffers_reach_kernel is True  # the probe passed

    assert committed.sha256 == hashlib.sha256(data).hexdigest()
    assert downloaded == data


def _drop_buffers(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``session`` lose every request buffer on its way, as a lossy proxy would."""
    send_raw = session._send_raw

    async def without_buffers(message: Message) -> None:
        await send_raw(attrs.evolve(message, buffers=()))

    monkeypatch.setattr(session, "_send_raw", without_buffers)


async def test_lost_buffers_are_detected_and_uploads_go_as_text(
    session: Session, area: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _payload(CHUNK_SIZE + 99, seed=7)
    _drop_buffers(session, monkeypatch)
    transfer = FileTransfer(session)
    with anyio.fail_after(_TIMEOUT):
        committed = await transfer.upload(f"{area}/text.bin", data)
        again = await transfer.upload(f"{area}/text.bin", data[:10])

    assert transfer._buffers_reach_kernel is False  # probed once, remembered
    assert committed.sha256 == hashlib.sha256(data).hexdigest()
    assert again.size == 10
    assert (_root(session) / area / "text.bin").read_bytes() == data[:10]


async def test_a_chunk_without_its_buffer_is_refused_and_nothing_changes(
    session: Session, area: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"{area}/kept.bin"
    with anyio.fail_after(_TIMEOUT):
        await session.upload(path, b"existing")
        _drop_buffers(session, monkeypatch)
        believer = FileTransfer(session)
        believer._buffers_reach_kernel = True  # as if the buffers got lost after the probe
        with pytest.raises(FileTransferError, match="arrived without its"):
            await believer.upload(path, _payload(2 * CHUNK_SIZE + 5, seed=8))

    assert (_root(session) / path).read_bytes() == b"existing"
    assert _leftovers(_root(session) / area) == []
