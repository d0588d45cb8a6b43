"""``create_server``: the jupyter-interp MCP server on top of a ``Client``.

Strategy: a low-level ``mcp.server.lowlevel.Server`` with handlers for tools and
resources; no JSON-RPC of our own. Its lifespan enters a ``KernelPool`` on the given
Client (one warm kernel by default) and holds the per-connection ``ConnectionSessions``:

* stdio: ``Server.run`` enters the lifespan once per connection, so the lifespan's
  single entry (key ``""``) is the connection, and its kernels end when the run ends
  (EOF, a signal, the host killed).
* streamable HTTP: the lifespan is entered once for the app; each MCP session (its
  ``Mcp-Session-Id``) gets its own entry, shut down by the SDK's per-connection exit
  stack when the session is deleted or expires, and by the lifespan's exit otherwise.
  A request without a session id (stateless HTTP) gets kernels for that request only.

Invariants: the Client is the caller's (never entered or closed here); every kernel this
server started is shut down when its connection or the lifespan ends; a failing call
never takes the server down (library errors become tool errors, see ``calls``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import attrs
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from .._version import __version__
from ..client import Client
from ..errors import JupyterInterpError
from ..pool import KernelPool
from .calls import Refused, Reporter, ToolCall, call_tool, describe_error, read_bytes
from .outputs import OUTPUT_URI_PREFIX
from .sessions import ConnectionSessions
from .settings import ServerSettings, connection_sessions, warm_pool
from .tools import TOOLS

__all__ = ["FILE_URI_PREFIX", "ServerSettings", "create_server"]

FILE_URI_PREFIX = "jupyter-interp://files/"
_INSTRUCTIONS = (
    "Runs code in Jupyter kernels. Each connection has its own kernel (more with the "
    "'session' argument); variables persist between execute calls until a restart."
)


@attrs.define
class _State:
    client: Client
    pool: KernelPool | None
    settings: ServerSettings
    connections: dict[str, ConnectionSessions] = attrs.field(factory=dict)

    def new_sessions(self) -> ConnectionSessions:
        return connection_sessions(self.client, self.pool, self.settings)


def _http_session_id(ctx: ServerRequestContext[_State]) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    return None if headers is None else headers.get("mcp-session-id")


@asynccontextmanager
async def _connection(ctx: ServerRequestContext[_State]) -> AsyncIterator[ConnectionSessions]:
    """The sessions of the connection ``ctx`` arrived on (see the module docstring)."""
    state = ctx.lifespan_context
    if ctx.request is None:
        key = ""
    else:
        session_id = _http_session_id(ctx)
        if session_id is None:
            sessions = state.new_sessions()
            try:
                yield sessions
            finally:
                await sessions.aclose()
            return
        key = session_id
    existing = state.connections.get(key)
    if existing is None:
        existing = state.connections[key] = state.new_sessions()
        if key:
            # SDK 2.x hands request handlers the connection only through the session;
            # its exit stack is unwound (shielded) when the HTTP session ends.
            connection = ctx.session._connection
            connection.exit_stack.push_async_callback(_forget, state, key)
    yield existing


async def _forget(state: _State, key: str) -> None:
    sessions = state.connections.pop(key, None)
    if sessions is not None:
        await sessions.aclose()


def _reporter(ctx: ServerRequestContext[_State]) -> Reporter | None:
    if not ctx.meta or "progress_token" not in ctx.meta:
        return None

    async def report(elapsed: float, lines: str) -> None:
        message = f"running for {elapsed:.0f} s" + (f"; latest output:\n{lines}" if lines else "")
        await ctx.session.report_progress(round(elapsed, 1), message=message)

    return report


async def _list_tools(
    ctx: ServerRequestContext[_State], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def _call_tool(
    ctx: ServerRequestContext[_State], params: types.CallToolRequestParams
) -> types.CallToolResult:
    state = ctx.lifespan_context
    async with _connection(ctx) as sessions:
        call = ToolCall(
            sessions=sessions,
            client=state.client,
            limits=state.settings.limits,
            report=_reporter(ctx),
        )
        return await call_tool(call, params.name, params.arguments)


async def _list_resources(
    ctx: ServerRequestContext[_State], params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    async with _connection(ctx) as sessions:
        return types.ListResourcesResult(
            resources=[
                types.Resource(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type=mime, size=size)
                for uri, mime, size in sessions.outputs.items()
            ]
        )


async def _list_templates(
    ctx: ServerRequestContext[_State], params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    template = types.ResourceTemplate(
        name="file",
        uri_template=FILE_URI_PREFIX + "{session}/{+path}",
        description="A file under the session's file root (session 'default' unless named).",
    )
    return types.ListResourceTemplatesResult(resource_templates=[template])


async def _read_resource(
    ctx: ServerRequestContext[_State], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    async with _connection(ctx) as sessions:
        if uri.startswith(OUTPUT_URI_PREFIX):
            found = sessions.outputs.get(uri)
            if found is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"no kept output {uri}")
            mime, data = found
        elif uri.startswith(FILE_URI_PREFIX) and "/" in uri[len(FILE_URI_PREFIX) :]:
            name, path = uri[len(FILE_URI_PREFIX) :].split("/", 1)
            call = ToolCall(
                sessions=sessions,
                client=ctx.lifespan_context.client,
                limits=ctx.lifespan_context.settings.limits,
            )
            try:
                data = await read_bytes(call, name, path)
            except JupyterInterpError as exc:
                raise MCPError(code=types.INVALID_PARAMS, message=describe_error(exc)) from None
            except Refused as exc:
                raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None
            mime = "application/octet-stream"
        else:
            raise MCPError(code=types.INVALID_PARAMS, message=f"unknown resource {uri}")
    blob = base64.b64encode(data).decode()
    return types.ReadResourceResult(
        contents=[types.BlobResourceContents(uri=uri, blob=blob, mime_type=mime)]
    )


def create_server(
    client: Client,
    settings: ServerSettings | None = None,
    *,
    pool: KernelPool | None = None,
    stdio_connection: ConnectionSessions | None = None,
) -> Server[Any]:
    """The MCP server object for ``client`` (entered by the caller, kept open while
    the server runs). Serve it with ``Server.run`` on stdio streams, or mount
    ``jupyter_interp.mcp.http_app`` for streamable HTTP. Kernels come warm from
    ``pool`` (the caller's, entered) or else from a pool of the server's own (see
    ``settings.pool_size``). ``stdio_connection``: the sessions of the one stdio
    connection, made (and perhaps started, see ``ConnectionSessions.prestart``) by the
    caller for one ``Server.run``; they are closed when it ends, like any others."""
    settings = settings or ServerSettings()

    @asynccontextmanager
    async def lifespan(_: Server[Any]) -> AsyncIterator[_State]:
        async with AsyncExitStack() as stack:
            warm = pool or await stack.enter_async_context(warm_pool(client, settings))
            state = _State(client=client, pool=warm, settings=settings)
            if stdio_connection is not None:
                state.connections[""] = stdio_connection
            try:
                yield state
            finally:
                with anyio.CancelScope(shield=True):
                    for key in list(state.connections):
                        await _forget(state, key)

    return Server(
        "jupyter-interp",
        version=__version__,
        instructions=_INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
        on_list_resources=_list_resources,
        on_list_resource_templates=_list_templates,
        on_read_resource=_read_resource,
    )
