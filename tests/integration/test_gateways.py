"""The library's basic flow on Jupyter Server, Kernel Gateway and Enterprise Gateway.

Each test runs on every server kind (``any_server``) or on both gateways
(``any_gateway``), under asyncio and trio, and opens at most one kernel. The gateways
run with their defaults: no kernel listing, no Contents API, a token on every request
(401 otherwise, where Jupyter Server answers 403). Files therefore travel through
kernel code on every server, and nothing here may rely on listing kernels.
"""

from __future__ import annotations

import ast
import getpass
import hashlib
import logging
import os
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import (
    AuthenticationError,
    KernelNotFound,
    RemoteFileNotFound,
    ServerError,
    SessionClosed,
)
from jupyter_interp.protocol.events import ExecutionFinished, StreamText
from jupyter_interp.protocol.files import CHUNK_SIZE
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, Recovery
from jupyter_interp.session import Session

from .conftest import ServerUnderTest
from .servers import EG_REFUSED_USERNAME, RunningServer

pytestmark = pytest.mark.anyio

_TEST_TIMEOUT = 60
#: just over one transfer chunk, so chunking is exercised both ways
_PAYLOAD_SIZE = CHUNK_SIZE + 1234
_LAUNCH_TIMEOUT = 77
_UNAUTHENTICATED_STATUS = {"jupyter_server": 403, "kernel_gateway": 401, "enterprise_gateway": 401}


def _client(server: ServerUnderTest, **settings: Any) -> Client:
    return Client(server.url, token=server.token, **settings)


async def _environ(session: Session, *names: str) -> dict[str, str | None]:
    """The kernel's values of ``names`` (``None`` when unset)."""
    result = await session.execute(f"import os; {{n: os.environ.get(n) for n in {names!r}}}")
    assert result.status is ExecutionStatus.OK, result
    assert result.result is not None
    values: dict[str, str | None] = ast.literal_eval(result.result)
    return values


async def test_execute_and_transfer_files(any_server: ServerUnderTest) -> None:
    payload = os.urandom(_PAYLOAD_SIZE)
    with anyio.fail_after(_TEST_TIMEOUT):
        async with _client(any_server) as client, client.session() as session:
            assert session.language == "python"

            done = await session.execute("import math\nprint(math.pi)\n6 * 7")
            assert done.status is ExecutionStatus.OK
            assert done.stdout == "3.141592653589793\n"
            assert done.result == "42"
            assert done.error is None

            failed = await session.execute("1 / 0")
            assert failed.status is ExecutionStatus.ERROR
            assert failed.error is not None
            assert failed.error.summary() == "ZeroDivisionError: division by zero"

            committed = await session.upload("in/data.bin", payload)
            assert committed.size == len(payload)
            assert committed.sha256 == hashlib.sha256(payload).hexdigest()
            # the kernel sees the file where the server started it (its working dir)
            seen = await session.execute(
                "import hashlib, pathlib\n"
                "hashlib.sha256(pathlib.Path('in/data.bin').read_bytes()).hexdigest()"
            )
            assert seen.result == repr(committed.sha256)

            assert await session.download("in/data.bin") == payload
            with pytest.raises(RemoteFileNotFound):
                await session.download("in/missing.bin")
            # some servers start kernels in their own working directory: leave it clean
            await session.files.delete("in", recursive=True)
            with pytest.raises(RemoteFileNotFound):
                await session.download("in/data.bin")


async def test_interrupt_timeout_restart_shutdown(any_server: ServerUnderTest) -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with _client(any_server) as client:
            session = await client.start_session()
            assert (await session.execute("kept = 'state'")).status is ExecutionStatus.OK

            timed_out = await session.execute(
                "print('sleeping', flush=True)\nimport time\ntime.sleep(30)", timeout=1.5
            )
            assert timed_out.status is ExecutionStatus.TIMED_OUT
            assert timed_out.recovery is Recovery.INTERRUPTED
            assert timed_out.stdout == "sleeping\n"
            assert (await session.execute("kept")).result == "'state'"

            interrupted = await _interrupt_while_running(session)
            assert interrupted.status is ExecutionStatus.INTERRUPTED
            assert interrupted.error is not None
            assert interrupted.error.ename == "KeyboardInterrupt"
            assert session.generation == 0

            await session.restart()
            assert session.generation == 1
            lost = await session.execute("kept")
            assert lost.status is ExecutionStatus.ERROR
            assert lost.error is not None
            assert lost.error.ename == "NameError"

            await session.shutdown()
            assert session.closed
            with pytest.raises(SessionClosed):
                await session.execute("1")
            with pytest.raises(KernelNotFound):
                await client.get_kernel(session.kernel_id)


async def test_a_timeout_interrupt_cannot_stop_restarts_the_kernel(
    any_gateway: ServerUnderTest,
) -> None:
    deaf = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('deaf', flush=True)\n"
        "time.sleep(60)"
    )
    with anyio.fail_after(_TEST_TIMEOUT):
        async with _client(any_gateway, interrupt_grace=1.0) as client:
            session = await client.start_session()
            await session.execute("kept = 1")
            timed_out = await session.execute(deaf, timeout=1)
            with anyio.fail_after(10):  # the restarted kernel answers promptly
                after = await session.execute("print('after restart'); 'kept' in globals()")

    assert timed_out.status is ExecutionStatus.TIMED_OUT
    assert timed_out.recovery is Recovery.RESTARTED
    assert timed_out.stdout == "deaf\n"
    assert timed_out.generation == 1
    assert session.generation == 1
    assert after.status is ExecutionStatus.OK
    assert after.stdout == "after restart\n"
    assert after.result == "False"


async def _interrupt_while_running(session: Session) -> ExecutionResult:
    """Interrupt (REST) a running execution once it printed; return its result."""
    code = "print('running', flush=True)\nimport time\ntime.sleep(30)"
    async with aclosing(session.stream(code)) as events:
        async for event in events:
            if isinstance(event, StreamText) and "running" in event.text:
                await session.interrupt()
            elif isinstance(event, ExecutionFinished):
                return event.result
    raise AssertionError("the stream ended without ExecutionFinished")


async def test_api_status(any_server: ServerUnderTest) -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with _client(any_server) as client:
            status = await client.api_status()
    assert status.version.split(".")[0].isdigit()
    if any_server.kind == "enterprise_gateway":
        assert status.gateway_version == "3.3.0"
        assert status.version.startswith("1.")  # EG runs on jupyter_server 1.x
    else:
        assert status.gateway_version is None
        assert status.version.startswith("2.")


async def test_gateway_defaults_refuse_listing_and_contents(
    any_gateway: ServerUnderTest,
) -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with _client(any_gateway) as client:
            with pytest.raises(ServerError) as refused:
                await client.list_kernels()
        async with httpx.AsyncClient(base_url=any_gateway.url, trust_env=False) as http:
            contents = await http.get(
                "api/contents", headers={"Authorization": f"token {any_gateway.token}"}
            )
    assert refused.value.status == 403
    assert "Forbidden" in str(refused.value)
    assert any_gateway.token not in str(refused.value)
    assert contents.status_code == 404


async def test_gateway_kernel_env(any_gateway: ServerUnderTest) -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with (
            _client(any_gateway, launch_timeout=_LAUNCH_TIMEOUT) as client,
            client.session(env={"KERNEL_FOO": "bar"}) as session,
        ):
            values = await _environ(
                session, "KERNEL_FOO", "KERNEL_USERNAME", "KERNEL_LAUNCH_TIMEOUT"
            )
    assert values == {
        "KERNEL_FOO": "bar",
        "KERNEL_USERNAME": getpass.getuser(),
        "KERNEL_LAUNCH_TIMEOUT": str(_LAUNCH_TIMEOUT),
    }


async def test_wrong_token_is_refused_without_leaking_it(
    any_server: ServerUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "f" * 48
    with anyio.fail_after(_TEST_TIMEOUT):
        async with Client(any_server.url, token=wrong) as client:
            with pytest.raises(AuthenticationError) as refused:
                await client.start_session()
            if any_server.kind != "jupyter_server":  # Jupyter Server serves /api to anyone
                with pytest.raises(AuthenticationError) as probe:
                    await client.api_status()
                assert probe.value.status == 401
    assert refused.value.status == _UNAUTHENTICATED_STATUS[any_server.kind]
    for secret in (wrong, any_server.token):
        assert secret not in str(refused.value)
        assert secret not in repr(refused.value)
        assert secret not in caplog.text


async def test_enterprise_gateway_refuses_an_unauthorized_user(
    enterprise_gateway: RunningServer,
) -> None:
    with anyio.fail_after(_TEST_TIMEOUT):
        async with Client(
            enterprise_gateway.url,
            token=enterprise_gateway.token,
            kernel_username=EG_REFUSED_USERNAME,
        ) as client:
            with pytest.raises(AuthenticationError) as refused:
                await client.start_session()
    assert refused.value.status == 403
    assert EG_REFUSED_USERNAME in str(refused.value)
