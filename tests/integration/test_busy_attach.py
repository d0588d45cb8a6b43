"""Attaching to a kernel busy with someone else's cell answers at once, and can stop it.

A replica that re-attaches a session whose kernel runs a long cell (started by another
replica), or a ``Client.attach_session`` to such a kernel, must not wait for the cell:
readiness asks on the control channel too. The cells sleep far longer than the bounds
the attaches run under, so a readiness that queued behind them would fail the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import jupyter_interp as ji

from .conftest import TEST_CLIENT_SETTINGS, ServerUnderTest
from .provider_harness import kernel_exists, provider_for

pytestmark = pytest.mark.anyio

LONG_CELL = "import time\nprint('started', flush=True)\ntime.sleep(120)"
#: far below LONG_CELL's length, far above a quick attach on a loaded machine
_BOUND = 30


async def test_a_replica_re_attaches_a_busy_session_at_once_and_stops_it(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    running = provider_for(any_server, tmp_path, execution_timeout="300")
    other = provider_for(any_server, tmp_path)
    outcome: dict[str, Any] = {}

    async def run_long(sid: str) -> None:
        try:
            outcome.update(await running.execute(sid, LONG_CELL))
        except ValueError as exc:  # the session went away under it
            outcome["gone"] = str(exc)

    try:
        with anyio.fail_after(_BOUND * 3):
            started = await running.start_session()
            sid = started["session_id"]
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_long, sid)
                await anyio.sleep(2)  # the cell is running
                with anyio.fail_after(_BOUND):
                    seen = await other.get_session(sid)
                    await other.stop_session(sid)
        gone = not await kernel_exists(any_server, started["metadata"]["kernel_id"])
    finally:
        await running.close()
        await other.close()

    assert seen["metadata"]["kernel_id"] == started["metadata"]["kernel_id"]
    assert gone
    assert outcome  # the long call ended (typed) instead of running for two minutes


async def test_attach_session_to_a_busy_kernel_answers_and_can_interrupt(
    any_server: ServerUnderTest,
) -> None:
    settings = {**TEST_CLIENT_SETTINGS, "interrupt_grace": 10.0}
    async with (
        ji.Client(any_server.url, token=any_server.token, **settings) as owner,
        ji.Client(any_server.url, token=any_server.token, **settings) as other,
    ):
        session = await owner.start_session()
        try:
            results: list[ji.ExecutionResult] = []

            async def run_long() -> None:
                results.append(await session.execute(LONG_CELL, timeout=300))

            with anyio.fail_after(_BOUND * 3):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run_long)
                    await anyio.sleep(2)
                    with anyio.fail_after(_BOUND):
                        attached = await other.attach_session(session.kernel_id)
                        await attached.interrupt()
        finally:
            await session.shutdown()

    assert attached.language == "python"
    assert results[0].status is ji.ExecutionStatus.INTERRUPTED
    assert results[0].error is not None
    assert results[0].error.ename == "KeyboardInterrupt"
    assert results[0].stdout == "started\n"
