"""A restarted server, on all three servers: a private server (``running_server_at``) is
stopped with the session's kernels in it and started again on the same port and token;
the session notices the lost kernel and fails typed, never hangs.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from jupyter_interp.errors import (
    JupyterInterpError,
    KernelError,
)
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus

from .conftest import SERVER_KINDS
from .gateway_env import ensure_enterprise_gateway
from .provider_harness import (
    BACKEND,
    GATEWAY_BASE,
    StandInCodeInterpreterProvider,
    load_provider,
    retire,
    settings,
)
from .server_variants import running_server_at
from .servers import RunningServer, free_port
from .shared_kernel import module_backend  # noqa: F401 (fixtures)
from .test_faults import (
    _SLEEPER,
    _TIMEOUT,
    _client,
    _stream_until,
)

pytestmark = pytest.mark.anyio


# -- the server restarts ----------------------------------------------------------------


@pytest.fixture(params=SERVER_KINDS)
def restartable_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class _RestartableServer:
    """A private server of one kind that can be stopped and started on one port."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.token = os.urandom(24).hex()
        self._workdir = workdir
        self._python = ensure_enterprise_gateway() if kind == "enterprise_gateway" else None
        self._starts = 0
        self._stack = ExitStack()
        self.server: RunningServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self._starts += 1
        self.server = self._stack.enter_context(
            running_server_at(
                self.kind,
                self._workdir / f"start-{self._starts}",
                port=self.port,
                token=self.token,
                python=self._python,
            )
        )

    async def stop(self) -> None:
        """Stop the server (SIGTERM, as the fixtures do) without blocking the loop."""
        stack, self._stack, self.server = self._stack, ExitStack(), None
        await anyio.to_thread.run_sync(stack.close)

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def restartable(restartable_kind: str, tmp_path: Path) -> Iterator[_RestartableServer]:
    server = _RestartableServer(restartable_kind, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_a_server_restart_ends_sessions_typed_and_a_new_session_works(
    restartable: _RestartableServer,
) -> None:
    outcome: list[ExecutionResult] = []
    stopped_at = 0.0

    with anyio.fail_after(_TIMEOUT):
        async with _client(restartable.url, restartable.token, ping_interval=1) as client:
            busy = await client.start_session()
            idle = await client.start_session()
            await idle.execute("1")

            async def stop_on_start(text: str) -> None:
                nonlocal stopped_at
                if "started" in text:
                    stopped_at = anyio.current_time()
                    await restartable.stop()

            outcome.append(await _stream_until(busy, _SLEEPER, stop_on_start))
            busy_took = anyio.current_time() - stopped_at
            with pytest.raises(KernelError):
                await idle.execute("1")
            idle_took = anyio.current_time() - stopped_at
            await anyio.to_thread.run_sync(restartable.start)
            async with client.session() as fresh:
                answer = await fresh.execute("6 * 7")
            with pytest.raises(KernelError):
                await busy.execute("1")

    print(f"\n{restartable.kind}: busy ended {busy_took:.2f} s, idle {idle_took:.2f} s after stop")
    (lost,) = outcome
    # Jupyter Server shuts its kernels down on SIGTERM: the kernel may publish idle
    # first (NO_REPLY after the completion grace); the gateways just vanish
    assert lost.status in (ExecutionStatus.CONNECTION_LOST, ExecutionStatus.NO_REPLY)
    assert not lost.ok
    assert lost.stdout == "started\n"
    assert busy.closed
    assert idle.closed
    assert answer.result == "42"


async def test_the_provider_cleans_up_a_lost_session_and_starts_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = types.ModuleType(GATEWAY_BASE)
    gateway.CodeInterpreterProvider = StandInCodeInterpreterProvider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATEWAY_BASE, gateway)
    server = _RestartableServer("jupyter_server", tmp_path / "server")
    server.start()
    try:
        assert server.server is not None
        config = settings(server.server, tmp_path / "files")
        provider = load_provider(BACKEND, config, StandInCodeInterpreterProvider)
        with anyio.fail_after(_TIMEOUT):
            try:
                sid = (await provider.start_session())["session_id"]
                first = await provider.execute(sid, "x = 1")
                await server.stop()
                with pytest.raises(JupyterInterpError) as while_down:
                    await provider.execute(sid, "x")
                await anyio.to_thread.run_sync(server.start)
                await provider.stop_session(sid)  # the kernel is gone: nothing to do
                await provider.stop_session(sid)
                with pytest.raises(KeyError):
                    await provider.execute(sid, "x")
                fresh = (await provider.start_session())["session_id"]
                answer = await provider.execute(fresh, "6 * 7")
                await provider.stop_session(fresh)
                listed = await provider.list_sessions()
            finally:
                with anyio.CancelScope(shield=True):
                    await retire(provider)
    finally:
        server.close()

    print(f"\nprovider while the server is down: {while_down.value!r}")
    assert first["status"] == "ok"
    assert answer["result"] == "42"
    assert fresh != sid
    assert listed == []
