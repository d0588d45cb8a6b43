"""Deadlines, cancellation, interrupts, kernel death, restarts, stdin and queueing.

The tests share one kernel per backend (a kernel start costs about a second): each must
leave it usable, which is what they check anyway. Through ``interrupted`` a test also
promises not to restart it; through ``restartable`` it may restart or kill it, and
compares generations relative to where it started. Names are per test. The test clients
use ``interrupt_grace=1`` so an unstoppable kernel is restarted quickly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import anyio
import httpx
import pytest

from jupyter_interp.client import Client
from jupyter_interp.config import StdinPolicy
from jupyter_interp.errors import KernelUnavailable, SessionClosed
from jupyter_interp.protocol.events import ExecutionFinished, InputRequested, StreamText
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, Recovery
from jupyter_interp.session import Session

from .servers import RunningServer
from .shared_kernel import module_backend  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 60


def _sleep_then_mark(marker: str) -> str:
    """Code that prints 'started', sleeps 30 s, then defines ``marker`` (if not stopped)."""
    return f"import time\nprint('started', flush=True)\ntime.sleep(30)\n{marker} = True"


_IGNORE_SIGINT = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "print('deaf', flush=True)\n"
    "time.sleep(60)"
)


@pytest.fixture
async def interrupted(shared_session: Session) -> AsyncIterator[Session]:
    """The module's shared kernel; the test must not restart it."""
    generation = shared_session.generation
    yield shared_session
    assert shared_session.generation == generation, "the kernel was restarted"


@pytest.fixture
def restartable(shared_session: Session) -> Session:
    """The module's shared kernel; the test may restart or kill it."""
    return shared_session


def _assert_clean(result: ExecutionResult, stdout: str) -> None:
    """``result`` is a plain success with exactly ``stdout``: nothing left over leaked in."""
    assert result.status is ExecutionStatus.OK, result.describe()
    assert result.stdout == stdout
    assert result.stderr == ""
    assert result.error is None
    assert result.recovery is None


async def test_timeout_interrupts_and_the_next_execute_is_clean(interrupted: Session) -> None:
    session = interrupted
    generation = session.generation
    with anyio.fail_after(_TIMEOUT):
        await session.execute("kept_timeout = 'state survives an interrupt'")
        start = anyio.current_time()
        timed_out = await session.execute(_sleep_then_mark("woke_timeout"), timeout=1)
        took = anyio.current_time() - start
        after = await session.execute("print('after'); woke = 'woke_timeout' in dir()")
        state = await session.execute("kept_timeout, woke")

    assert timed_out.status is ExecutionStatus.TIMED_OUT
    assert timed_out.recovery is Recovery.INTERRUPTED
    assert timed_out.stdout == "started\n"  # the partial output is kept
    assert "1 s deadline" in timed_out.detail
    assert timed_out.generation == generation
    assert 1 <= took < 5
    _assert_clean(after, "after\n")
    assert state.result == "('state survives an interrupt', False)"


async def test_a_timeout_that_interrupt_cannot_stop_restarts_the_kernel(
    restartable: Session,
) -> None:
    session = restartable
    generation = session.generation
    with anyio.fail_after(_TIMEOUT):
        await session.execute("kept_deaf = 1")
        timed_out = await session.execute(_IGNORE_SIGINT, timeout=1)
        after = await session.execute("print('after restart')")
        state = await session.execute("'kept_deaf' in globals()")

    assert timed_out.status is ExecutionStatus.TIMED_OUT
    assert timed_out.recovery is Recovery.RESTARTED
    assert timed_out.stdout == "deaf\n"
    assert "restarted" in timed_out.detail
    assert timed_out.generation == generation + 1
    assert session.generation == generation + 1
    _assert_clean(after, "after restart\n")
    assert after.generation == generation + 1
    assert after.execution_count == 1  # a new kernel counts from 1
    assert state.result == "False"


async def test_cancelling_the_caller_interrupts_and_keeps_the_session(
    interrupted: Session,
) -> None:
    session = interrupted
    with anyio.fail_after(_TIMEOUT):
        await session.execute("kept_cancel = 'yes'")
        start = anyio.current_time()
        with anyio.move_on_after(1) as scope:
            await session.execute(_sleep_then_mark("woke_cancel"))
        took = anyio.current_time() - start
        after = await session.execute("print('after'); 'woke_cancel' in dir(), kept_cancel")

    assert scope.cancelled_caught
    assert took < 5  # the shielded recovery interrupted; it did not wait out the sleep
    _assert_clean(after, "after\n")
    assert after.result == "(False, 'yes')"  # interrupted, not restarted


async def test_cancelling_a_queued_execute_does_not_disturb_the_running_one(
    interrupted: Session,
) -> None:
    session = interrupted
    results: list[ExecutionResult] = []

    async def run_first() -> None:
        results.append(await session.execute("import time; time.sleep(1.5); 'first'"))

    with anyio.fail_after(_TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_first)
            await anyio.sleep(0.3)
            with anyio.move_on_after(0.3) as scope:
                await session.execute("'never runs'")
        after = await session.execute("'after'")

    assert scope.cancelled_caught
    (first,) = results
    assert first.ok
    assert first.result == "'first'"
    assert after.result == "'after'"


async def test_kernel_death_is_typed_quick_and_survivable(restartable: Session) -> None:
    session = restartable
    kernel_id, generation = session.kernel_id, session.generation
    with anyio.fail_after(_TIMEOUT):
        await session.execute("kept_death = 1")
        start = anyio.current_time()
        died = await session.execute("import os; os._exit(1)", timeout=30)
        took = anyio.current_time() - start
        after = await session.execute("print('reborn'); 'kept_death' in globals()")

    assert died.status is ExecutionStatus.KERNEL_DIED
    assert died.detail
    assert took < 10
    assert died.generation == generation + 1
    assert session.generation == generation + 1
    assert session.kernel_id == kernel_id  # the server restarted the same kernel
    _assert_clean(after, "reborn\n")
    assert after.result == "False"
    assert after.generation == generation + 1


async def test_restart_loses_state_and_bumps_generation(restartable: Session) -> None:
    session = restartable
    generation = session.generation
    with anyio.fail_after(_TIMEOUT):
        await session.execute("kept_restart = 1")
        await session.execute("kept_restart += 1")
        await session.restart()
        after = await session.execute("'kept_restart' in globals()")
        await session.restart()
        again = await session.execute("'again'")

    assert after.result == "False"
    assert after.execution_count == 1
    assert after.generation == generation + 1
    assert again.generation == session.generation == generation + 2
    assert again.ok


async def test_restart_during_an_execution_ends_it(restartable: Session) -> None:
    session = restartable
    generation = session.generation
    finished: list[ExecutionResult] = []
    with anyio.fail_after(_TIMEOUT):
        async with aclosing(session.stream(_sleep_then_mark("woke"))) as events:
            async for event in events:
                if isinstance(event, StreamText):
                    await session.restart()
                elif isinstance(event, ExecutionFinished):
                    finished.append(event.result)
        after = await session.execute("print('after')")

    (result,) = finished
    assert result.status is ExecutionStatus.KERNEL_RESTARTED
    assert result.stdout == "started\n"
    assert result.generation == session.generation == generation + 1
    _assert_clean(after, "after\n")


async def test_interrupt_from_another_task(interrupted: Session) -> None:
    session = interrupted
    finished: list[ExecutionResult] = []
    with anyio.fail_after(_TIMEOUT):
        async with aclosing(session.stream(_sleep_then_mark("woke_interrupt"))) as events:
            async for event in events:
                if isinstance(event, StreamText):
                    await session.interrupt()
                elif isinstance(event, ExecutionFinished):
                    finished.append(event.result)
        after = await session.execute("print('after'); 'woke_interrupt' in dir()")

    (result,) = finished
    assert result.status is ExecutionStatus.INTERRUPTED
    assert result.error is not None
    assert result.error.ename == "KeyboardInterrupt"
    assert result.recovery is None  # we did not recover anything: the caller interrupted
    _assert_clean(after, "after\n")
    assert after.result == "False"


async def test_input_is_refused_by_default(interrupted: Session) -> None:
    session = interrupted
    with anyio.fail_after(_TIMEOUT):
        start = anyio.current_time()
        asked = await session.execute("print('asking'); refused = input('Your name? ')")
        took = anyio.current_time() - start
        after = await session.execute("print('after'); 'refused' in dir()")

    assert asked.status is ExecutionStatus.INPUT_REQUIRED
    assert not asked.ok
    assert "input" in asked.detail
    assert asked.stdout == "asking\n"
    assert took < 5  # fails fast instead of hanging on the prompt
    _assert_clean(after, "after\n")
    assert after.result == "False"


async def test_input_is_answered_by_the_stdin_policy(
    anyio_backend: str, client_factory: Callable[..., Client]
) -> None:
    code = (
        "import getpass\n"
        "name = input('Your name? ')\n"
        "secret = getpass.getpass('Secret? ')\n"
        "print(f'hello {name}, {len(secret)}')\n"
        "name"
    )
    prompts: list[tuple[str, bool]] = []
    with anyio.fail_after(_TIMEOUT):
        async with (
            client_factory(stdin=StdinPolicy(answer="Ada")) as client,
            client.session() as session,
        ):
            result = await session.execute(code)
            async with aclosing(session.stream("input('again? ')")) as events:
                async for event in events:
                    if isinstance(event, InputRequested):
                        prompts.append((event.prompt, event.password))

    assert result.ok, result.describe()
    assert result.result == "'Ada'"
    assert "hello Ada, 3" in result.stdout
    assert prompts == [("again? ", False)]


async def test_a_shut_down_session_refuses_work(client: Client) -> None:
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session()
        await session.shutdown()
        await session.shutdown()  # idempotent
        with pytest.raises(SessionClosed):
            await session.execute("1")
        with pytest.raises(SessionClosed):
            await session.restart()

    assert session.closed


async def test_a_kernel_deleted_elsewhere_ends_the_session(
    client: Client, client_factory: Callable[..., Client]
) -> None:
    # Jupyter Server keeps our WebSocket open when another client deletes the kernel:
    # the deadline's interrupt is what finds out
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session()
        await session.execute("1")
        async with client_factory() as other:
            await (await other.attach_session(session.kernel_id)).shutdown()
        lost = await session.execute("print('into the void')", timeout=2)
        with pytest.raises(KernelUnavailable):
            await session.execute("1")

    assert lost.status is ExecutionStatus.CONNECTION_LOST
    assert "gone" in lost.detail
    assert session.closed


async def test_a_kernel_deleted_during_an_execution_without_deadline_ends_it(
    client_factory: Callable[..., Client], jupyter_server: RunningServer
) -> None:
    # no deadline to fall back on: the keep-alive's kernel check must notice. (The
    # kernel is deleted over plain REST: attaching to it would wait for the busy kernel.)
    with anyio.fail_after(_TIMEOUT):
        async with client_factory(ping_interval=0.5) as client:
            session = await client.start_session()
            async with anyio.create_task_group() as tg:

                async def delete_soon() -> None:
                    await anyio.sleep(1)
                    async with httpx.AsyncClient(base_url=jupyter_server.url) as http:
                        answer = await http.delete(
                            f"api/kernels/{session.kernel_id}",
                            headers={"Authorization": f"token {jupyter_server.token}"},
                        )
                    assert answer.status_code == 204

                tg.start_soon(delete_soon)
                lost = await session.execute("import time; time.sleep(60)")

    assert lost.status is ExecutionStatus.CONNECTION_LOST
    assert "gone" in lost.detail
    assert session.closed
