"""No file descriptors or tasks outlive a Client, whatever happened inside it.

One cycle opens a Client on a server, provokes the paths that end early (a refused
kernel name, a caller cancelled mid-execute, an abandoned event stream, code refused
before sending, a user error, a server that is not listening, a scope cancelled around
the whole Client while code runs) and closes everything.
After a warm-up cycle (imports, lazily created pools), the open fds of this process
(``/proc/self/fd``) and the running tasks (``anyio.get_running_tasks()``) must come
back to the same numbers after every further cycle. Each cycle also checks that the
cancelled execution interrupted the kernel (state kept, generation unchanged) and left
the session usable, on every server kind.
"""

from __future__ import annotations

import gc
import os
import weakref
from contextlib import aclosing

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.client import client as client_module
from jupyter_interp.errors import (
    ConnectError,
    KernelNotFound,
    KernelSpecNotFound,
    LocalProtocolError,
)
from jupyter_interp.protocol.events import StreamText
from jupyter_interp.protocol.result import ExecutionStatus

from .conftest import TEST_CLIENT_SETTINGS, ServerUnderTest
from .servers import RunningServer, free_port

pytestmark = pytest.mark.anyio

_TIMEOUT = 180
_MEASURED_CYCLES = 2
#: how long closed sockets may take to disappear (asyncio closes transports a tick later)
_SETTLE_SECONDS = 5.0
_SLEEP_THEN_MARK = "import time\nprint('started', flush=True)\ntime.sleep(30)\nwoke = True"


def _counts() -> tuple[int, int]:
    """Open file descriptors of this process and running tasks of this event loop."""
    return len(os.listdir("/proc/self/fd")), len(anyio.get_running_tasks())


async def _settled_counts(baseline: tuple[int, int]) -> tuple[int, int]:
    """The counts once they are back at ``baseline``, or as they stand after a while."""
    with anyio.move_on_after(_SETTLE_SECONDS):
        # /proc and the task list have no event to wait on: poll
        while _counts() > baseline:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return _counts()


async def _cycle(server: ServerUnderTest) -> None:
    """Open, use, cancel, fail and close: every way a Client's work ends."""
    async with Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS) as client:
        with pytest.raises(KernelSpecNotFound):
            await client.start_session("no-such-kernel-jupyter-interp")
        async with client.session() as session:
            generation = session.generation
            await session.execute("kept = 'state'")

            with anyio.move_on_after(1) as scope:
                await session.execute(_SLEEP_THEN_MARK)
            assert scope.cancelled_caught
            after = await session.execute("'woke' in dir(), kept")
            assert after.ok, after.describe()
            assert after.result == "(False, 'state')"  # interrupted, not restarted
            assert session.generation == generation

            async with aclosing(session.stream(_SLEEP_THEN_MARK)) as events:
                async for event in events:
                    if isinstance(event, StreamText):
                        break  # abandoned: counts as a cancellation

            with pytest.raises(LocalProtocolError):
                await session.execute("'\ud800'")
            failed = await session.execute("1 / 0")
            assert failed.status is ExecutionStatus.ERROR
            last = await session.execute("'woke' in dir()")
            assert last.result == "False"
            assert session.generation == generation

    async with Client(f"http://127.0.0.1:{free_port()}/") as nowhere:
        with pytest.raises(ConnectError):
            await nowhere.start_session()


async def _cancelled_client(server: ServerUnderTest) -> str:
    """Cancel the scope around a whole Client while its code runs; return the kernel id.

    The Client then exits under cancellation: its shielded cleanup must still interrupt
    the execution (which needs the session's reader) and delete the kernel.
    """
    kernel_id = ""
    with anyio.CancelScope() as scope:
        async with (
            Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS) as client,
            client.session() as session,
        ):
            kernel_id = session.kernel_id
            async with aclosing(session.stream(_SLEEP_THEN_MARK)) as events:
                async for event in events:
                    if isinstance(event, StreamText):
                        scope.cancel()
                        await anyio.sleep(_TIMEOUT)  # the cancellation lands here
    assert scope.cancelled_caught
    return kernel_id


async def test_no_fds_or_tasks_leak_across_clients(any_server: ServerUnderTest) -> None:
    kernel_ids = []
    with anyio.fail_after(_TIMEOUT):
        await _cycle(any_server)  # warm-up
        baseline = await _settled_counts((1 << 30, 1 << 30))
        after = []
        for _ in range(_MEASURED_CYCLES):
            await _cycle(any_server)
            kernel_ids.append(await _cancelled_client(any_server))
            after.append(await _settled_counts(baseline))
        async with Client(any_server.url, token=any_server.token) as probe:
            for kernel_id in kernel_ids:
                with pytest.raises(KernelNotFound):
                    await probe.get_kernel(kernel_id)

    assert after == [baseline] * _MEASURED_CYCLES, f"(fds, tasks): {baseline} -> {after}"


async def test_a_long_lived_client_does_not_keep_the_sessions_it_closed(
    jupyter_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the soak (bench/soak.py) grew 7 MiB a minute: every closed Session stayed held.
    # Finished sessions are swept once the held ones have doubled (64 at first): sweep
    # from the first, so that two sessions show it.
    monkeypatch.setattr(client_module, "_FIRST_PRUNE", 1)
    with anyio.fail_after(_TIMEOUT):
        async with Client(jupyter_server.url, token=jupyter_server.token) as client:
            first = await client.start_session()
            await first.shutdown()
            closed = weakref.ref(first)
            del first
            async with client.session() as second:
                gc.collect()
                assert closed() is None
                assert (await second.execute("6 * 7")).result == "42"


async def test_a_closed_session_is_freed_without_the_cycle_collector(
    jupyter_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the soak (bench/soak.py) grew about 1.2 MiB a minute: each closed Session stayed in
    # reference cycles until a full collection (httpx's responses and their streams; on
    # asyncio, the frames of the tasks cancelled when it closed). Reference counting
    # alone must free it.
    monkeypatch.setattr(client_module, "_FIRST_PRUNE", 1)
    with anyio.fail_after(_TIMEOUT):
        async with Client(jupyter_server.url, token=jupyter_server.token) as client:
            async with client.session() as warm:  # imports, lazily built state
                await warm.upload("freed.txt", b"warm")
            gc.collect()
            gc.disable()
            try:
                first = await client.start_session()
                assert (await first.execute("print(6 * 7)")).stdout == "42\n"
                await first.upload("freed.txt", b"data")
                assert await first.download("freed.txt") == b"data"
                await first.shutdown()
                closed = weakref.ref(first)
                del first
                async with client.session() as second:  # the Client lets the first go
                    assert closed() is None
                    assert (await second.execute("6 * 7")).result == "42"
            finally:
                gc.enable()
