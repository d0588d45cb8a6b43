"""The MCP server over stdio, driven by the SDK's own client in a spawned process.

One ``jupyter-interp mcp`` process per backend serves the whole module (its server and
its client run on that backend), on the shared Jupyter Server with a small image budget
and output cap so budgets are cheap to exceed. Its teardown proves that closing stdin
leaves no kernel on the server, the pool's warm kernel included.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator

import anyio
import mcp_types as types
import pytest
from mcp import Client as McpClient
from mcp.shared.exceptions import MCPError

from .conftest import server_kernel_ids
from .mcp_clients import names, stdio_params, text_of, wait_for_kernels
from .servers import RunningServer


@pytest.fixture(
    scope="module", params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def mcp(
    anyio_backend: str, jupyter_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[McpClient]:
    before = server_kernel_ids(jupyter_server)
    root = tmp_path_factory.mktemp("mcp-root")
    params = stdio_params(
        jupyter_server.url,
        jupyter_server.token,
        *("--backend", anyio_backend, "--file-root", str(root)),
        *("--image-budget", "100", "--max-output", "2000", "--timeout", "60"),
    )
    async with McpClient(params, read_timeout_seconds=120) as client:
        yield client
    assert await wait_for_kernels(jupyter_server, before) == set()


async def _run(mcp: McpClient, code: str, **arguments: object) -> types.CallToolResult:
    return await mcp.call_tool("execute", {"code": code, **arguments})


async def test_tools_have_schemas_and_descriptions(mcp: McpClient) -> None:
    tools = (await mcp.list_tools()).tools
    assert names(tools) == {
        "execute", "interrupt", "restart", "list_files", "read_file", "write_file", "list_kernels"
    }  # fmt: skip
    execute = next(tool for tool in tools if tool.name == "execute")
    assert execute.input_schema["required"] == ["code"]
    assert execute.input_schema["additionalProperties"] is False
    assert all(tool.description for tool in tools)
    assert all("description" in p for p in execute.input_schema["properties"].values())
    listed = text_of(await mcp.call_tool("list_kernels", {}))
    assert "python3 (python)" in listed


async def test_text_and_error_results(mcp: McpClient) -> None:
    ok = await _run(mcp, "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7")
    assert not ok.is_error
    assert text_of(ok) == "[stdout]\nout\n[stderr]\nerr\n[result]\n42"
    failed = await _run(mcp, "def f():\n    1 / 0\nf()")
    assert failed.is_error
    assert "[error] ZeroDivisionError: division by zero" in text_of(failed)
    assert "\x1b" not in text_of(failed)
    assert "----> 2" in text_of(failed)


async def test_images_inline_within_budget_then_as_links(mcp: McpClient, tiny_png: bytes) -> None:
    encoded = base64.b64encode(tiny_png).decode()
    code = (
        "from IPython.display import Image, display\n"
        f"png = __import__('base64').b64decode('{encoded}')\n"
        "display(Image(data=png)); display(Image(data=png))"
    )
    result = await _run(mcp, code)
    images = [b for b in result.content if isinstance(b, types.ImageContent)]
    links = [b for b in result.content if isinstance(b, types.ResourceLink)]
    assert [base64.b64decode(i.data) for i in images] == [tiny_png]  # 2 x 70 B > 100 B budget
    assert len(links) == 1
    assert links[0].mime_type == "image/png"
    read = await mcp.read_resource(str(links[0].uri))
    blob = read.contents[0]
    assert isinstance(blob, types.BlobResourceContents)
    assert base64.b64decode(blob.blob) == tiny_png
    listed = (await mcp.list_resources()).resources
    assert str(links[0].uri) in {str(r.uri) for r in listed}


async def test_progress_reports_the_latest_output_of_a_3_second_cell(mcp: McpClient) -> None:
    reports: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, message))

    code = "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(1)"
    result = await mcp.call_tool("execute", {"code": code}, progress_callback=on_progress)
    assert not result.is_error
    assert len(reports) >= 2
    assert [p for p, _ in reports] == sorted(p for p, _ in reports)
    assert any("tick 1" in (m or "") for _, m in reports)


async def test_cancellation_interrupts_the_kernel(mcp: McpClient) -> None:
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    code = "import time\nn = 0\nwhile True:\n    n += 1\n    time.sleep(0.05)"
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: mcp.call_tool("execute", {"code": code}, progress_callback=on_progress)
            )
            await started.wait()
            tg.cancel_scope.cancel()
        after = await _run(mcp, "n > 0")  # the loop stopped, its state survived the interrupt
    assert text_of(after) == "[result]\nTrue"


async def test_timeout_and_truncation_and_input_are_typed_outcomes(mcp: McpClient) -> None:
    timed_out = await _run(mcp, "import time; time.sleep(30)", timeout=1)
    assert timed_out.is_error
    assert timed_out.structured_content is not None
    assert timed_out.structured_content["status"] == "timed_out"
    assert "the run timed out; the kernel was interrupted" in text_of(timed_out)
    big = await _run(mcp, "print('x' * 50_000)")
    assert "stdout truncated: 50001 bytes produced" in text_of(big)
    assert len(text_of(big)) < 3000
    asked = await _run(mcp, "input('name? ')")
    assert asked.is_error
    assert "asked for input" in text_of(asked)


async def test_files_round_trip_5_mb(mcp: McpClient) -> None:
    payload = os.urandom(5 * 1024 * 1024)
    written = await mcp.call_tool(
        "write_file",
        {
            "path": "big/blob.bin",
            "content": base64.b64encode(payload).decode(),
            "encoding": "base64",
        },
    )
    assert not written.is_error, text_of(written)
    listed = text_of(await mcp.call_tool("list_files", {"path": "big"}))
    assert listed == f"blob.bin  ({len(payload)} bytes)"
    read = await mcp.call_tool("read_file", {"path": "big/blob.bin", "encoding": "base64"})
    assert base64.b64decode(text_of(read)) == payload
    await mcp.call_tool("write_file", {"path": "note.txt", "content": "héllo"})
    assert text_of(await mcp.call_tool("read_file", {"path": "note.txt"})) == "héllo"
    resource = (await mcp.read_resource("jupyter-interp://files/default/note.txt")).contents[0]
    assert isinstance(resource, types.BlobResourceContents)
    assert base64.b64decode(resource.blob) == "héllo".encode()


async def test_named_sessions_are_separate_kernels(mcp: McpClient) -> None:
    await _run(mcp, "only_here = 1")
    other = await _run(mcp, "only_here", session="second")
    assert other.is_error
    assert "NameError" in text_of(other)
    restarted = await mcp.call_tool("restart", {"session": "second"})
    assert "state are lost" in text_of(restarted)
    assert text_of(await _run(mcp, "only_here")) == "[result]\n1"


async def test_bad_input_gets_clear_errors_and_the_server_keeps_serving(mcp: McpClient) -> None:
    with pytest.raises(MCPError, match="invalid arguments for execute: code: Field required"):
        await mcp.call_tool("execute", {"timeout": 5})
    with pytest.raises(MCPError, match="timeout: Input should be greater than 0"):
        await _run(mcp, "1", timeout=-1)
    with pytest.raises(MCPError, match="unknown tool 'nope'"):
        await mcp.call_tool("nope", {})
    escape = await mcp.call_tool("read_file", {"path": "../../etc/passwd"})
    assert escape.is_error
    assert "outside the session's file root" in text_of(escape)
    bad = await mcp.call_tool("write_file", {"path": "x", "content": "***", "encoding": "base64"})
    assert bad.is_error
    assert text_of(bad) == "content is not valid base64"
    huge = await _run(mcp, "x = '" + "a" * (11 * 1024 * 1024) + "'")
    assert huge.is_error
    assert "over the server's WebSocket message limit" in text_of(huge)
    assert text_of(await _run(mcp, "1 + 1")) == "[result]\n2"


async def test_the_connections_kernel_starts_before_its_first_call_and_no_spare_beside_it(
    anyio_backend: str, jupyter_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # stdio serves one connection: its kernel starts at once (the first call finds it in
    # its folder), and no warm spare is kept beside it
    before = server_kernel_ids(jupyter_server)
    root = tmp_path_factory.mktemp("mcp-prestart")
    options = ("--file-root", str(root), "--backend", anyio_backend)
    params = stdio_params(jupyter_server.url, jupyter_server.token, *options)
    with anyio.fail_after(120):
        async with McpClient(params, read_timeout_seconds=120) as client:
            while not (started := server_kernel_ids(jupyter_server) - before):  # noqa: ASYNC110
                await anyio.sleep(0.1)  # polls a server
            working_directory = text_of(await _run(client, "import os; print(os.getcwd())"))
            await anyio.sleep(1)  # a spare would be asked for as soon as one is taken
            after_call = server_kernel_ids(jupyter_server) - before
        assert await wait_for_kernels(jupyter_server, before) == set()

    assert len(started) == 1
    assert after_call == started
    assert working_directory.startswith(f"[stdout]\n{root}/jupyter-interp-mcp-")
