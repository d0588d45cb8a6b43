"""Big output, concurrency and bad input on Jupyter Server, Kernel Gateway and Enterprise Gateway.

Each server kind gets one kernel per backend for the whole module (``kind_session``);
the tests sharing it leave it usable, which most of them check anyway. What the servers
do with 10 MB of output differs: Jupyter Server and Kernel Gateway apply the IOPub data
rate limit (1 MB/s over a 3 s window by default) and drop output, announcing it with a
stderr ``IOPub data rate exceeded`` notice; Enterprise Gateway 3.x delivers everything.
A dropped result must never look ``ok``. The server's WebSocket message cap (tornado's
10 MiB) must be met by a typed error before anything is sent.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import KernelNotFound, KernelSpecNotFound, LocalProtocolError
from jupyter_interp.local.launcher import launch_jupyter_server
from jupyter_interp.protocol.budget import OutputBudget
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus
from jupyter_interp.session import Session

from .conftest import SERVER_KINDS, TEST_CLIENT_SETTINGS, ServerUnderTest
from .servers import RunningServer, running_kernel_gateway
from .shared_kernel import module_backend  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 120
_TEN_MB = 10_000_000
#: the server kinds whose default IOPub data rate limit drops 10 MB printed at once
_RATE_LIMITED = {"jupyter_server": True, "kernel_gateway": True, "enterprise_gateway": False}
_BUDGET = 64 * 1024
_MARKER_ALLOWANCE = 100  # the "[... N bytes of output omitted ...]" line
#: 10 MB of 100-byte lines, flushed every 625 lines: messages of 62.5 kB at most (an
#: unflushed loop lets ipykernel batch megabytes into one message when it lags, and one
#: message is necessarily held whole)
_FLUSHED_LINES = (
    "import sys\n"
    f"for _ in range({_TEN_MB // 62_500}):\n"
    "    sys.stdout.write(('y' * 99 + '\\n') * 625)\n"
    "    sys.stdout.flush()"
)
#: a generous bound on what the client holds while those 10 MB arrive
_LINES_PEAK_BYTES = 4 * 1024 * 1024
_PARALLEL_SESSIONS = 50


class KindSession(NamedTuple):
    """One server kind's shared kernel: the server, a Client on it and a Session."""

    server: ServerUnderTest
    client: Client
    session: Session


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server(request: pytest.FixtureRequest) -> ServerUnderTest:
    kind = str(request.param)
    running: RunningServer = request.getfixturevalue(kind)
    return ServerUnderTest(url=running.url, token=running.token, kind=kind)


@pytest.fixture(scope="module")
async def kind_session(anyio_backend: str, server: ServerUnderTest) -> AsyncIterator[KindSession]:
    async with (
        _client(server) as client,
        client.session() as session,
    ):
        yield KindSession(server=server, client=client, session=session)


def _client(server: ServerUnderTest, **settings: Any) -> Client:
    return Client(server.url, token=server.token, **{**TEST_CLIENT_SETTINGS, **settings})


async def _assert_usable(session: Session, count_before: int | None = None) -> None:
    """The session runs code; with ``count_before``, nothing else ran in between."""
    after = await session.execute("print('still usable')")
    assert after.ok, after.describe()
    assert after.stdout == "still usable\n"
    if count_before is not None:
        assert after.execution_count == count_before + 1, "something else reached the kernel"


async def _execution_count(session: Session) -> int:
    result = await session.execute("None")
    assert result.execution_count is not None
    return result.execution_count


def _assert_dropped_and_flagged(result: ExecutionResult, full_size: int) -> None:
    assert result.output_dropped
    assert not result.ok
    assert "IOPub data rate exceeded" in result.detail
    assert "IOPub" not in result.stderr  # the notice is not user output
    assert result.stdout_size < full_size


# -- 5. output ------------------------------------------------------------------------


async def test_ten_megabytes_in_one_print(kind_session: KindSession) -> None:
    session, kind = kind_session.session, kind_session.server.kind
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(f"print('x' * {_TEN_MB})")
        await _assert_usable(session)

    assert result.status is ExecutionStatus.OK  # the code itself succeeded
    if _RATE_LIMITED[kind]:
        _assert_dropped_and_flagged(result, _TEN_MB + 1)
    else:
        assert result.ok, result.describe()
        assert result.stdout_size == _TEN_MB + 1
        assert result.stdout == "x" * _TEN_MB + "\n"
        assert not result.truncated


async def test_ten_megabytes_in_hundred_byte_lines(kind_session: KindSession) -> None:
    session, kind = kind_session.session, kind_session.server.kind
    line = "y" * 99 + "\n"
    with anyio.fail_after(_TIMEOUT):
        result = await session.execute(f"for _ in range({_TEN_MB // 100}):\n    print('y' * 99)")
        await _assert_usable(session)

    assert result.status is ExecutionStatus.OK
    if _RATE_LIMITED[kind]:
        _assert_dropped_and_flagged(result, _TEN_MB)
        assert result.stdout.startswith(line * 100)  # what came before the limit is kept
        assert set(result.stdout) <= set(line)
    else:
        assert result.ok, result.describe()
        assert result.stdout == line * (_TEN_MB // 100)


async def test_an_output_budget_bounds_memory_and_reports_truncation(
    any_server: ServerUnderTest,
) -> None:
    budget = OutputBudget(max_stream_bytes=_BUDGET)
    with anyio.fail_after(_TIMEOUT):
        async with _client(any_server, output_budget=budget) as client, client.session() as session:
            await session.execute("print('warm-up')")
            tracemalloc.start()
            try:
                lines = await session.execute(_FLUSHED_LINES)
                _, lines_peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            single = await session.execute(f"print('x' * {_TEN_MB})")

    for result in (lines, single):
        assert result.status is ExecutionStatus.OK
        assert len(result.stdout.encode()) <= _BUDGET + _MARKER_ALLOWANCE
    assert lines_peak < _LINES_PEAK_BYTES
    assert lines.truncated
    assert lines.stdout_truncated
    assert not lines.stderr_truncated
    assert lines.stdout.startswith("y" * 99 + "\n")
    assert "bytes of output omitted" in lines.stdout
    if _RATE_LIMITED[any_server.kind]:
        assert lines.output_dropped
        assert not lines.ok
        assert not single.truncated  # the one big message was dropped whole
        assert single.output_dropped
        assert single.stdout_size <= 1  # print's own '\n' may come as a message of its own
    else:
        assert lines.stdout_size == _TEN_MB
        assert lines.stdout.endswith("y" * 99 + "\n")
        assert single.truncated
        assert single.stdout_size == _TEN_MB + 1
        assert single.ok  # truncation by our budget is reported, not a failure


# -- 6. concurrency -------------------------------------------------------------------


async def test_twenty_concurrent_executes_on_one_session_run_in_order(
    kind_session: KindSession,
) -> None:
    session = kind_session.session
    called: list[int] = []
    results: dict[int, ExecutionResult] = {}

    async def run(index: int) -> None:
        called.append(index)  # no checkpoint between this and joining the queue
        results[index] = await session.execute(
            f"limits_order.append({index})\nprint('task {index}')\n{index} * 10"
        )

    with anyio.fail_after(_TIMEOUT):
        await session.execute("limits_order = []")
        async with anyio.create_task_group() as tg:
            for index in range(20):
                tg.start_soon(run, index)
        order = await session.execute("limits_order")

    assert sorted(called) == list(range(20))
    assert order.result == repr(called)
    for index, result in results.items():
        assert result.ok, result.describe()
        assert result.stdout == f"task {index}\n"
        assert result.result == str(index * 10)
    counts = [results[index].execution_count or 0 for index in called]
    assert counts == sorted(counts)
    assert min(counts) > 0
    assert len(set(counts)) == 20


@pytest.fixture
async def parallel_server(kind: str, tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    """For Jupyter Server, the embedded default as it ships: over TCP, fifty kernels
    started at once now and then lose a race for ports, and it runs ipykernel kernels
    over IPC to avoid it (``jupyter_interp.local.kernels``). For Kernel Gateway, not ours to
    configure, a private one given the same remedy by hand (``ipc_kernels``)."""
    if kind == "jupyter_server":
        async with launch_jupyter_server() as embedded:
            yield ServerUnderTest(url=embedded.url, token=embedded.token, kind=kind)
        return
    with running_kernel_gateway(tmp_path, ipc_kernels=True) as gateway:
        yield ServerUnderTest(url=gateway.url, token=gateway.token, kind=kind)


@pytest.mark.parametrize("kind", ["jupyter_server", "kernel_gateway"])
async def test_fifty_sessions_in_parallel_from_one_client(
    parallel_server: ServerUnderTest, kind: str
) -> None:
    # Enterprise Gateway takes ~2 min per backend for 50 kernel launches on 2 cores;
    # its concurrency is covered by the 20 concurrent executes above
    any_server = parallel_server
    answers: dict[int, ExecutionResult] = {}
    kernel_ids: set[str] = set()

    async def one(client: Client, index: int) -> None:
        async with client.session() as session:
            kernel_ids.add(session.kernel_id)
            answers[index] = await session.execute(f"import os\nprint({index})\nos.getpid()")

    async def is_gone(client: Client, kernel_id: str) -> bool:
        try:
            await client.get_kernel(kernel_id)
        except KernelNotFound:
            return True
        return False

    with anyio.fail_after(600):
        async with _client(any_server) as client, anyio.create_task_group() as tg:
            for index in range(_PARALLEL_SESSIONS):
                tg.start_soon(one, client, index)
        async with _client(any_server) as checker:  # the gateways refuse kernel listing
            gone = [await is_gone(checker, kernel_id) for kernel_id in sorted(kernel_ids)]

    assert len(kernel_ids) == _PARALLEL_SESSIONS
    assert sorted(answers) == list(range(_PARALLEL_SESSIONS))
    for index, result in answers.items():
        assert result.ok, result.describe()
        # the answer is the last line: IPython may print a complaint of its own first (the
        # kernels share one history database, and sqlite refused a write under this load)
        assert result.stdout.splitlines()[-1:] == [str(index)]
    assert len({result.result for result in answers.values()}) == _PARALLEL_SESSIONS  # pids
    assert all(gone), "kernels were left running"


# -- 7. bad input ---------------------------------------------------------------------


async def test_an_empty_upload_round_trips(kind_session: KindSession) -> None:
    session = kind_session.session
    with anyio.fail_after(_TIMEOUT):
        committed = await session.upload("limits/empty.bin", b"")
        data = await session.download("limits/empty.bin")
        stat = await session.files.stat("limits/empty.bin")

    assert committed.size == 0
    assert committed.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert data == b""
    assert stat.size == 0


async def test_code_that_is_not_utf8_is_refused_before_sending(kind_session: KindSession) -> None:
    session = kind_session.session
    with anyio.fail_after(_TIMEOUT):
        before = await _execution_count(session)
        with pytest.raises(LocalProtocolError, match="UTF-8"):
            await session.execute("print('\ud800')")
        await _assert_usable(session, before)


async def test_code_over_the_server_message_cap_is_refused_before_sending(
    kind_session: KindSession,
) -> None:
    session = kind_session.session
    code = "data = '" + "z" * (20 * 1024 * 1024) + "'\nprint(len(data))"
    with anyio.fail_after(_TIMEOUT):
        before = await _execution_count(session)
        with pytest.raises(LocalProtocolError) as caught:
            await session.execute(code)
        await _assert_usable(session, before)

    message = str(caught.value)
    assert "10 MiB" in message
    assert "upload" in message


async def test_an_unknown_kernel_name_is_typed(kind_session: KindSession) -> None:
    client = kind_session.client
    with anyio.fail_after(_TIMEOUT), pytest.raises(KernelSpecNotFound) as caught:
        await client.start_session("no-such-kernel-jupyter-interp")

    assert "no-such-kernel-jupyter-interp" in str(caught.value)
