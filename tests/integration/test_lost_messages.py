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

import anyio
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
