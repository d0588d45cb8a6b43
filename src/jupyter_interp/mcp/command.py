"""``jupyter-interp mcp``: serve the MCP server over stdio (default) or streamable HTTP.

Strategy: the server options mirror ``exec`` (``--url``/``--token`` or
``JUPYTER_URL``/``JUPYTER_TOKEN``, else the shared local server if one runs, else the
embedded local server; ``--kernel``, ``--language``, ``--timeout``, ``--backend``) plus
the transport's. Over stdio the one connection's kernel starts at once (no warm pool
by default: a pooled spare would sit idle beside it); over HTTP one warm kernel waits
for the next connection. The SDK is imported
only when the command runs, so a missing ``mcp`` extra is a plain message, not a
traceback. stdio serves one connection until EOF; ``--http HOST:PORT`` listens on
loopback unless told otherwise, with an optional bearer token (``--http-token`` or
``JUPYTER_INTERP_MCP_TOKEN``) that is never logged. SIGINT/SIGTERM end the server and,
through the Client's and the server's cleanup, every kernel it started.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
from typing import Any, cast

import anyio
import anyio.to_thread

from ..errors import MissingDependency
from ..io.signals import cancel_on_signals

__all__ = ["add_parser", "add_server_options", "check", "run"]

_SERVER = "jupyter_interp.mcp.server"


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``mcp`` sub-command to ``commands`` (an argparse subparsers object)."""
    return commands.add_parser(  # type: ignore[no-any-return]
        "mcp", help="serve an MCP server (stdio, or --http HOST:PORT)"
    )


def add_server_options(serve: argparse.ArgumentParser) -> None:
    """The options of ``mcp`` beyond those it shares with ``exec``."""
    serve.add_argument("--file-root", default="", help="kernel-side directory for file tools")
    serve.add_argument(
        "--pool",
        type=int,
        default=None,
        help="warm kernels kept ready (default: 1 over HTTP; 0 over stdio, whose one "
        "connection's kernel starts at once instead)",
    )
    serve.add_argument(
        "--max-output",
        type=int,
        default=100_000,
        help="bytes of stdout and of stderr kept per run (head and tail)",
    )
    serve.add_argument(
        "--image-budget",
        type=int,
        default=1024 * 1024,
        help="inline image bytes per call; more become resource links",
    )
    serve.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=None,
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio",
    )
    serve.add_argument(
        "--http-idle-timeout",
        type=float,
        default=30 * 60.0,
        help="seconds after which an idle HTTP session expires, with its kernels",
    )
    serve.add_argument(
        "--http-token",
        default=os.environ.get("JUPYTER_INTERP_MCP_TOKEN"),
        help="bearer token HTTP clients must send (env JUPYTER_INTERP_MCP_TOKEN)",
    )


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--http takes HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def check(args: argparse.Namespace) -> None:
    """Refuse what cannot run, before anything starts (``ValueError``)."""
    if args.http is not None:
        _host_port(args.http)
        if args.backend == "trio":
            raise ValueError("--http runs on uvicorn, which needs --backend asyncio")
    if (args.pool is not None and args.pool < 0) or args.max_output < 0:
        raise ValueError("--pool and --max-output must be >= 0")
    if not args.http_idle_timeout > 0:
        raise ValueError("--http-idle-timeout must be > 0")
    # find, not import: the SDK takes a second to import, which ``run`` overlaps with
    # the first kernel's start
    if importlib.util.find_spec("mcp") is None:
        raise MissingDependency(
            "the MCP server needs the 'mcp' extra: pip install 'jupyter-interp[mcp]'"
        )


async def run(args: argparse.Namespace) -> None:
    """Serve until EOF (stdio) or until cancelled or signalled (HTTP)."""
    from ..client import Client
    from ..local.shared import shared_or_private
    from ..protocol.budget import OutputBudget
    from .settings import Limits, ServerSettings, connection_sessions, warm_pool

    stdio = args.http is None
    settings = ServerSettings(
        kernel=args.kernel,
        language=args.language,
        file_root=args.file_root,
        pool_size=(0 if stdio else 1) if args.pool is None else args.pool,
        limits=Limits(image_budget=args.image_budget, timeout=args.timeout),
    )
    budget = OutputBudget(max_stream_bytes=args.max_output)
    client_cm: Any = (
        Client(args.url, token=args.token, output_budget=budget)
        if args.url
        else shared_or_private(output_budget=budget)
    )
    # the SDK loads in a thread from the start, while the first kernel starts
    sdk_loaded = anyio.Event()
    loaded: list[Any] = []

    async def load_sdk() -> None:
        loaded.append(await anyio.to_thread.run_sync(importlib.import_module, _SERVER))
        sdk_loaded.set()

    async with anyio.create_task_group() as loading:
        loading.start_soon(load_sdk)
        async with client_cm as client, warm_pool(client, settings) as pool:
            # stdio has one connection: its kernel starts now, not at its first call
            connection = connection_sessions(client, pool, settings) if stdio else None
            if connection is not None:
                loading.start_soon(connection.prestart)
            await sdk_loaded.wait()
            server = loaded[0].create_server(
                client, settings, pool=pool, stdio_connection=connection
            )
            await _serve(args, server)
            loading.cancel_scope.cancel()  # a prestart still in flight: the connection ended


async def _serve(args: argparse.Namespace, server: Any) -> None:
    """Run ``server`` on the transport ``args`` names."""
    if args.http is None:
        from mcp.server.stdio import stdio_server

        from .stdin import StdinLines

        async with anyio.create_task_group() as tg:
            # SIGINT/SIGTERM cancel, so every kernel is shut down on the way out
            tg.start_soon(cancel_on_signals, tg.cancel_scope, signal.SIGINT, signal.SIGTERM)
            # the SDK only iterates ``stdin``; ours can be cancelled (see .stdin)
            async with (
                StdinLines() as lines,
                stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read, write),
            ):
                await server.run(read, write, server.create_initialization_options())
            tg.cancel_scope.cancel()
    else:  # uvicorn handles SIGINT/SIGTERM itself: it ends serve() gracefully
        from .http import http_app, serve_http

        host, port = _host_port(args.http)
        app = http_app(
            server, token=args.http_token, host=host, idle_timeout=args.http_idle_timeout
        )
        await serve_http(app, host, port)
