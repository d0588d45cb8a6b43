"""Helpers for the MCP tests: spawn ``jupyter-interp mcp``, read results, watch kernels."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import anyio
import mcp_types as types
from mcp import StdioServerParameters

from .conftest import server_kernel_ids
from .servers import RunningServer

__all__ = ["names", "stdio_params", "text_of", "wait_for_kernels"]


def stdio_params(url: str, token: str, *args: str) -> StdioServerParameters:
    """Run the MCP server as the console script does, on the Jupyter server at ``url``."""
    command = ["-m", "jupyter_interp.cli", "mcp", "--url", url, "--token", token, *args]
    return StdioServerParameters(command=sys.executable, args=command)


def text_of(result: types.CallToolResult) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def wait_for_kernels(
    server: RunningServer, allowed: set[str], within: float = 60.0
) -> set[str]:
    """Poll until ``server`` runs no kernel outside ``allowed``; return the extra ones left."""
    with anyio.move_on_after(within):
        while extra := server_kernel_ids(server) - allowed:  # noqa: ASYNC110 -- polls a server
            await anyio.sleep(0.25)
    return extra


def names(tools: Sequence[types.Tool]) -> set[str]:
    return {tool.name for tool in tools}
