"""The MCP server over streamable HTTP, driven by the SDK's own client.

One ``jupyter-interp mcp --http`` process serves the module (uvicorn runs on asyncio
only; the clients run on both backends), with a bearer token, no warm pool and a 3-second
idle expiry, so the kernels on the shared Jupyter Server are exactly those the MCP
sessions started. The teardown stops it with SIGTERM and proves that no kernel is left.
"""

from __future__ import annotations

import base64
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from .conftest import server_kernel_ids
from .mcp_clients import text_of, wait_for_kernels
from .servers import RunningServer, free_port

# The SDK's streamable HTTP client (mcp 2.3) leaves httpx2's response and SSE iterators
# for the garbage collector to close; trio's async-generator finalizer warns about each
# (asyncio's does not). Only these unraisable warnings are ignored, only in this module.
_SDK_CLIENT_UNDER_TRIO = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object :pytest.PytestUnraisableExceptionWarning"
)


class McpHttp:
    """The spawned HTTP server: its endpoint, its token and the kernels before it."""

    def __init__(self, url: str, token: str, before: set[str]) -> None:
        self.url, self.token, self.before = url, token, before


@pytest.fixture(scope="module")
def mcp_http(jupyter_server: RunningServer) -> Iterator[McpHttp]:
    before = server_kernel_ids(jupyter_server)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        *(sys.executable, "-m", "jupyter_interp.cli", "mcp", "--pool", "0"),
        *("--url", jupyter_server.url, "--token", jupyter_server.token),
        *("--http", f"127.0.0.1:{port}", "--http-token", token, "--http-idle-timeout", "3"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=5, trust_env=False)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[1].decode()
                assert time.monotonic() < deadline, "the MCP HTTP server did not start"
                time.sleep(0.2)
        yield McpHttp(url, token, before)
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert token not in errors.decode()
    assert anyio.run(wait_for_kernels, jupyter_server, before) == set()


@asynccontextmanager
async def _connect(server: McpHttp, *, terminate_on_close: bool = True) -> AsyncIterator[McpClient]:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120)) as http,
        McpClient(
            streamable_http_client(
                server.url, http_client=http, terminate_on_close=terminate_on_close
            ),
            mode="legacy",  # the stateful protocol: one MCP session (and kernel) per client
            read_timeout_seconds=120,
        ) as client,
    ):
        yield client


def test_every_request_needs_the_token(mcp_http: McpHttp) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": mcp_http.token}):
        refused = httpx.post(mcp_http.url, json=body, headers=headers, trust_env=False)
        assert refused.status_code == 401
        assert mcp_http.token not in refused.text


@pytest.mark.anyio
@_SDK_CLIENT_UNDER_TRIO
async def test_results_and_images_over_http(mcp_http: McpHttp, tiny_png: bytes) -> None:
    encoded = base64.b64encode(tiny_png).decode()
    code = (
        f"from IPython.display import Image\nprint('hi')\n"
        f"Image(data=__import__('base64').b64decode('{encoded}'))"
    )
    async with _connect(mcp_http) as client:
        result = await client.call_tool("execute", {"code": code})
        failed = await client.call_tool("execute", {"code": "raise KeyError('k')"})
    assert not result.is_error
    assert text_of(result).startswith("[stdout]\nhi")
    images = [b for b in result.content if isinstance(b, types.ImageContent)]
    assert [base64.b64decode(i.data) for i in images] == [tiny_png]
    assert failed.is_error
    assert "[error] KeyError: 'k'" in text_of(failed)


@pytest.mark.anyio
@_SDK_CLIENT_UNDER_TRIO
async def test_two_clients_get_separate_kernels_that_end_with_them(
    mcp_http: McpHttp, jupyter_server: RunningServer
) -> None:
    pid = "import os; os.getpid()"
    async with _connect(mcp_http) as first, _connect(mcp_http) as second:
        await first.call_tool("execute", {"code": "mine = 'first'"})
        seen = await second.call_tool("execute", {"code": "mine"})
        assert seen.is_error
        assert "NameError" in text_of(seen)
        pids = {text_of(await c.call_tool("execute", {"code": pid})) for c in (first, second)}
        assert len(pids) == 2
        assert text_of(await first.call_tool("execute", {"code": "mine"})) == "[result]\n'first'"
        # files: each client's tools see only its own folder, which is its code's cwd
        await first.call_tool("write_file", {"path": "mine.txt", "content": "first's"})
        read_back = await first.call_tool("execute", {"code": "open('mine.txt').read()"})
        stolen = await second.call_tool("read_file", {"path": "mine.txt"})
        escaped = await second.call_tool("read_file", {"path": "../mine.txt"})
        listed = await second.call_tool("list_files", {})
        folders = [
            text_of(await c.call_tool("execute", {"code": "__import__('os').getcwd()"}))
            for c in (first, second)
        ]
    assert text_of(read_back) == '[result]\n"first\'s"'
    assert stolen.is_error
    assert escaped.is_error
    assert "mine.txt" not in text_of(listed)
    assert folders[0] != folders[1]
    assert all("jupyter-interp-mcp-" in folder for folder in folders)
    assert await wait_for_kernels(jupyter_server, mcp_http.before) == set()


@pytest.mark.anyio
@_SDK_CLIENT_UNDER_TRIO
async def test_the_kernel_of_a_client_that_vanishes_ends_when_its_session_expires(
    mcp_http: McpHttp, jupyter_server: RunningServer
) -> None:
    async with _connect(mcp_http, terminate_on_close=False) as client:
        done = await client.call_tool("execute", {"code": "left_behind = True"})
        assert not done.is_error
        assert server_kernel_ids(jupyter_server) - mcp_http.before
    # no DELETE: the session expires after 3 idle seconds, and its kernel with it
    assert await wait_for_kernels(jupyter_server, mcp_http.before) == set()
