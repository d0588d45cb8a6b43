"""ipykernel 7.0-7.3 can leave a shell request unread: pipelined transfers still finish.

Those releases can miss a request that arrives while they send a reply (ipykernel issue
1554) and read it only once a new connection reaches their shell socket. File
transfers send the next chunk before the previous reply, so on such a kernel a
transfer used to wait for ever, with the kernel idle. Here ``ipykernel73`` (ipykernel
7.3 in a venv of its own, registered by ``kernels_env``) takes a few uploads of 16
chunks of 1 KiB, each followed by its download: chunk requests sent while the kernel
answers the previous one. Measured without the nudge, one such transfer in five hung
(both runs of this test hung), so it passes without the nudge only by rare chance (a
few runs in a hundred, estimated); it runs under a hang guard. A plain execute can be
left unread too, more rarely (seen in CI, the request right after a session opened):
the proxy makes that happen on any kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.files.transfer import FileTransfer

from .conftest import TEST_CLIENT_SETTINGS
from .kernels_env import KERNEL_NAMES, ensure_kernels
from .proxy import TcpProxy
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TRANSFERS = 4
_CHUNK = 1024
_DATA = os.urandom(16 * _CHUNK)
#: a hang guard: the transfers take a few seconds when no request waits unread
_GUARD = 60
#: the held execute's deadline: many times the first nudge's delay (``UNREAD_NUDGE_AFTER``)
_HELD_TIMEOUT = 20.0


async def test_pipelined_transfers_finish_on_a_kernel_that_leaves_requests_unread(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    ensure_kernels()
    name = KERNEL_NAMES["ipykernel 7.3"]
    with anyio.fail_after(_GUARD):
        async with (
            Client(
                jupyter_server.url, token=jupyter_server.token, **TEST_CLIENT_SETTINGS
            ) as client,
            client.session(name, file_root=str(tmp_path)) as session,
        ):
            files = FileTransfer(session, chunk_size=_CHUNK)
            for i in range(_TRANSFERS):
                committed = await files.upload(f"f{i}.bin", _DATA)
                assert committed.size == len(_DATA)
                assert await files.download(f"f{i}.bin") == _DATA


async def test_a_request_the_kernel_leaves_unread_is_nudged_and_runs(
    jupyter_server: RunningServer, jupyter_server_proxy: TcpProxy
) -> None:
    """A plain execute whose request the kernel does not read until a new connection
    reaches it (the proxy holds it back until another kernel WebSocket opens) still runs:
    the session nudges it (``session.run``). Without the nudge it would time out."""
    proxy = jupyter_server_proxy
    with anyio.fail_after(_GUARD):
        async with (
            Client(proxy.url(), token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as client,
            client.session() as session,
        ):
            opened = _channel_requests(proxy)
            proxy.hold_websocket_input()
            result = await session.execute("print('ran')", timeout=_HELD_TIMEOUT)
            nudges = _channel_requests(proxy) - opened
            follow_up = await session.execute("print('again')")
    assert result.ok, result.describe()
    assert result.stdout == "ran\n"
    assert nudges == 1
    assert follow_up.stdout == "again\n"


def _channel_requests(proxy: TcpProxy) -> int:
    return sum("/channels" in line for line in proxy.request_lines)
