"""The blocking API against a real Jupyter Server, on both portal backends.

One blocking Client and kernel per backend for the module (``blocking``); tests use
names of their own and tolerate each other's execution counts. The Ctrl-C test sends
a real SIGINT to the main thread once the kernel is busy (a marker file appears).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_interp import blocking
from jupyter_interp.errors import RemoteFileNotFound
from jupyter_interp.protocol.events import ExecutionFinished, StreamText
from jupyter_interp.protocol.result import ExecutionStatus, Recovery

from .conftest import TEST_CLIENT_SETTINGS, server_kernel_ids
from .servers import RunningServer

_BACKENDS = [pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]


@pytest.fixture(scope="module", params=_BACKENDS)
def blocking_session(
    request: pytest.FixtureRequest,
    jupyter_server: RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[blocking.Session]:
    root = tmp_path_factory.mktemp("blocking-root")
    with (
        blocking.Client(
            jupyter_server.url,
            token=jupyter_server.token,
            backend=request.param,
            # the interrupt tests assert that no restart was needed: room for a busy machine
            **{**TEST_CLIENT_SETTINGS, "interrupt_grace": 15.0},
        ) as client,
        client.session("python3", file_root=str(root)) as session,
    ):
        yield session
    assert session.kernel_id not in server_kernel_ids(jupyter_server)


def test_execute_returns_the_same_result_as_the_async_api(
    blocking_session: blocking.Session,
) -> None:
    result = blocking_session.execute("print('out'); 6 * 7", timeout=60)
    assert result.ok
    assert result.stdout == "out\n"
    assert result.result == "42"


def test_an_error_is_data_and_misuse_raises_the_same_exception(
    blocking_session: blocking.Session,
) -> None:
    result = blocking_session.execute("1 / 0")
    assert result.status is ExecutionStatus.ERROR
    assert result.error is not None
    assert result.error.ename == "ZeroDivisionError"
    with pytest.raises(RemoteFileNotFound):
        blocking_session.download("blocking/missing.txt")


def test_a_deadline_interrupts_the_kernel(blocking_session: blocking.Session) -> None:
    result = blocking_session.execute("import time; time.sleep(30)", timeout=0.5)
    assert result.status is ExecutionStatus.TIMED_OUT
    assert result.recovery is Recovery.INTERRUPTED
    assert blocking_session.execute("'still here'").result == "'still here'"


def test_stream_yields_events_and_leaving_early_interrupts(
    blocking_session: blocking.Session,
) -> None:
    events = list(blocking_session.stream("print('a'); print('b')"))
    assert isinstance(events[-1], ExecutionFinished)
    assert "".join(e.text for e in events if isinstance(e, StreamText)) == "a\nb\n"

    code = (
        "import time\n"
        "for blocking_i in range(300):\n"
        "    print(blocking_i, flush=True)\n"
        "    time.sleep(0.1)"
    )
    for event in blocking_session.stream(code):
        if isinstance(event, StreamText):
            break
    # the generator was released at the break: the interrupt ran before this line
    reached = blocking_session.execute("blocking_i").result
    assert reached is not None
    assert int(reached) < 299
    (left_code, left), _ = list(blocking_session.history)[-2:]
    assert left_code == code  # the history (notebook export) keeps the abandoned stream
    assert left.status is ExecutionStatus.CANCELLED
    assert left.recovery is Recovery.INTERRUPTED


def test_upload_and_download_round_trip(blocking_session: blocking.Session) -> None:
    committed = blocking_session.upload("blocking/data.bin", [b"abc", b"def"])
    assert committed.size == 6
    assert blocking_session.download("blocking/data.bin") == b"abcdef"
    chunks: list[bytes] = []
    stat = blocking_session.download_to("blocking/data.bin", chunks.append)
    assert stat.size == 6
    assert b"".join(chunks) == b"abcdef"
    assert blocking_session.files.stat("blocking/data.bin").size == 6


def test_threads_share_one_session(blocking_session: blocking.Session) -> None:
    results: dict[int, list[str | None]] = {}

    def work(n: int) -> None:
        results[n] = [
            blocking_session.execute(f"threads_{n} = {n} * {k}\nthreads_{n}").result
            for k in range(3)
        ]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {n: [str(n * k) for k in range(3)] for n in range(4)}


def test_works_inside_a_running_event_loop(blocking_session: blocking.Session) -> None:
    async def sync_tool_called_from_async_code() -> str | None:
        return blocking_session.execute("'from a loop'").result

    assert asyncio.run(sync_tool_called_from_async_code()) == "'from a loop'"


def test_ctrl_c_interrupts_the_kernel_then_raises(
    blocking_session: blocking.Session, tmp_path: Path
) -> None:
    assert threading.current_thread() is threading.main_thread()
    marker = tmp_path / "busy"
    done = threading.Event()

    def press_ctrl_c() -> None:
        while not marker.exists() and not done.wait(0.05):
            pass
        if not done.is_set():
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    code = (
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\n"
        "time.sleep(60)\nctrl_c = 'not interrupted'"
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            blocking_session.execute(code)
    finally:
        done.set()
        presser.join()
    # the kernel was interrupted before KeyboardInterrupt: it answers at once
    after = blocking_session.execute("'ctrl_c' in globals()", timeout=30)
    assert after.result == "False"
    assert blocking_session.generation == 0


def test_a_pool_hands_out_blocking_sessions(jupyter_server: RunningServer) -> None:
    with (
        blocking.Client(jupyter_server.url, token=jupyter_server.token) as client,
        blocking.KernelPool(client, {"python3": 1}) as pool,
    ):
        pool.wait_ready()
        with pool.session("python3") as session:
            assert pool.idle("python3") == 0
            assert session.execute("'pooled'").result == "'pooled'"
