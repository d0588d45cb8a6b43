"""Kernel starts retried on real servers: a 5xx is absorbed, real errors are not.

A private Jupyter Server runs ``flaky_kernels.FlakyKernelManager``: the test says how
many launches fail, and the server answers those starts with its own 500. A private
Kernel Gateway allows one kernel (``max_kernels=1``) for the resource limit. Kernels
that die at birth are in ``test_start_deaths.py``; the policy itself is unit-tested
offline in ``tests/client/test_start_retry.py``. Both servers are shared by the module's tests
(on both backends); each test leaves no kernel behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from jupyter_interp.client import Client
from jupyter_interp.errors import AuthenticationError, KernelSpecNotFound, ResourceLimitError

from .conftest import TEST_CLIENT_SETTINGS
from .flaky_kernels import failures_file
from .provider_harness import StandInCodeInterpreterProvider, provider_on
from .server_variants import running_server_variant
from .servers import RunningServer

pytestmark = pytest.mark.anyio

_TIMEOUT = 60
_MANAGER = "tests.integration.flaky_kernels.FlakyKernelManager"
_RETRIED = "kernel start attempt"


@pytest.fixture(
    scope="module", params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@attrs.frozen
class FlakyServer:
    server: RunningServer
    runtime_dir: Path

    def fail_next_launches(self, count: int) -> None:
        failures_file(self.runtime_dir).write_text(str(count))

    def failures_left(self) -> int:
        return int(failures_file(self.runtime_dir).read_text())


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlakyServer]:
    workdir = tmp_path_factory.mktemp("flaky")
    options = [f"--MappingKernelManager.kernel_manager_class={_MANAGER}"]
    with running_server_variant("jupyter_server", workdir, options=options) as server:
        yield FlakyServer(server=server, runtime_dir=workdir / "runtime")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("limited")
    options = ["--KernelGatewayApp.max_kernels=1"]
    with running_server_variant("kernel_gateway", workdir, options=options) as server:
        yield server


def _client(server: RunningServer, token: str | None = None) -> Client:
    return Client(server.url, token=token or server.token, **TEST_CLIENT_SETTINGS)


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(_RETRIED)]


async def test_a_5xx_on_the_start_is_retried_and_leaves_no_kernel_behind(
    flaky: FlakyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "jupyter_interp.client")
    flaky.fail_next_launches(2)
    with anyio.fail_after(_TIMEOUT):
        async with _client(flaky.server) as client:
            async with client.session() as session:
                result = await session.execute("6 * 7")
                running = [model.id for model in await client.list_kernels()]
            left = await client.list_kernels()

    assert result.result == "42"
    assert flaky.failures_left() == 0
    assert len(_retries(caplog)) == 2
    assert "HTTP 500" in _retries(caplog)[0]
    assert running == [session.kernel_id]
    assert left == ()


@pytest.mark.usefixtures("gateway_abc")  # conftest's: installs the gateway's base class
async def test_the_provider_retries_a_5xx_with_the_same_kernel_id(
    flaky: FlakyServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "jupyter_interp.client")
    flaky.fail_next_launches(1)
    with anyio.fail_after(_TIMEOUT):
        async with provider_on(flaky.server, tmp_path, StandInCodeInterpreterProvider) as p:
            started = await p.start_session("agent-5xx")
            answer = await p.execute(started["session_id"], "6 * 7")
            await p.stop_session(started["session_id"])
        async with _client(flaky.server) as client:
            left = await client.list_kernels()

    assert answer["result"] == "42"
    assert flaky.failures_left() == 0
    assert len(_retries(caplog)) == 1
    assert left == ()


async def test_an_unknown_kernelspec_and_a_wrong_token_are_raised_at_once(
    flaky: FlakyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "jupyter_interp.client")
    flaky.fail_next_launches(0)
    with anyio.fail_after(_TIMEOUT):
        async with _client(flaky.server) as client:
            with pytest.raises(KernelSpecNotFound):
                await client.start_session("no-such-kernel")
            left = await client.list_kernels()
        async with _client(flaky.server, token="wrong") as refused:
            with pytest.raises(AuthenticationError):
                await refused.start_session()

    assert _retries(caplog) == []
    assert left == ()


async def test_a_resource_limit_is_raised_at_once(
    limited: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "jupyter_interp.client")
    with anyio.fail_after(_TIMEOUT):
        async with _client(limited) as client, client.session():
            with pytest.raises(ResourceLimitError):
                await client.start_session()

    assert _retries(caplog) == []
