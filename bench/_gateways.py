"""Enterprise Gateway for the benchmarks, through the integration-test fixtures.

Strategy: Enterprise Gateway pins an older Jupyter stack, so it runs from its own venv,
which ``tests/integration/gateway_env.py`` builds and ``tests/integration/servers.py``
knows how to run on loopback. The benchmarks use those helpers only if the venv is
already built (a benchmark never installs anything): otherwise ``enterprise_gateway``
yields None and the target is reported as not measured.

Invariant: the gateway and every kernel it started are stopped when the block exits
(the fixture's teardown, run in a worker thread, shielded).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["GatewayServer", "enterprise_gateway", "enterprise_gateway_python"]


class GatewayServer:
    """Where a started gateway answers, and the interpreter its kernels run on."""

    def __init__(self, url: str, token: str, python: Path) -> None:
        self.url, self.token, self.python = url, token, python


def enterprise_gateway_python() -> Path | None:
    """The Enterprise Gateway venv's interpreter if the venv is built, else None."""
    try:
        from tests.integration.gateway_env import enterprise_gateway_dir
    except ImportError:
        return None
    python = enterprise_gateway_dir() / "bin" / "python"
    marker = enterprise_gateway_dir() / "jupyter-interp-spec.json"
    return python if python.exists() and marker.exists() else None


@asynccontextmanager
async def enterprise_gateway() -> AsyncIterator[GatewayServer | None]:
    """A running Enterprise Gateway on 127.0.0.1, or None when it cannot be run here."""
    python = enterprise_gateway_python()
    try:
        from tests.integration.gateway_env import ensure_enterprise_gateway
        from tests.integration.servers import running_enterprise_gateway
    except ImportError:
        python = None
    if python is None:
        yield None
        return
    python = await anyio.to_thread.run_sync(ensure_enterprise_gateway)
    with tempfile.TemporaryDirectory(prefix="bench-eg-") as workdir:
        fixture: Any = running_enterprise_gateway(Path(workdir), python, startup_timeout=120)
        server = await anyio.to_thread.run_sync(fixture.__enter__)
        try:
            yield GatewayServer(server.url, server.token, python)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(fixture.__exit__, None, None, None)
