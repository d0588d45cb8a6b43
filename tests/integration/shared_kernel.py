"""Fixtures for test modules whose tests share servers, clients and kernels per backend.

A module imports what it needs (``from .shared_kernel import module_backend``; the
import is the registration, hence the ``noqa``):

* ``module_backend`` is ``anyio_backend`` at module scope, still both backends, so an
  event loop lives as long as the module's servers and kernels (``shared_session``).
* ``shared_kernel`` is ``session``: the module's ``shared_session``, checked after each
  test not to have been restarted (a restart would lose the others' state).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from jupyter_interp.client import Client
from jupyter_interp.session import Session

from .conftest import TEST_CLIENT_SETTINGS
from .servers import RunningServer

__all__ = ["KERNEL_DIR", "module_backend", "module_client", "shared_kernel", "subdir_python"]

KERNEL_DIR = f"kdir-{uuid.uuid4().hex[:8]}"  # the python3 kernel's working directory
_TIMEOUT = 60


@pytest.fixture(
    name="anyio_backend",
    scope="module",
    params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")],
)
def module_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(name="session")
async def shared_kernel(shared_session: Session) -> AsyncIterator[Session]:
    yield shared_session
    assert shared_session.generation == 0, "a test restarted the shared kernel"


@pytest.fixture(name="client", scope="module")
async def module_client(anyio_backend: str, jupyter_server: RunningServer) -> AsyncIterator[Client]:
    async with Client(jupyter_server.url, token=jupyter_server.token, **TEST_CLIENT_SETTINGS) as c:
        yield c


@pytest.fixture(name="python", scope="module")
async def subdir_python(client: Client, jupyter_server: RunningServer) -> AsyncIterator[Session]:
    (jupyter_server.root_dir / KERNEL_DIR).mkdir(exist_ok=True)
    with anyio.fail_after(_TIMEOUT):
        session = await client.start_session("python3", path=KERNEL_DIR, file_root="files")
    yield session
    with anyio.fail_after(_TIMEOUT):
        await session.shutdown()
