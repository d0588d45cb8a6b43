"""The Contents API route when things go wrong: symlinks that lead out, and a client that
dies in the middle of replacing a file. Against the real Jupyter Server, no kernel.

A crash is a client whose connections to the server all fail from one rename on: the
``TcpProxy`` in front of the server resets them and refuses new ones, so nothing the
dying client would still do (move the old file back, delete its temp file) reaches the
server. A fresh client then finds what the crash left and must recover from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import JupyterInterpError, PathNotConfined
from jupyter_interp.files.contents import ContentsTransfer
from jupyter_interp.files.replace import Swapper

from .conftest import TEST_CLIENT_SETTINGS
from .proxy import TcpProxy
from .servers import RunningServer
from .shared_kernel import module_backend, module_client  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 60


@pytest.fixture
def root(jupyter_server: RunningServer, area: str) -> Path:
    """A fresh file root (``area``) under the server root, as a local directory."""
    directory = jupyter_server.root_dir / area
    directory.mkdir()
    return directory


@pytest.fixture
def files(client: Client, area: str) -> ContentsTransfer:
    return ContentsTransfer(client.http, root=area, chunk_size=100)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix in (".part", ".old"))


# -- symlinks ------------------------------------------------------------------------------


async def test_a_symlink_out_of_the_server_root_is_refused_as_by_snippet_kernels(
    jupyter_server: RunningServer, root: Path, files: ContentsTransfer
) -> None:
    outside = jupyter_server.root_dir.parent / f"outside-{root.name}"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"precious")
    (root / "file-link").symlink_to(outside / "secret.txt")
    (root / "dir-link").symlink_to(outside / "dir")
    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(PathNotConfined, match="outside the server root"):
            await files.upload("file-link", b"overwritten")
        with pytest.raises(PathNotConfined, match="outside the server root"):
            await files.upload("dir-link/new.txt", b"x" * 250)  # three chunks
        with pytest.raises(PathNotConfined, match="outside the server root"):
            await files.stat("file-link")
        with pytest.raises(PathNotConfined, match="outside the server root"):
            await files.download("file-link")

    assert (outside / "secret.txt").read_bytes() == b"precious"
    # the temp file written before the check is gone (the server keeps its checkpoints
    # directory there: it makes one beside every file it deletes)
    assert [p.name for p in (outside / "dir").iterdir()] == [".ipynb_checkpoints"]
    assert (root / "file-link").is_symlink()


async def test_an_upload_onto_a_symlink_in_the_server_root_replaces_only_the_link(
    jupyter_server: RunningServer, root: Path, files: ContentsTransfer
) -> None:
    elsewhere = jupyter_server.root_dir / f"elsewhere-{root.name}.txt"
    elsewhere.write_bytes(b"another user's file")
    (root / "link.txt").symlink_to(elsewhere)
    with anyio.fail_after(_TIMEOUT):
        await files.upload("link.txt", b"new")

    assert elsewhere.read_bytes() == b"another user's file"
    assert not (root / "link.txt").is_symlink()
    assert (root / "link.txt").read_bytes() == b"new"
    assert _leftovers(root) == []


# -- a client that dies while it replaces a file -------------------------------------------


class Doomed:
    """A transfer whose client can be made to lose the server for good right after a
    given rename (``crash_after``)."""

    def __init__(self, transfer: ContentsTransfer, proxy: TcpProxy) -> None:
        self.transfer = transfer
        self._proxy = proxy
        self._renames_left = -1
        transfer._swap = Swapper(self._rename_then_crash, transfer._remove, transfer._names)

    def crash_after(self, renames: int) -> None:
        """Crash right after ``renames`` more renames."""
        self._renames_left = renames

    async def _rename_then_crash(self, path: str, new_path: str) -> bool:
        done = await self.transfer._rename(path, new_path)
        self._renames_left -= 1
        if self._renames_left == 0:
            self._proxy.refusing = True
            self._proxy.cut()
        return done


#: a request sent on a connection the proxy reset leaves its body's async generator to
#: the garbage collector inside httpx, and trio warns about it: that is the crash itself
_CRASH_WARNING = pytest.mark.filterwarnings(
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage collected"
    ":ResourceWarning"
)


@pytest.fixture
async def doomed(jupyter_server: RunningServer, area: str) -> AsyncIterator[Doomed]:
    port = int(jupyter_server.url.rstrip("/").rsplit(":", 1)[1])
    async with (
        TcpProxy(port) as proxy,
        Client(proxy.url(), token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as client,
    ):
        yield Doomed(ContentsTransfer(client.http, root=area, chunk_size=100), proxy)


@_CRASH_WARNING
@pytest.mark.parametrize("recover_by", ["download", "upload"])
async def test_a_crash_with_the_old_file_moved_aside_is_undone_by_the_next_read_or_write(
    root: Path, files: ContentsTransfer, doomed: Doomed, recover_by: str
) -> None:
    with anyio.fail_after(_TIMEOUT):
        await doomed.transfer.upload("f.txt", b"old")
        doomed.crash_after(2)  # a 409, then the old file moved aside
        with pytest.raises(JupyterInterpError):
            await doomed.transfer.upload("f.txt", b"new" * 50)
        left = _leftovers(root)
        assert not (root / "f.txt").exists()
        if recover_by == "download":
            assert await files.download("f.txt") == b"old"
        else:
            await files.upload("f.txt", b"newer")
            assert (root / "f.txt").read_bytes() == b"newer"

    assert [name.rsplit(".", 1)[1] for name in left] == ["old", "part"]
    assert _leftovers(root) == []


@_CRASH_WARNING
async def test_a_crash_after_the_swap_leaves_an_old_file_the_next_upload_removes(
    root: Path, files: ContentsTransfer, doomed: Doomed
) -> None:
    with anyio.fail_after(_TIMEOUT):
        await doomed.transfer.upload("f.txt", b"old")
        doomed.crash_after(3)  # the new file is in place; the old one not deleted yet
        await doomed.transfer.upload("f.txt", b"new")
        left = _leftovers(root)
        assert (root / "f.txt").read_bytes() == b"new"
        assert (await files.stat("f.txt")).size == 3  # a read leaves a present file alone
        assert _leftovers(root) == left
        await files.upload("f.txt", b"newer")

    assert [name.rsplit(".", 1)[1] for name in left] == ["old"]
    assert (root / "f.txt").read_bytes() == b"newer"
    assert _leftovers(root) == []
