"""The provider's runtime without a Jupyter server: per-key claims, calls against a
refused port on asyncio and trio, close, and the one event loop it lives on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from jupyter_interp.errors import ConnectError, LocalProtocolError
from jupyter_interp.provider import HealthProblem, JupyterCodeInterpreterProvider
from jupyter_interp.provider.runtime import Claims

from .offline import no_seed_environment, refused_url  # noqa: F401 (an autouse fixture)

# -- the runtime -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_claims_serialise_one_key_and_forget_it_afterwards() -> None:
    claims = Claims()
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with claims.hold(key):
            order.append(f"{name}+")
            await anyio.sleep(0.05)
            order.append(f"{name}-")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, "a", "first")
            await anyio.sleep(0.01)
            tg.start_soon(hold, "a", "second")
            tg.start_soon(hold, "b", "other")

    assert order.index("first-") < order.index("second+")
    assert order.index("other+") < order.index("first-")
    assert claims._locks == {}


@pytest.mark.anyio
async def test_without_a_server_calls_fail_cleanly_and_close_is_idempotent() -> None:
    provider = JupyterCodeInterpreterProvider(base_url=refused_url(), healthcheck_timeout="2")

    with anyio.fail_after(30):
        listed = await provider.list_sessions()
        stopped = await provider.list_sessions(status="stopped")
        with pytest.raises(ConnectError):
            await provider.start_session()
        with pytest.raises(KeyError):
            await provider.execute("", "1")
        problem = await provider.healthcheck()
        await provider.close()
        await provider.close()
        reopened = await provider.list_sessions()  # usable again after close
        await provider.close()

    assert listed == stopped == reopened == []
    assert isinstance(problem, HealthProblem)
    assert not problem
    assert "is unreachable" in problem


@pytest.mark.anyio
async def test_another_event_loop_is_refused_while_ours_runs(anyio_backend: str) -> None:
    provider = JupyterCodeInterpreterProvider(base_url=refused_url(), healthcheck_timeout="2")

    def on_another_loop(call: Callable[[], Any]) -> Any:
        async def main() -> Any:
            return await call()

        try:
            return anyio.run(main, backend=anyio_backend)
        except LocalProtocolError as exc:
            return exc

    with anyio.fail_after(30):
        await provider.list_sessions()  # the runtime now lives on this loop
        refused = await anyio.to_thread.run_sync(on_another_loop, provider.list_sessions)
        health = await anyio.to_thread.run_sync(on_another_loop, provider.healthcheck)
        await provider.close()

        async def use_and_close() -> Any:
            listed = await provider.list_sessions()
            await provider.close()
            return listed

        moved = await anyio.to_thread.run_sync(on_another_loop, use_and_close)

    assert isinstance(refused, LocalProtocolError)
    assert "another event loop" in str(refused)
    assert isinstance(health, HealthProblem)  # checks run anywhere (the gateway: a fresh loop)
    assert moved == []
