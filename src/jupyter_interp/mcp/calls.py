"""What each MCP tool does, on a connection's sessions.

Strategy: every tool is a coroutine taking the validated arguments and returning a
``CallToolResult``. ``execute`` streams the run so that, when the client sent a progress
token, a ticker reports progress about once a second with the latest output lines
(hosts with tool-call timeouts keep waiting while a cell runs). A cancelled call is
cancelled inside ``Session.stream``, which interrupts the kernel (then restarts it if
it does not stop) before the cancellation goes on; per the MCP specification no
response is sent for a cancelled request. Library errors become tool errors with a
plain sentence (``isError``), so the server keeps serving.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import mcp_types as types

from ..client import Client
from ..errors import (
    ConnectError,
    JupyterInterpError,
    PathNotConfined,
    RemoteFileNotFound,
    TransportError,
)
from ..protocol.events import ExecutionFinished, StreamText
from ..protocol.files.replies import EntryKind
from ..protocol.result import ExecutionResult
from . import tools
from .results import tool_result
from .sessions import ConnectionSessions
from .settings import Limits

__all__ = [
    "Refused",
    "Reporter",
    "ToolCall",
    "call_tool",
    "describe_error",
    "error_result",
    "read_bytes",
    "text_result",
]

#: how often a running cell reports progress, and how many output lines it quotes
PROGRESS_INTERVAL = 1.0
PROGRESS_LINES = 5

Reporter = Callable[[float, str], Awaitable[None]]


class Refused(Exception):
    """A request this server will not carry out (too large); the message says why."""


@attrs.frozen(kw_only=True)
class ToolCall:
    """One call's context: the connection's sessions, the Client, limits, a reporter."""

    sessions: ConnectionSessions
    client: Client
    limits: Limits
    report: Reporter | None = None


def text_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def describe_error(exc: JupyterInterpError) -> str:
    """A plain sentence for a library error."""
    if isinstance(exc, PathNotConfined):
        return f"the path is outside the session's file root: {exc}"
    if isinstance(exc, RemoteFileNotFound):
        return f"no such file: {exc}"
    if isinstance(exc, (ConnectError, TransportError)):
        return f"the Jupyter server cannot be reached: {exc}"
    return f"{type(exc).__name__}: {exc}"


async def _execute(call: ToolCall, args: tools.Execute) -> types.CallToolResult:
    session = await call.sessions.get(args.session, kernel=args.kernel, language=args.language)
    timeout = args.timeout if args.timeout is not None else call.limits.timeout
    tail: deque[str] = deque(maxlen=PROGRESS_LINES)
    pending = [""]
    result: ExecutionResult | None = None

    async def tick(report: Reporter) -> None:
        started = anyio.current_time()
        while True:
            await anyio.sleep(PROGRESS_INTERVAL)
            await report(anyio.current_time() - started, "\n".join([*tail, pending[0]]).strip())

    async with anyio.create_task_group() as tg:
        if call.report is not None:
            tg.start_soon(tick, call.report)
        try:
            async for event in session.stream(args.code, timeout=timeout):
                if isinstance(event, StreamText):
                    *done, pending[0] = (pending[0] + event.text).split("\n")
                    tail.extend(done)
                elif isinstance(event, ExecutionFinished):
                    result = event.result
        except JupyterInterpError as exc:  # raised as is, not inside an exception group
            failure: JupyterInterpError | None = exc
        else:
            failure = None
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert result is not None  # ExecutionFinished is always the last event
    return tool_result(result, call.sessions.outputs, call.limits.image_budget)


async def _interrupt(call: ToolCall, args: tools.SessionOnly) -> types.CallToolResult:
    session = call.sessions.existing(args.session)
    if session is None:
        return text_result(f"session {args.session!r} has no kernel yet: nothing to interrupt")
    await session.interrupt()
    return text_result("interrupt sent to the kernel")


async def _restart(call: ToolCall, args: tools.SessionOnly) -> types.CallToolResult:
    session = call.sessions.existing(args.session)
    if session is None:
        return text_result(f"session {args.session!r} has no kernel yet: nothing to restart")
    await session.restart()
    return text_result("the kernel was restarted: all variables, imports and state are lost")


async def _list_files(call: ToolCall, args: tools.ListFiles) -> types.CallToolResult:
    session = await call.sessions.get(args.session)
    listing = await session.files.list_dir(args.path)
    lines = [
        f"{e.name}/"
        if e.kind is EntryKind.DIRECTORY
        else f"{e.name}  ({e.size} bytes)"
        if e.size is not None
        else f"{e.name}  ({e.kind.value})"
        for e in listing.entries
    ]
    return text_result("\n".join(lines) if lines else f"{args.path or '.'} is empty")


async def read_bytes(call: ToolCall, session_name: str, path: str) -> bytes:
    """A file's bytes; ``Refused`` beyond the file budget."""
    session = await call.sessions.get(session_name)
    stat = await session.files.stat(path)
    if stat.size > call.limits.file_budget:
        raise Refused(
            f"{path} has {stat.size} bytes; this server returns at most "
            f"{call.limits.file_budget} bytes per file: read a part of it with code instead"
        )
    return await session.download(path)


async def _read_file(call: ToolCall, args: tools.ReadFile) -> types.CallToolResult:
    data = await read_bytes(call, args.session, args.path)
    if args.encoding == "base64":
        return text_result(base64.b64encode(data).decode())
    try:
        return text_result(data.decode("utf-8"))
    except UnicodeDecodeError:
        return error_result(f"{args.path} is not UTF-8 text: read it with encoding 'base64'")


async def _write_file(call: ToolCall, args: tools.WriteFile) -> types.CallToolResult:
    if args.encoding == "base64":
        try:
            data = base64.b64decode(args.content, validate=True)
        except (binascii.Error, ValueError):
            return error_result("content is not valid base64")
    else:
        data = args.content.encode("utf-8")
    if len(data) > call.limits.file_budget:
        return error_result(
            f"the content has {len(data)} bytes; this server writes at most "
            f"{call.limits.file_budget} bytes per call"
        )
    session = await call.sessions.get(args.session)
    committed = await session.upload(args.path, data)
    return text_result(f"wrote {committed.size} bytes to {args.path} (sha256 {committed.sha256})")


async def _list_kernels(call: ToolCall, args: tools.NoArguments) -> types.CallToolResult:
    specs = await call.client.kernelspecs()
    lines = [
        f"{name} ({spec.language}){'  [default]' if name == specs.default else ''}"
        for name, spec in sorted(specs.specs.items())
    ]
    return text_result("\n".join(lines) or "the server offers no kernels")


_CALLS: dict[str, Callable[[ToolCall, Any], Awaitable[types.CallToolResult]]] = {
    "execute": _execute,
    "interrupt": _interrupt,
    "restart": _restart,
    "list_files": _list_files,
    "read_file": _read_file,
    "write_file": _write_file,
    "list_kernels": _list_kernels,
}


async def call_tool(
    call: ToolCall, name: str, arguments: dict[str, Any] | None
) -> types.CallToolResult:
    """Run tool ``name``; bad arguments raise ``MCPError``, failures are tool errors."""
    args = tools.parse_arguments(name, arguments)
    try:
        return await _CALLS[name](call, args)
    except JupyterInterpError as exc:
        return error_result(describe_error(exc))
    except Refused as exc:
        return error_result(str(exc))
