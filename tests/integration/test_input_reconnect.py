"""A WebSocket dropped while a cell waits in ``input()`` (Jupyter Server, via ``TcpProxy``).

The reconnect's readiness check used to ask for kernel_info on shell only, which
queues behind the cell blocked in ``input()``, while the input reply waited for that
readiness: the cell stalled until its deadline. Here the cell prints, then asks for
input a moment later; the proxy cuts the connection at the print, so the prompt comes
while the session reconnects. The deadline (300 s) is far beyond the hang guard: the
test passes only if the prompt is answered on the new socket without waiting for it.
"""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.config import StdinPolicy
from jupyter_interp.protocol.events import ExecutionFinished, StreamText
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus

from .conftest import TEST_CLIENT_SETTINGS
from .proxy import TcpProxy
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_ASKING = (
    "import time\nprint('asking', flush=True)\ntime.sleep(0.5)\nprint('hello', input('name? '))"
)
_DEADLINE = 300
_GUARD = 30


async def test_a_prompt_pending_across_a_reconnect_is_answered(
    jupyter_server: RunningServer, jupyter_server_proxy: TcpProxy
) -> None:
    settings = {**TEST_CLIENT_SETTINGS, "stdin": StdinPolicy(answer="Ada")}
    with anyio.fail_after(_GUARD):
        async with (
            Client(jupyter_server_proxy.url(), token=jupyter_server.token, **settings) as client,
            client.session() as session,
        ):
            generation = session.generation
            finished: list[ExecutionResult] = []
            async with aclosing(session.stream(_ASKING, timeout=_DEADLINE)) as events:
                async for event in events:
                    if isinstance(event, StreamText) and "asking" in event.text:
                        jupyter_server_proxy.cut()
                    elif isinstance(event, ExecutionFinished):
                        finished.append(event.result)
            after = await session.execute("6 * 7")

    (result,) = finished
    assert jupyter_server_proxy.cuts >= 1
    assert result.status is ExecutionStatus.OK, result.describe()
    assert result.stdout == "asking\nhello Ada\n"
    assert result.generation == generation  # the same kernel, never restarted
    assert after.result == "42"
