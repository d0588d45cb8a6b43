"""MCP target: from spawning ``jupyter-interp mcp`` (stdio) to the first execute result.

Method: interleaved round by round, with rotating order, on the server an MCP host
registering ``jupyter-interp mcp`` gets by default (the embedded one each command
starts: the target), then on one Jupyter Server already running (``JUPYTER_URL``):

* ``exec``: spawn the one-shot ``jupyter-interp exec 'print(1+1)'`` and wait for ``2``
  on its stdout, which it prints as the stream arrives (its kernel's and server's
  shutdown and its exit happen after the timed part). The cell prints rather than
  returns its value: ``exec`` prints a value in its summary, after its shutdown, which
  would put that shutdown into ``exec``'s time;
* ``mcp_stdio``: spawn ``jupyter-interp mcp`` through the MCP SDK's stdio client, do the
  protocol handshake, call ``execute`` with the same cell and get the result (closing
  stdin, which ends the server and its kernels, happens after the timed part).

Both start one kernel cold (the MCP server's warm pool starts one at once, which its
first call waits for rather than racing it). A running server's URL and token reach
the children through the environment, never their command lines. Target: on the
embedded default, ``mcp_stdio`` median <= ``exec`` median; the running server's ratio
is printed beside it (there the SDK's import is not hidden behind a server's start).
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from mcp import Client as McpClient
from mcp import StdioServerParameters

from jupyter_interp.local import LocalJupyterServer

from ._harness import (
    Options,
    Report,
    embedded_environment,
    interleave,
    jupyter_server,
    parse_options,
)

__all__ = ["server_env", "stdio_server"]

CELL = "print(1+1)"


def server_env(server: LocalJupyterServer) -> dict[str, str]:
    return {**os.environ, "JUPYTER_URL": server.url, "JUPYTER_TOKEN": server.token}


def stdio_server(env: dict[str, str], *args: str) -> StdioServerParameters:
    """How an MCP host would run ``jupyter-interp mcp`` with ``env``."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "jupyter_interp.cli", "mcp", *args], env=env
    )


async def _race(report: Report, phase: str, env: dict[str, str], rounds: int, warmup: int) -> float:
    """Interleave the two contenders on ``env``'s server; return the ratio of medians."""

    async def one_shot() -> anyio.abc.Process:
        command = [sys.executable, "-m", "jupyter_interp.cli", "exec", CELL]
        process = await anyio.open_process(command, env=env)
        assert process.stdout is not None
        output = b""
        while b"2\n" not in output:
            output += await process.stdout.receive()
        return process

    async def reap(process: anyio.abc.Process) -> None:
        async with process:
            await process.wait()

    async def first_result() -> AsyncExitStack:
        stack = AsyncExitStack()
        mcp = await stack.enter_async_context(McpClient(stdio_server(env)))
        result = await mcp.call_tool("execute", {"code": CELL})
        assert not result.is_error
        return stack

    async def close(stack: AsyncExitStack) -> None:
        await stack.aclose()

    contenders: dict[str, Any] = {"exec": one_shot, "mcp_stdio": first_result}
    after: dict[str, Any] = {"exec": reap, "mcp_stdio": close}
    samples = await interleave(contenders, rounds=rounds, warmup=warmup, after=after)
    medians = {
        name: report.timing(f"{phase}.{name}", values).median for name, values in samples.items()
    }
    ratio = medians["mcp_stdio"] / medians["exec"]
    report.figure(f"{phase}.ratio_vs_exec", ratio, "x")
    return ratio


async def _run(options: Options) -> None:
    report = Report("mcp_start", smoke=options.smoke)
    rounds, warmup = (1, 0) if options.smoke else (9, 1)
    with tempfile.TemporaryDirectory(prefix="bench-mcp-start-") as no_shared_server:
        embedded = embedded_environment(Path(no_shared_server))
        ratio = await _race(report, "embedded", embedded, rounds, warmup)
    report.target(
        "on the embedded default, MCP spawn-to-first-result median <= one-shot exec",
        ratio <= 1.0,
        f"{ratio:.3f}x",
    )
    if options.smoke:
        return
    async with jupyter_server() as server:
        ratio = await _race(report, "running_server", server_env(server), 15, 1)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_run, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
