"""What the MCP server starts and how much one call may carry; its warm kernel pool.

Strategy: plain frozen values, one async context manager and a factory of a
connection's sessions, importing nothing of the MCP SDK, so the command line can start
the first kernel while the SDK (a few hundred milliseconds of imports) is still loading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from ..client import Client
from ..pool import KernelPool
from .sessions import ConnectionSessions

__all__ = ["Limits", "ServerSettings", "connection_sessions", "warm_pool"]


@attrs.frozen(kw_only=True)
class Limits:
    """Per-call limits: inline image bytes, bytes a file tool moves, default timeout."""

    image_budget: int = 1024 * 1024
    file_budget: int = 16 * 1024 * 1024
    timeout: float | None = None


@attrs.frozen(kw_only=True)
class ServerSettings:
    """What the MCP server starts and how much one call may carry.

    Attributes:
        kernel: kernelspec for new sessions (None: the server's default).
        language: pick the kernelspec by language instead.
        file_root: kernel-side directory the file tools are confined to.
        pool_size: warm kernels kept ready (0: start every kernel on demand).
        limits: per-call image budget, file budget and default timeout.
        sessions_per_connection: most named sessions one connection may hold.
    """

    kernel: str | None = None
    language: str | None = None
    file_root: str = ""
    pool_size: int = 1
    limits: Limits = attrs.field(factory=Limits)
    sessions_per_connection: int = 8


@asynccontextmanager
async def warm_pool(client: Client, settings: ServerSettings) -> AsyncIterator[KernelPool | None]:
    """A ``KernelPool`` of ``settings.pool_size`` kernels of the configured kernelspec,
    else of the server's default (pooled as ``None``, so warming starts at once, with no
    request to learn its name), warming from entry; None when the size is 0."""
    if settings.pool_size == 0:
        yield None
        return
    name = await client.resolve_kernel_name(settings.kernel, settings.language)
    async with KernelPool(client, {name: settings.pool_size}) as pool:
        yield pool


def connection_sessions(
    client: Client, pool: KernelPool | None, settings: ServerSettings
) -> ConnectionSessions:
    """The sessions of one new MCP connection, as ``settings`` configure them."""
    return ConnectionSessions(
        client,
        pool,
        kernel=settings.kernel,
        language=settings.language,
        file_root=settings.file_root,
        limit=settings.sessions_per_connection,
    )
