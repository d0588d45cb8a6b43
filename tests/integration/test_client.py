"""Client against a real Jupyter Server: kernelspecs, sessions, attach, isolation, errors.

Tests that need their own settings or several Clients build them with
``client_factory``, whose teardown fails the test if a kernel was left running.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import (
    AuthenticationError,
    ConnectError,
    KernelNotFound,
    KernelSpecNotFound,
    LocalProtocolError,
)
from jupyter_interp.protocol.result import ExecutionResult
from jupyter_interp.session import Session

from .conftest import TEST_CLIENT_SETTINGS
from .server_variants import running_server_variant
from .servers import RunningServer, free_port

pytestmark = pytest.mark.anyio

_TIMEOUT = 60
_WRONG_TOKEN = "wrong-token-0123456789abcdef"
_SOME_KERNEL_ID = "00000000-0000-4000-8000-000000000000"


def _messages(exc: BaseException) -> str:
    """str and repr of ``exc`` and of every exception chained to it."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


async def _kernel_ids(client: Client) -> set[str]:
    return {kernel.id for kernel in await client.list_kernels()}


async def test_kernelspecs_offer_the_default_python(client: Client) -> None:
    with anyio.fail_after(_TIMEOUT):
        specs = await client.kernelspecs()
        again = await client.kernelspecs()

    assert again is specs  # cached
    assert specs.default == "python3"
    python = specs.specs["python3"]
    assert python.language.lower() == "python"
    assert python.display_name


async def test_language_picks_a_matching_kernelspec(client: Client) -> None:
    with anyio.fail_after(_TIMEOUT):
        specs = await client.kernelspecs()
        for name, spec in specs.specs.items():
            chosen = await client.resolve_kernel_name(None, f" {spec.language.upper()} ")
            assert chosen is not None
            assert specs.specs[chosen].language.lower() == spec.language.lower(), name
        python = await client.resolve_kernel_name(None, "python")
        explicit = await client.resolve_kernel_name("python3", "cobol")  # a name wins
        with pytest.raises(KernelSpecNotFound) as caught:
            await client.resolve_kernel_name(None, "cobol")
        async with client.session(language="Python") as session:
            result = await session.execute("import sys; sys.version_info[0]")
            model = await client.get_kernel(session.kernel_id)

    assert python == specs.default  # the server's default wins among equals
    assert explicit == "python3"
    assert "cobol" in str(caught.value)
    assert "python3 (python)" in str(caught.value)  # it says what the server offers
    assert session.kernel_name == "python3"
    assert session.language == "python"
    assert result.result == "3"
    assert model.id == session.kernel_id
    assert model.name == "python3"
    assert model.connections >= 1


async def test_unknown_kernel_name_raises_kernelspec_not_found(client: Client) -> None:
    with anyio.fail_after(_TIMEOUT):
        before = await _kernel_ids(client)
        with pytest.raises(KernelSpecNotFound) as caught:
            await client.start_session("no-such-kernel")
        after = await _kernel_ids(client)

    assert "no-such-kernel" in str(caught.value)
    assert "python3" in str(caught.value)
    assert after == before


async def test_sessions_are_isolated(client: Client) -> None:
    results: dict[str, list[ExecutionResult]] = {"a": [], "b": []}

    async def chatter(name: str, session: Session) -> None:
        for _ in range(5):
            results[name].append(await session.execute(f"print('{name}', value); value"))

    with anyio.fail_after(_TIMEOUT):
        async with client.session() as first, client.session() as second:
            await first.execute("value = 1")
            await second.execute("value = 2")
            async with anyio.create_task_group() as tg:
                tg.start_soon(chatter, "a", first)
                tg.start_soon(chatter, "b", second)
            only_first = await first.execute("'only_here' in dir()")
            await first.execute("only_here = True")
            not_in_second = await second.execute("'only_here' in dir()")

    assert first.kernel_id != second.kernel_id
    assert first.session_id != second.session_id
    assert all(r.stdout == "a 1\n" and r.result == "1" for r in results["a"])
    assert all(r.stdout == "b 2\n" and r.result == "2" for r in results["b"])
    assert only_first.result == not_in_second.result == "False"


async def test_attach_session_shares_the_kernel_but_not_the_output(
    anyio_backend: str, client_factory: Callable[..., Client]
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as owner, owner.session() as original:
            await original.execute("shared = 'from the owner'")
            async with client_factory() as other:
                attached = await other.attach_session(original.kernel_id)
                seen = await attached.execute("print('attached'); shared")
                mine = await original.execute("print('original')")
                assert attached.kernel_name == original.kernel_name
                assert attached.session_id != original.session_id
            # leaving the other Client detached it; the kernel lives on
            still = await original.execute("shared")
            listed = await _kernel_ids(owner)

    assert seen.result == "'from the owner'"
    assert seen.stdout == "attached\n"
    assert mine.stdout == "original\n"  # no output of the attached session leaked in
    assert still.result == "'from the owner'"
    assert original.kernel_id in listed


async def test_attach_to_an_unknown_kernel_raises_kernel_not_found(client: Client) -> None:
    with anyio.fail_after(_TIMEOUT), pytest.raises(KernelNotFound):
        await client.attach_session(_SOME_KERNEL_ID)


async def test_leaving_the_client_shuts_down_owned_kernels(
    anyio_backend: str, client_factory: Callable[..., Client]
) -> None:
    class BodyFailed(Exception):
        pass

    started: list[Session] = []

    async def failing_body() -> None:
        async with client_factory() as client:
            started.append(await client.start_session())
            raise BodyFailed

    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(BodyFailed):
            await failing_body()
        (session,) = started
        kernel_id = session.kernel_id
        async with client_factory() as observer:
            remaining = await _kernel_ids(observer)

    assert kernel_id not in remaining
    assert session.closed


async def test_a_body_error_is_not_hidden_by_a_shutdown_the_stopped_server_refuses(
    anyio_backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class BodyFailed(Exception):
        pass

    async def failing_body() -> None:
        async with Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS) as client:
            await client.start_session()
            await anyio.to_thread.run_sync(servers.close)  # the kernel's DELETE will fail
            raise BodyFailed

    servers = ExitStack()
    server = servers.enter_context(running_server_variant("jupyter_server", tmp_path))
    try:
        with anyio.fail_after(_TIMEOUT), pytest.raises(BodyFailed):
            await failing_body()
    finally:
        servers.close()

    (warning,) = [r for r in caplog.records if "closing the client after" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert f"cannot connect to {server.url.split('/')[2]}" in warning.getMessage()


async def test_cancelling_the_client_body_still_shuts_down_kernels(
    anyio_backend: str, client_factory: Callable[..., Client]
) -> None:
    started: list[str] = []
    with anyio.fail_after(_TIMEOUT):
        with anyio.move_on_after(30) as scope:
            async with client_factory() as client:
                started.append((await client.start_session()).kernel_id)
                scope.cancel()
                await anyio.sleep_forever()
        async with client_factory() as observer:
            remaining = await _kernel_ids(observer)

    assert scope.cancelled_caught
    assert started
    assert started[0] not in remaining


async def test_a_detached_kernel_survives_and_can_be_reattached(
    anyio_backend: str, client_factory: Callable[..., Client]
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as first:
            session = await first.start_session()
            await session.execute("survivor = 'still here'")
            await session.detach()
        async with client_factory() as second:
            assert session.kernel_id in await _kernel_ids(second)
            revived = await second.attach_session(session.kernel_id)
            result = await revived.execute("survivor")
            await revived.shutdown()
            remaining = await _kernel_ids(second)

    assert result.result == "'still here'"
    assert session.kernel_id not in remaining


async def test_wrong_token_raises_authentication_error_without_the_token(
    anyio_backend: str, jupyter_server: RunningServer
) -> None:
    failures: list[AuthenticationError] = []
    call: Callable[[], Awaitable[object]]
    with anyio.fail_after(_TIMEOUT):
        async with Client(jupyter_server.url, token=_WRONG_TOKEN) as client:
            attach = functools.partial(client.attach_session, _SOME_KERNEL_ID)
            # (not list_kernels: its 403 is ambiguous on gateways, a plain ServerError)
            for call in (client.kernelspecs, client.start_session, attach):
                with pytest.raises(AuthenticationError) as caught:
                    await call()
                failures.append(caught.value)
            assert _WRONG_TOKEN not in repr(client)
            assert _WRONG_TOKEN not in repr(client.config)

    for failure in failures:
        assert failure.status in (401, 403)
        text = _messages(failure)
        assert _WRONG_TOKEN not in text
        assert jupyter_server.token not in text


async def test_missing_token_raises_authentication_error(
    anyio_backend: str, jupyter_server: RunningServer
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with Client(jupyter_server.url) as client:
            with pytest.raises(AuthenticationError):
                await client.start_session()


async def test_server_not_listening_raises_connect_error(anyio_backend: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    token = "secret-that-must-not-leak-42"
    with anyio.fail_after(_TIMEOUT):
        async with Client(url, token=token, request_timeout=5) as client:
            with pytest.raises(ConnectError) as status_failure:
                await client.kernelspecs()
            with pytest.raises(ConnectError):
                await client.start_session("python3")

    assert token not in _messages(status_failure.value)


async def test_a_client_must_be_entered_before_use(anyio_backend: str) -> None:
    client = Client("http://127.0.0.1:9/", token="unused")
    with anyio.fail_after(_TIMEOUT):
        with pytest.raises(LocalProtocolError):
            await client.kernelspecs()
        with pytest.raises(LocalProtocolError):
            await client.start_session()


async def test_no_log_record_carries_a_token(
    anyio_backend: str,
    client_factory: Callable[..., Client],
    jupyter_server: RunningServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with anyio.fail_after(_TIMEOUT):
        async with client_factory() as client, client.session() as session:
            await session.execute("1", timeout=5)
            await session.restart()
            await session.interrupt()
        async with Client(jupyter_server.url, token=_WRONG_TOKEN) as wrong:
            with pytest.raises(AuthenticationError):
                await wrong.start_session()

    assert caplog.records  # the library did log (requests, restarts)
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert jupyter_server.token not in text
        assert _WRONG_TOKEN not in text
