"""MCP target: a trivial cell through the MCP server over stdio vs the library directly.

Method: one private Jupyter Server; one ``jupyter-interp mcp`` process on it (spawned
over stdio by the MCP SDK's own client, the way an MCP host runs it) and one ``Session``
opened directly by this process, each on its own kernel. Interleaved round by round,
with rotating order, each contender runs ``1+1`` once:

* ``direct``: ``Session.execute``;
* ``mcp_stdio``: ``tools/call execute`` through the SDK client, the JSON-RPC framing on
  both sides, the server's ``Session.stream`` and the result's rendering for a model.

Target: ``mcp_stdio`` median <= 1.5x ``direct``.
"""

from __future__ import annotations

import sys

import anyio
from mcp import Client as McpClient

from jupyter_interp.client import Client

from ._harness import Options, Report, interleave, jupyter_server, parse_options
from .mcp_start import server_env, stdio_server

CODE = "1+1"
RATIO = 1.5


async def _run(options: Options) -> None:
    report = Report("mcp_latency", smoke=options.smoke)
    rounds, warmup = (2, 1) if options.smoke else (200, 20)
    async with (
        jupyter_server() as server,
        Client(server.url, token=server.token) as client,
        client.session("python3") as session,
        McpClient(stdio_server(server_env(server), "--pool", "0"), read_timeout_seconds=120) as mcp,
    ):

        async def through_mcp() -> None:
            result = await mcp.call_tool("execute", {"code": CODE})
            assert not result.is_error

        async def direct() -> None:
            (await session.execute(CODE)).raise_for_error()

        samples = await interleave(
            {"direct": direct, "mcp_stdio": through_mcp}, rounds=rounds, warmup=warmup
        )
    medians = {name: report.timing(name, values).median for name, values in samples.items()}
    ratio = medians["mcp_stdio"] / medians["direct"]
    report.figure("ratio_vs_direct", ratio, "x")
    report.target(
        f"MCP execute over stdio median <= {RATIO}x Session.execute",
        ratio <= RATIO,
        f"{ratio:.3f}x ({medians['mcp_stdio'] * 1e3:.2f} ms vs {medians['direct'] * 1e3:.2f} ms)",
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_run, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
