"""The embedded default: a private Jupyter Server on loopback, and a Client on it.

Strategy: ``local_server()`` composes the process launcher (``launcher``) with a
``Client``: it starts ``jupyter server`` on 127.0.0.1 with a free port and a random
token, yields a connected Client, and on exit closes the Client (shutting down the
kernels it started) before stopping the server and anything it spawned.

Invariant: nothing outlives the ``async with`` block, whether it ends normally, raises
or is cancelled.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..client import Client
from .launcher import LocalJupyterServer, launch_jupyter_server

__all__ = ["LocalJupyterServer", "launch_jupyter_server", "local_server"]


@asynccontextmanager
async def local_server(
    *,
    root_dir: str | os.PathLike[str] | None = None,
    startup_timeout: float = 60.0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    python: str | None = None,
    **client_settings: Any,
) -> AsyncIterator[Client]:
    """Start a private Jupyter Server and yield a connected ``Client`` for it.

    Requires the ``local`` extra (``pip install 'jupyter-interp[local]'``).

    Args:
        root_dir: the server's root directory (default: a temporary one, removed after).
        startup_timeout: seconds to wait for the server to answer.
        extra_args: more ``jupyter server`` command-line options.
        env: extra environment variables for the server and its kernels.
        python: interpreter to run the server with (default: this one).
        **client_settings: passed to ``Client`` (timeouts, output budget, stdin policy).

    Raises:
        MissingDependency: jupyter-server or ipykernel is not installed.
        ConnectError, TransportTimeout: the server did not come up.
    """
    async with (
        launch_jupyter_server(
            root_dir=root_dir,
            startup_timeout=startup_timeout,
            extra_args=extra_args,
            env=env,
            python=python,
        ) as server,
        Client(server.url, token=server.token, **client_settings) as client,
    ):
        yield client
