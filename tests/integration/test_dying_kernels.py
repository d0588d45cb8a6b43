"""A kernel that keeps dying: the server gives up restarting it and drops it.

A private Jupyter Server runs a kernelspec that is ipykernel at its first launch and,
at every later one, a process that exits at once (``_LAUNCHER``); the server restarts
it up to its default five times, half a second apart. The session reconnects after
each "restarting"; the server holds that WebSocket's upgrade while the restarted
kernel does not answer, and sends its final "dead" status only to sockets it has
finished opening, so it may reach none of ours. Executions in flight meanwhile must
learn that the kernel is gone from the session's own check, not from the keep-alive
a ``ping_interval`` (30 s) later: the whole test runs under a guard far below that.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import KernelDied
from jupyter_interp.protocol.result import ExecutionStatus
from jupyter_interp.session import Session

from .conftest import TEST_CLIENT_SETTINGS
from .server_variants import running_server_variant
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_LAUNCHER = """\
import runpy, sys
from pathlib import Path

counter = Path(sys.argv[2] + ".launches")  # the connection file: one per kernel
launches = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(launches))
if launches > 1:
    sys.exit(3)
sys.argv = [sys.argv[0], *sys.argv[1:]]
runpy.run_module("ipykernel_launcher", run_name="__main__")
"""
#: Jupyter Server's default: it gives up after five quick deaths
_RESTART_LIMIT = 5
_RESTARTER = [
    "--KernelRestarter.time_to_dead=0.5",
    f"--KernelRestarter.restart_limit={_RESTART_LIMIT}",
]
_SPEC = "dies-again"
#: far below the keep-alive's 30 s and the execution's deadline: a hang guard
_GUARD = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A private Jupyter Server with the ``_SPEC`` kernelspec running ``_LAUNCHER``
    (each kernel counts its launches beside its connection file, which restarts keep)."""
    tmp_path = tmp_path_factory.mktemp("dying")
    launcher = tmp_path / "launcher.py"
    launcher.write_text(_LAUNCHER)
    argv = [sys.executable, str(launcher), "-f", "{connection_file}"]
    spec_dir = tmp_path / "data" / "kernels" / _SPEC
    spec_dir.mkdir(parents=True)
    spec = {"argv": argv, "display_name": _SPEC, "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with running_server_variant("jupyter_server", tmp_path, options=_RESTARTER) as running:
        yield running


async def _execute_until_it_raises(session: Session, ended: list[ExecutionStatus]) -> None:
    """Kill the kernel, then run cells (at most a few beyond the restarts) until one
    raises; record how each that returned ended."""
    ended.append((await session.execute("import os; os._exit(1)")).status)
    while len(ended) < _RESTART_LIMIT + 2:
        ended.append((await session.execute("6 * 7", timeout=300)).status)


async def test_executions_learn_at_once_that_the_server_gave_up_on_their_kernel(
    server: RunningServer,
) -> None:
    # each death's "restarting" ends the execution in flight (KERNEL_DIED); the last
    # one, after which the server drops the kernel, must end the session as promptly
    ended: list[ExecutionStatus] = []
    with anyio.fail_after(_GUARD):
        async with Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS) as client:
            session = await client.start_session(_SPEC)
            with pytest.raises(KernelDied) as caught:
                await _execute_until_it_raises(session, ended)
            left = await client.list_kernels()

    assert ended
    assert set(ended) == {ExecutionStatus.KERNEL_DIED}, ended
    assert "was not restarted" in str(caught.value)
    assert left == ()
