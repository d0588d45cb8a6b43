"""What a cell shows reaches a caller of the gateway's REST API and its client helper.

The gateway's REST layer keeps six keys of an execute result and seven of a history
entry, its file route takes one path segment, and its Python client's
``CodeInterpreter.execute`` prints only stdout, stderr and ``error`` ("(no output)"
otherwise). These stand-ins reproduce exactly that in front of the provider, on
Jupyter Server, Kernel Gateway and Enterprise Gateway.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from jupyter_interp.provider import JupyterCodeInterpreterProvider

from .conftest import ServerUnderTest
from .provider_harness import PNG, provider_for

pytestmark = pytest.mark.anyio

EXECUTE_KEYS = ("session_id", "stdout", "stderr", "exit_code", "result", "error")
HISTORY_KEYS = ("timestamp", "code", "language", "stdout", "stderr", "exit_code", "result")
#: a cell that shows a PNG, Markdown and HTML, and prints nothing
RICH_CELL = (
    "from IPython.display import HTML, Image, Markdown, display\n"
    f"display(Image(data={PNG!r}))\n"
    "display(Markdown('**bold** claim'))\n"
    "display(HTML('<table><tr><td>1</td></tr></table>'))\n"
)
_LIMIT = 120


class RestGateway:
    """The gateway's REST shapes and routes in front of one provider."""

    def __init__(self, provider: JupyterCodeInterpreterProvider) -> None:
        self.provider = provider

    async def execute(self, session_id: str, code: str) -> dict[str, Any]:
        full = await self.provider.execute(session_id, code)
        return {key: full.get(key) for key in EXECUTE_KEYS}

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        entries = await self.provider.get_execution_history(session_id)
        return [{key: entry.get(key) for key in HISTORY_KEYS} for entry in entries]

    async def download(self, session_id: str, filename: str) -> bytes:
        if "/" in filename:  # GET .../files/{filename}: one segment, %2F included
            raise LookupError(f"the route has no file {filename!r} (HTTP 404)")
        return await self.provider.download_file(session_id, filename)


def client_helper_text(result: dict[str, Any]) -> str:
    """What the gateway's ``CodeInterpreter.execute`` returns to its caller."""
    parts = []
    if result.get("stdout"):
        parts.append(f"stdout:\n{result['stdout']}")
    if result.get("stderr"):
        parts.append(f"stderr:\n{result['stderr']}")
    if result.get("error"):
        parts.append(f"error: {result['error']}")
    return "\n".join(parts) or "(no output)"


async def test_rich_outputs_reach_rest_callers_as_files_they_can_fetch(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    provider = provider_for(any_server, tmp_path)
    gateway = RestGateway(provider)
    try:
        with anyio.fail_after(_LIMIT):
            sid = (await provider.start_session())["session_id"]
            shown = await gateway.execute(sid, RICH_CELL)
            full = await provider.execute(sid, RICH_CELL)
            named = re.findall(r"(output-[\w.-]+) \(([\w/+.-]+), ", shown["stdout"])
            fetched = {name: await gateway.download(sid, name) for name, _ in named}
            await provider.stop_session(sid)
    finally:
        await provider.close()

    printed = client_helper_text(shown)
    assert printed.startswith("stdout:\n[jupyter-interp] displayed:\n")
    assert "3 rich outputs saved as files" in printed
    assert [mime for _, mime in named] == ["image/png", "text/markdown", "text/html"]
    assert fetched[named[0][0]] == PNG
    assert fetched[named[1][0]] == b"**bold** claim"
    assert b"<table>" in fetched[named[2][0]]
    assert shown["result"] == "**bold** claim\n1"  # the displays' text: no expression value
    assert shown["exit_code"] == 0
    assert shown["error"] is None
    assert [out["mime_type"] for out in full["outputs"]] == [mime for _, mime in named]
    assert all("/" not in out["file"] for out in full["outputs"])
    assert full["outputs"][0]["size"] == len(PNG)
    assert len(json.dumps(full)) < 2000  # no base64 inlined


async def test_notes_can_be_turned_off_for_callers_that_parse_stdout(
    jupyter_server: Any, tmp_path: Path
) -> None:
    server = ServerUnderTest(jupyter_server.url, jupyter_server.token, "jupyter_server")
    provider = provider_for(server, tmp_path, output_notes="false")
    gateway = RestGateway(provider)
    try:
        with anyio.fail_after(_LIMIT):
            sid = (await provider.start_session())["session_id"]
            shown = await gateway.execute(sid, "print('exact')\n" + RICH_CELL)
            await provider.stop_session(sid)
    finally:
        await provider.close()

    assert shown["stdout"] == "exact\n"
    assert "**bold** claim" in shown["result"]


async def test_errors_reach_the_history_the_gateway_keeps(
    any_server: ServerUnderTest, tmp_path: Path
) -> None:
    provider = provider_for(any_server, tmp_path, execution_timeout="1")
    gateway = RestGateway(provider)
    try:
        with anyio.fail_after(_LIMIT):
            sid = (await provider.start_session())["session_id"]
            await gateway.execute(sid, "import time\ntime.sleep(30)")
            await gateway.execute(sid, "1/0")
            history = await gateway.history(sid)
            await provider.stop_session(sid)
    finally:
        await provider.close()

    slow, failed = history
    assert slow["exit_code"] == 124
    assert "[jupyter-interp] " in slow["stderr"]
    assert "timed out" in slow["stderr"]
    assert failed["exit_code"] == 1
    assert "ZeroDivisionError" in failed["stderr"]
