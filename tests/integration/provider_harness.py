"""The gateway provider loaded the way the gateway's registry does, for the tests that
run it against real servers.

``load_provider`` imitates agentic-primitives-gateway's registry: import the backend by
dotted path, construct it from a mapping of *string* values (as YAML substitution yields
them), refuse it unless ``isinstance(instance, CodeInterpreterProvider)``, wrap it in an
attribute-forwarding proxy (the metrics proxy) and, at the end, ``close()`` it the way a
config reload does (``retire``; ``provider_on`` does all of it around a block). The
gateway is not installable here, so the ``gateway_abc`` fixture (``conftest`` offers it
to every integration test) installs a stand-in ``CodeInterpreterProvider`` with the
gateway's abstract methods under the gateway's module name; the provider registers
itself with whatever class is found there.

The provider starts its owner task with the running loop's own primitive, so the tests
that use this run on asyncio and trio; each uses its own kernels and its own file root
(``tmp_path``), and stops what it starts.
"""

from __future__ import annotations

import abc
import base64
import importlib
import inspect
import sys
import types
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import jupyter_interp as ji
from jupyter_interp.protocol import rest
from jupyter_interp.provider import JupyterCodeInterpreterProvider

from .servers import RunningServer

if TYPE_CHECKING:  # conftest imports this module for its fixture
    from .conftest import ServerUnderTest

BACKEND = "jupyter_interp.provider.JupyterCodeInterpreterProvider"
GATEWAY_BASE = "agentic_primitives_gateway.primitives.code_interpreter.base"
#: a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
#: seconds one provider test may take
_LIMIT = 120
#: the ``session_secret`` of the providers ``provider_for`` builds (replicas share it)
SECRET = "tenancy-tests-shared-secret"


class StandInCodeInterpreterProvider(abc.ABC):
    """The gateway's abstract base class, method for method."""

    @abc.abstractmethod
    async def start_session(
        self, session_id: str | None = None, config: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def stop_session(self, session_id: str) -> None: ...

    @abc.abstractmethod
    async def execute(
        self, session_id: str, code: str, language: str = "python"
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def upload_file(
        self, session_id: str, filename: str, content: bytes
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def download_file(self, session_id: str, filename: str) -> bytes: ...

    @abc.abstractmethod
    async def list_sessions(self, status: str | None = None) -> list[dict[str, Any]]: ...

    async def healthcheck(self) -> bool:
        return True


class MetricsProxy:
    """Forwards every attribute, like the gateway's metrics wrapper."""

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@pytest.fixture
def gateway_abc(monkeypatch: pytest.MonkeyPatch) -> type[StandInCodeInterpreterProvider]:
    module = types.ModuleType(GATEWAY_BASE)
    module.CodeInterpreterProvider = StandInCodeInterpreterProvider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATEWAY_BASE, module)
    return StandInCodeInterpreterProvider


def load_provider(backend: str, config: Mapping[str, str], base: type) -> Any:
    """What the registry does: import by dotted path, construct, type-check, wrap."""
    module_name, _, class_name = backend.rpartition(".")
    provider_class = getattr(importlib.import_module(module_name), class_name)
    instance = provider_class(**config)
    if not isinstance(instance, base):
        raise TypeError(f"{backend} is not a {base.__name__}")
    return MetricsProxy(instance)


async def retire(provider: Any) -> None:
    """What a config reload does with the old provider."""
    close = getattr(provider, "close", None)
    if close is not None:
        outcome = close()
        if inspect.isawaitable(outcome):
            await outcome


def settings(server: RunningServer, file_root: Path, **extra: str) -> dict[str, str]:
    return {
        "base_url": server.url,
        "token": server.token,
        "kernel_name": "python3",
        "execution_timeout": "30",
        "file_root": str(file_root),
        **extra,
    }


@asynccontextmanager
async def provider_on(
    server: RunningServer, file_root: Path, base: type, **extra: str
) -> AsyncIterator[Any]:
    provider = load_provider(BACKEND, settings(server, file_root, **extra), base)
    try:
        yield provider
    finally:
        with anyio.CancelScope(shield=True):
            await retire(provider)


async def kernel_exists(server: RunningServer | ServerUnderTest, kernel_id: str) -> bool:
    async with ji.Client(server.url, token=server.token) as client:
        try:
            await client.get_kernel(kernel_id)
        except ji.KernelNotFound:
            return False
        return True


async def delete_kernel(server: RunningServer, kernel_id: str) -> None:
    async with ji.Client(server.url, token=server.token) as client:
        await client.http.call(rest.delete_kernel(kernel_id), rest.parse_delete_kernel)


def provider_for(
    server: ServerUnderTest, file_root: Path, **settings: str
) -> JupyterCodeInterpreterProvider:
    """A provider on ``server`` with the tests' secret (every replica shares it)."""
    config = {"execution_timeout": "30", "session_secret": SECRET, **settings}
    return JupyterCodeInterpreterProvider(
        base_url=server.url, token=server.token, file_root=str(file_root), **config
    )
