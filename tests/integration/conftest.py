"""Integration fixtures: real servers on 127.0.0.1.

Every test collected from this directory gets ``pytest.mark.integration`` (so
``-m "not integration"`` deselects them all). ``jupyter_server``, ``kernel_gateway``
and ``enterprise_gateway`` are one server each for the whole session (per pytest-xdist
worker: each worker has its own), started on first use; tests isolate themselves
(their own kernels, their own paths under its root). ``any_server`` runs a test once
per server kind, ``any_gateway`` once per gateway.

The gateways keep their defaults where the library must cope with them: no kernel
listing, no Contents API, a token required on every request. Kernel Gateway runs from
the test venv; Enterprise Gateway from its own venv, built on first use (or beforehand
by ``python -m tests.integration.gateway_env``).
"""

from __future__ import annotations

import importlib.util
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from jupyter_interp.client import Client
from jupyter_interp.session import Session

from .gateway_env import ensure_enterprise_gateway
from .provider_harness import gateway_abc  # noqa: F401 (a fixture for the provider tests)
from .proxy import TcpProxy
from .servers import (
    RunningServer,
    running_enterprise_gateway,
    running_jupyter_server,
    running_kernel_gateway,
)

_HERE = Path(__file__).parent

SERVER_KINDS = ("jupyter_server", "kernel_gateway", "enterprise_gateway")
GATEWAY_KINDS = ("kernel_gateway", "enterprise_gateway")


class ServerUnderTest(NamedTuple):
    """What ``any_server`` yields: where the server answers, its token and its kind."""

    url: str
    token: str
    kind: str


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Conftest hooks see the whole session's items: mark only ours.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A Jupyter Server shared by the session; its teardown fails if it cannot stop it."""
    with running_jupyter_server(tmp_path_factory.mktemp("jupyter-server")) as server:
        yield server


@pytest.fixture(scope="session")
def kernel_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A Kernel Gateway shared by the session (needs ``jupyter-kernel-gateway`` installed)."""
    if importlib.util.find_spec("kernel_gateway") is None:
        raise RuntimeError("jupyter-kernel-gateway is not installed in the test venv")
    with running_kernel_gateway(tmp_path_factory.mktemp("kernel-gateway")) as server:
        yield server


@pytest.fixture(scope="session")
def enterprise_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An Enterprise Gateway shared by the session, run from its own cached venv."""
    python = ensure_enterprise_gateway()
    with running_enterprise_gateway(
        tmp_path_factory.mktemp("enterprise-gateway"), python
    ) as server:
        yield server


@pytest.fixture(params=SERVER_KINDS)
def any_server(request: pytest.FixtureRequest) -> ServerUnderTest:
    """Each server kind in turn, as ``(url, token, kind)``."""
    return _under_test(request)


@pytest.fixture(params=GATEWAY_KINDS)
def any_gateway(request: pytest.FixtureRequest) -> ServerUnderTest:
    """Kernel Gateway, then Enterprise Gateway, as ``(url, token, kind)``."""
    return _under_test(request)


def _under_test(request: pytest.FixtureRequest) -> ServerUnderTest:
    kind = str(request.param)
    server: RunningServer = request.getfixturevalue(kind)
    return ServerUnderTest(url=server.url, token=server.token, kind=kind)


# -- clients and sessions on the shared Jupyter Server ---------------------------------
# ``client_factory``/``client`` give a test its own Client (the factory's teardown fails
# a test that leaves a kernel running); ``shared_session`` is one kernel per module and
# backend, for tests that can share one (a kernel start costs about a second).

#: Settings for test clients: short grace periods keep recovery tests fast.
TEST_CLIENT_SETTINGS: dict[str, Any] = {"interrupt_grace": 1.0, "completion_grace": 1.0}


def server_kernel_ids(server: RunningServer) -> set[str]:
    """The ids of the kernels ``server`` runs right now (a synchronous REST call)."""
    response = httpx.get(
        f"{server.url}api/kernels",
        headers={"Authorization": f"token {server.token}"},
        timeout=10,
        trust_env=False,
    )
    response.raise_for_status()
    return {kernel["id"] for kernel in response.json()}


@pytest.fixture
def client_factory(jupyter_server: RunningServer) -> Iterator[Callable[..., Client]]:
    """Build Clients for the shared Jupyter Server; fails the test if it leaves kernels.

    Keyword arguments are ``Client`` settings layered over ``TEST_CLIENT_SETTINGS``.
    """

    def make(**settings: Any) -> Client:
        return Client(
            jupyter_server.url,
            token=jupyter_server.token,
            **{**TEST_CLIENT_SETTINGS, **settings},
        )

    before = server_kernel_ids(jupyter_server)
    yield make
    left = server_kernel_ids(jupyter_server) - before
    assert not left, f"the test left kernels running: {sorted(left)}"


@pytest.fixture
async def client(
    anyio_backend: str, client_factory: Callable[..., Client]
) -> AsyncIterator[Client]:
    """A Client on the shared Jupyter Server with the test settings."""
    async with client_factory() as client:
        yield client


@pytest.fixture(scope="module")
async def shared_session(
    anyio_backend: str, jupyter_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    """One kernel for a whole module (per backend), its file root a fresh local directory.

    A module using it imports ``shared_kernel.module_backend`` (``anyio_backend`` at
    module scope, still both backends), so the event loop lives as long as the session.
    Tests sharing it must not depend on execution counts or on each other's names and
    paths.
    """
    async with module_session(jupyter_server, tmp_path_factory) as session:
        yield session


@asynccontextmanager
async def module_session(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    """A session on ``server`` with a fresh local file root; its kernel is gone after."""
    root = tmp_path_factory.mktemp("file-root")
    async with (
        Client(server.url, token=server.token, **TEST_CLIENT_SETTINGS) as client,
        client.session(file_root=str(root)) as session,
    ):
        yield session
    assert session.kernel_id not in server_kernel_ids(server)


@pytest.fixture
def area() -> str:
    """A fresh directory name (relative to a file root) for one test."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def tiny_png() -> bytes:
    """A valid 2x1 RGB PNG, built by hand (no imaging library needed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\x00\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
async def jupyter_server_proxy(jupyter_server: RunningServer) -> AsyncIterator[TcpProxy]:
    """A ``TcpProxy`` in front of the shared Jupyter Server (cut, swallow, refuse)."""
    async with TcpProxy(int(jupyter_server.url.rstrip("/").rsplit(":", 1)[1])) as running:
        yield running
