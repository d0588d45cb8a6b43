"""Provider sessions never leak: idle ones end, and ``max_sessions`` bounds them.

On every server kind, under both backends. Waiting for the culler is bounded by
generous limits and asserts outcomes only (a kernel gone, a call that ran to its end),
so a busy machine changes how long the tests take, not what they see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from jupyter_interp.provider import JupyterCodeInterpreterProvider, SessionLimitReached

from .conftest import ServerUnderTest
from .provider_harness import kernel_exists, provider_for
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_LIMIT = 120


async def wait_until_gone(server: ServerUnderTest, kernel_id: str) -> None:
    while True:
        if not await kernel_exists(server, kernel_id):
            return
        await anyio.sleep(0.5)


async def test_idle_sessions_end_and_sessions_in_use_do_not(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    provider = provider_for(any_server, tmp_path, idle_timeout="2")
    long_cell: dict[str, Any] = {}

    async def run_long(sid: str) -> None:
        long_cell.update(await provider.execute(sid, "import time\ntime.sleep(6)\n'done'"))

    try:
        with anyio.fail_after(_LIMIT):
            working = await provider.start_session()
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_long, working["session_id"])
                idle = await provider.start_session()
                await wait_until_gone(any_server, idle["metadata"]["kernel_id"])
            with pytest.raises(KeyError):
                await provider.get_session(idle["session_id"])
            await provider.stop_session(working["session_id"])
    finally:
        await provider.close()

    assert long_cell["exit_code"] == 0  # never culled while its call ran
    assert long_cell["result"] == "'done'"


async def test_sessions_another_replica_forgot_end_but_ones_it_uses_do_not(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    server = ServerUnderTest(jupyter_server.url, jupyter_server.token, "jupyter_server")
    starter = provider_for(server, tmp_path, idle_timeout="none")
    culler = provider_for(server, tmp_path, idle_timeout="2")
    try:
        with anyio.fail_after(_LIMIT):
            forgotten = await starter.start_session("forgotten-by-its-replica")
            used = await starter.start_session("still-used-by-its-replica")
            await culler.list_sessions()  # the culling replica's runtime starts
            with anyio.move_on_after(4):
                while True:  # the other replica keeps using one of the sessions
                    await starter.execute(used["session_id"], "1")
                    await anyio.sleep(0.3)
            still_used = await kernel_exists(server, used["metadata"]["kernel_id"])
            await wait_until_gone(server, forgotten["metadata"]["kernel_id"])
            await starter.stop_session(used["session_id"])
    finally:
        await starter.close()
        await culler.close()

    assert still_used


async def test_max_sessions_refuses_starts_at_the_cap(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    provider = provider_for(any_server, tmp_path, max_sessions="2")
    started: list[dict[str, Any]] = []
    refused: list[SessionLimitReached] = []

    async def start(target: JupyterCodeInterpreterProvider) -> None:
        try:
            started.append(await target.start_session())
        except SessionLimitReached as exc:
            refused.append(exc)

    try:
        with anyio.fail_after(_LIMIT):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(start, provider)
            await provider.stop_session(started.pop()["session_id"])
            await start(provider)
            for session in started:
                await provider.stop_session(session["session_id"])
    finally:
        await provider.close()

    assert len(started) == 2  # one of the first two, then the one after a stop
    assert len(refused) == 2
    assert "max_sessions" in str(refused[0])


async def test_max_sessions_counts_every_replicas_sessions(
    jupyter_server: RunningServer, tmp_path: Path
) -> None:
    server = ServerUnderTest(jupyter_server.url, jupyter_server.token, "jupyter_server")
    first = provider_for(server, tmp_path, max_sessions="1")
    second = provider_for(server, tmp_path, max_sessions="1")
    try:
        with anyio.fail_after(_LIMIT):
            held = await first.start_session()
            with pytest.raises(SessionLimitReached):
                await second.start_session()
            await first.stop_session(held["session_id"])
            after = await second.start_session()
            await second.stop_session(after["session_id"])
    finally:
        await first.close()
        await second.close()
