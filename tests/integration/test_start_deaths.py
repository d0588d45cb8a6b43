"""Kernels that die before they first answer, on Jupyter Server and Kernel Gateway.

A kernel that keeps dying at start-up (for one, when another socket took a port the
server picked for it: jupyter_client restarts it on the same ports) is dropped by the
server after its restarts fail, while the server holds our WebSocket upgrade for its
kernel_info timeout (60 s) before it answers 404. Each test runs a private server whose
kernelspecs run ``_LAUNCHER``: it counts its launches in a file and exits at once for
the first ``fails`` of them, then runs ipykernel. A start is tried
``ClientConfig.start_attempts`` times, each with a fresh kernel (the provider: with the
same kernel id). The servers poll their kernels every
half second and give up after one failed restart, so a dying kernel is dropped in about
a second.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from jupyter_interp.client import Client
from jupyter_interp.config import ClientConfig
from jupyter_interp.errors import KernelDied

from .conftest import TEST_CLIENT_SETTINGS
from .provider_harness import StandInCodeInterpreterProvider, provider_on
from .server_variants import running_server_variant
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TIMEOUT = 90
#: how long Jupyter Server holds the upgrade for a kernel that never answers
_SERVER_HOLD = 60.0
_RESTARTER = ["--KernelRestarter.time_to_dead=0.5", "--KernelRestarter.restart_limit=1"]
#: launches per dropped kernel: the first, and the one restart the servers try
_LAUNCHES_PER_DROP = 2
_LAUNCHER = """\
import runpy, sys
from pathlib import Path

counter, fails = Path(sys.argv[1]), int(sys.argv[2])
launches = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(launches))
if launches <= fails:
    sys.exit(3)
sys.argv = [sys.argv[0], *sys.argv[3:]]
runpy.run_module("ipykernel_launcher", run_name="__main__")
"""


#: the kernelspecs of each server, and how many launches of each die
_SPECS = {"dropped-twice": 2 * _LAUNCHES_PER_DROP, "always-dies": 1000}
_ATTEMPTS = ClientConfig().start_attempts


@attrs.frozen
class DyingKernels:
    """A private server whose kernelspecs (``_SPECS``) count their launches in ``workdir``."""

    server: RunningServer
    workdir: Path

    def launches(self, name: str) -> int:
        return int(_counter(self.workdir, name).read_text())


def _counter(workdir: Path, name: str) -> Path:
    return workdir / f"{name}.launches"


def _write_specs(workdir: Path) -> None:
    """``_SPECS`` as kernelspecs in the server's data directory, all running ``_LAUNCHER``."""
    launcher = workdir / "launcher.py"
    launcher.write_text(_LAUNCHER)
    for name, fails in _SPECS.items():
        counter = _counter(workdir, name)
        argv = [sys.executable, str(launcher), str(counter), str(fails), "-f", "{connection_file}"]
        spec_dir = workdir / "data" / "kernels" / name
        spec_dir.mkdir(parents=True)
        spec = {"argv": argv, "display_name": name, "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture(params=["jupyter_server", "kernel_gateway"])
def dying(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DyingKernels]:
    _write_specs(tmp_path)
    options = list(_RESTARTER)
    if request.param == "kernel_gateway":
        options.append("--JupyterWebsocketPersonality.list_kernels=True")
    with running_server_variant(str(request.param), tmp_path, options=options) as server:
        yield DyingKernels(server=server, workdir=tmp_path)


def _client(server: RunningServer) -> Client:
    return Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS)


async def test_kernels_dropped_at_start_up_are_replaced_by_fresh_ones(
    dying: DyingKernels,
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with _client(dying.server) as client, client.session("dropped-twice") as session:
            result = await session.execute("6 * 7")
            running = [model.id for model in await client.list_kernels()]

    assert result.result == "42"
    assert dying.launches("dropped-twice") == 2 * _LAUNCHES_PER_DROP + 1
    assert running == [session.kernel_id]  # the dropped kernels are not left behind


async def test_a_kernel_that_always_dies_fails_the_start_fast_and_typed(
    dying: DyingKernels,
) -> None:
    with anyio.fail_after(_TIMEOUT):
        async with _client(dying.server) as client:
            started = anyio.current_time()
            with pytest.raises(KernelDied) as caught:
                await client.start_session("always-dies")
            took = anyio.current_time() - started
            left = await client.list_kernels()

    assert "died before it answered" in str(caught.value)
    assert dying.launches("always-dies") == _ATTEMPTS * _LAUNCHES_PER_DROP
    assert took < _SERVER_HOLD  # not held until the server's kernel_info timeout
    assert left == ()


@pytest.mark.usefixtures("gateway_abc")  # conftest's: installs the gateway's base class
async def test_the_provider_replaces_kernels_dropped_at_start_up(
    dying: DyingKernels, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    with anyio.fail_after(_TIMEOUT):
        async with provider_on(
            dying.server, files, StandInCodeInterpreterProvider, kernel_name="dropped-twice"
        ) as provider:
            started = await provider.start_session("agent-7")
            answer = await provider.execute(started["session_id"], "6 * 7")
            await provider.stop_session(started["session_id"])

    assert answer["result"] == "42"
    assert dying.launches("dropped-twice") == 2 * _LAUNCHES_PER_DROP + 1
