"""Messages lost with a dropped WebSocket are flagged on kernels without counters.

Lost-message detection used to read jupyter_client's counter in ipykernel's message
ids only; on other kernels an execution whose output died with the old socket ended
``ok`` (xeus-python and IRkernel number their messages otherwise). Now every kernel's
own ``busy`` for our request must come. Here the proxy
swallows what the server sends from just before the request on (as a path to the
client that died while the server's socket looked open), then cuts; the cell's
``busy`` and first line are lost.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from jupyter_interp.client import Client
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus

from .conftest import TEST_CLIENT_SETTINGS
from .kernels_env import KERNEL_NAMES, ensure_kernels
from .proxy import TcpProxy
from .servers import RunningServer

pytestmark = pytest.mark.anyio

#: per kernel: prints "a", waits, prints "b"
_CELLS = {
    KERNEL_NAMES["xeus-python"]: "import time\nprint('a', flush=True)\ntime.sleep(2)\nprint('b')",
    KERNEL_NAMES["IRkernel"]: "cat('a\\n'); Sys.sleep(2); cat('b\\n')",
}
#: how long the proxy swallows the server's messages before it cuts
_SWALLOW = 0.5
_GUARD = 60


@pytest.mark.parametrize("kernel", sorted(_CELLS))
async def test_a_lost_busy_and_output_are_flagged(
    jupyter_server: RunningServer, jupyter_server_proxy: TcpProxy, kernel: str
) -> None:
    ensure_kernels()
    outcome: list[ExecutionResult] = []
    proxy = jupyter_server_proxy
    with anyio.fail_after(_GUARD):
        async with (
            Client(proxy.url(), token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as client,
            client.session(kernel) as session,
        ):

            async def run() -> None:
                outcome.append(await session.execute(_CELLS[kernel]))

            async with anyio.create_task_group() as tg:
                proxy.swallowing = True
                tg.start_soon(run)
                await anyio.sleep(_SWALLOW)
                proxy.cut()
                proxy.swallowing = False

    (result,) = outcome
    assert "a" not in result.stdout  # lost with the swallowed bytes
    assert not result.ok, result.describe()  # never a silent loss
    # flagged, or (xeus-python may answer the reconnect's kernel_info first) ended as
    # CONNECTION_LOST
    assert result.output_dropped or result.status is ExecutionStatus.CONNECTION_LOST


#: prints "a", waits for the test's go-ahead (a file), prints "b"; in Python on both
#: kernels, which answer control requests while a cell runs on shell
_WAITING_CELL = (
    "import os, time\nprint('a', flush=True)\n"
    "for _ in range(1200):\n    if os.path.exists({go!r}): break\n    time.sleep(0.05)\n"
    "print('b')"
)


#: after our new WebSocket's request reached the server, before the kernel may speak
_OPEN_MARGIN = 2.0


async def _until_connections(server: RunningServer, kernel_id: str, count: int) -> None:
    """Wait until the server counts ``count`` WebSockets open to the kernel."""
    headers = {"Authorization": f"token {server.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, trust_env=False) as http:
        while True:
            response = await http.get(f"api/kernels/{kernel_id}")
            response.raise_for_status()
            if response.json()["connections"] == count:
                return
            await anyio.sleep(0.05)


@pytest.mark.parametrize("kernel", ["python3", KERNEL_NAMES["xeus-python"]])
async def test_other_clients_traffic_in_a_reconnect_spanning_execution_is_never_flagged(
    jupyter_server: RunningServer, jupyter_server_proxy: TcpProxy, kernel: str, tmp_path: Path
) -> None:
    """Others' requests answered while our cell runs (a second client attaching three
    times: its kernel_info and the server's nudges, on control, whose replies never
    reach us) are not losses of ours when that execution then spans a reconnect."""
    ensure_kernels()
    go = tmp_path / "go"
    outcome: list[ExecutionResult] = []
    proxy = jupyter_server_proxy
    with anyio.fail_after(_GUARD):
        async with (
            Client(proxy.url(), token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as client,
            Client(jupyter_server.url, token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as other,
            client.session(kernel) as session,
        ):

            async def run() -> None:
                outcome.append(await session.execute(_WAITING_CELL.format(go=str(go))))

            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                await anyio.sleep(0.3)
                for _ in range(3):
                    attached = await other.attach_session(session.kernel_id)
                    await attached.detach()
                # the server runs a detached socket's close a moment later; were ours
                # cut before, its close would not be the last, so the server would not
                # buffer for our session and the cell's reply would be lost for real
                await _until_connections(jupyter_server, session.kernel_id, 1)
                upgraded = proxy.websocket_upgrades
                proxy.cut()
                # the kernel stays quiet until our new socket is the server's: what it
                # sent while ours was down could be lost for real, and rightly flagged.
                # (Our readiness waits for this cell's reply on shell: it cannot be the
                # signal.) The new socket's 101 has come through (a loaded server can
                # take seconds to send it); the margin covers the server's wiring of the
                # socket after it.
                await proxy.wait_for_upgrades(upgraded + 1)
                await anyio.sleep(_OPEN_MARGIN)
                await anyio.Path(go).touch()

    (result,) = outcome
    assert result.ok, result.describe()
    assert result.stdout == "a\nb\n"
    assert not result.output_dropped
