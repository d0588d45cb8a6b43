"""Kernels of a stdio MCP server end with it, however it ends.

A small host process (the SDK's client, as an MCP host runs it) spawns
``jupyter-interp mcp`` with a marker in its environment, runs one cell, says ``ready``
and waits. Then either the host is killed outright (the server reads EOF on stdin) or
the server gets SIGTERM; either way no kernel of it may stay on the server, the warm
pool's included, and the server process must exit. And a Jupyter server that is not
there is a tool error, not the end of the MCP server.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import anyio
import pytest
from mcp import Client as McpClient

from .conftest import server_kernel_ids
from .mcp_clients import stdio_params, text_of, wait_for_kernels
from .servers import RunningServer, free_port, pids_with_env

_MARKER = "JUPYTER_INTERP_MCP_TEST"
_HOST = """
import json, os, sys, anyio
from mcp import Client, StdioServerParameters

async def main():
    url, token, backend = json.loads(sys.argv[1])
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "jupyter_interp.cli", "mcp", "--backend", backend],
        env={**os.environ, "JUPYTER_URL": url, "JUPYTER_TOKEN": token},
    )
    async with Client(params) as client:
        result = await client.call_tool("execute", {"code": "x = 1"})
        assert not result.is_error, result
        print("ready", flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


@pytest.mark.parametrize(("ending", "backend"), [("host_killed", "asyncio"), ("sigterm", "trio")])
def test_no_kernel_outlives_the_stdio_server(
    jupyter_server: RunningServer, ending: str, backend: str
) -> None:
    before = server_kernel_ids(jupyter_server)
    marker = secrets.token_hex(8)
    arguments = json.dumps([jupyter_server.url, jupyter_server.token, backend])
    with subprocess.Popen(
        [sys.executable, "-c", _HOST, arguments],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, _MARKER: marker},
    ) as host:
        try:
            assert host.stdout is not None
            assert host.stdout.readline() == "ready\n"
            servers = pids_with_env(_MARKER, marker) - {host.pid}
            assert len(servers) == 1
            if ending == "host_killed":
                host.kill()
            else:
                os.kill(servers.pop(), signal.SIGTERM)
            assert anyio.run(wait_for_kernels, jupyter_server, before) == set()
            deadline = time.monotonic() + 60
            while pids_with_env(_MARKER, marker) - {host.pid} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert pids_with_env(_MARKER, marker) - {host.pid} == set()
        finally:
            host.kill()


@pytest.mark.anyio
async def test_a_server_that_went_away_is_a_tool_error_and_serving_goes_on(
    anyio_backend: str,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    params = stdio_params(nowhere, "unused", "--pool", "0", "--backend", anyio_backend)
    async with McpClient(params, read_timeout_seconds=120) as client:
        failed = await client.call_tool("execute", {"code": "1"})
        assert failed.is_error
        assert text_of(failed).startswith("the Jupyter server cannot be reached: ")
        assert len((await client.list_tools()).tools) == 7
