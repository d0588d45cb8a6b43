"""The benchmarks' simulated server passes the same client checks as a real Jupyter Server.

``bench.sim_server`` stands in for thousands of kernels in the scale benchmark; its
numbers mean something only if the client sees the same protocol from it. So one set
of checks (kernel start and shutdown, the kernel_info handshake, stdout and a result,
an error, streamed events, a file round trip through the kernel-side snippets and the
typed error of a missing file) runs against the shared real Jupyter Server and against
the simulated server (served in the test's own event loop) with v1 and legacy framing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from bench.sim_server import SimServer, serving

from jupyter_interp.client import Client
from jupyter_interp.errors import RemoteFileNotFound
from jupyter_interp.protocol.events import ExecutionFinished, StreamText
from jupyter_interp.protocol.files.replies import EntryKind

from .conftest import TEST_CLIENT_SETTINGS
from .servers import RunningServer

pytestmark = pytest.mark.anyio

TARGETS = ("jupyter_server", "sim_v1", "sim_legacy")


@asynccontextmanager
async def _client(
    target: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Client, str]]:
    """A Client on ``target`` and the file root its session should use."""
    if target == "jupyter_server":
        server: RunningServer = request.getfixturevalue("jupyter_server")
        async with Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS) as client:
            yield client, str(tmp_path)
        return
    sim = SimServer(token="parity", legacy=target == "sim_legacy")
    async with serving(sim) as url, Client(url, token="parity", **TEST_CLIENT_SETTINGS) as client:
        yield client, ""
    assert not sim.kernels, "the simulated server still holds kernels"


@pytest.mark.parametrize("target", TARGETS)
async def test_same_client_checks(
    target: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with _client(target, request, tmp_path) as (client, root):
        async with client.session(file_root=root) as session:
            assert session.language == "python"
            assert session.kernel_id in {kernel.id for kernel in await client.list_kernels()}

            result = await session.execute("print('hello')\n42")
            assert (result.stdout, result.result, result.ok) == ("hello\n", "42", True)

            failed = await session.execute("raise ValueError('boom')")
            assert failed.error is not None
            assert (failed.error.ename, failed.error.evalue) == ("ValueError", "boom")

            events = [event async for event in session.stream("print('a')\nprint('b')")]
            assert "".join(e.text for e in events if isinstance(e, StreamText)) == "a\nb\n"
            assert isinstance(events[-1], ExecutionFinished)

            data = bytes(range(256)) * 300
            committed = await session.upload("dir/data.bin", data)
            assert committed.size == len(data)
            assert await session.download("dir/data.bin") == data
            listing = await session.files.list_dir("dir")
            assert [(e.name, e.kind) for e in listing.entries] == [("data.bin", EntryKind.FILE)]
            await session.files.delete("dir", recursive=True)
            with pytest.raises(RemoteFileNotFound):
                await session.download("dir/data.bin")
            kernel_id = session.kernel_id
        assert kernel_id not in {kernel.id for kernel in await client.list_kernels()}
