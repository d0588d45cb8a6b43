"""A loopback TCP proxy the fault tests control: cut connections, refuse new ones.

Theory of operation
-------------------
``TcpProxy`` listens on an ephemeral port of 127.0.0.1 and forwards every accepted
connection to one upstream ``host:port`` with two pump tasks (one per direction) inside
a cancel scope of its own. ``cut()`` ends every connection open at that moment the
abrupt way: the pumps are cancelled and both sockets are closed with ``SO_LINGER`` 0,
so each peer sees a TCP reset rather than an orderly close, and whatever bytes were in
flight inside the proxy are discarded, as on a real network failure. While
``refusing`` is true, new connections are reset as soon as they are accepted (the
listener stays bound, so the port cannot be taken by anything else meanwhile). While
``websocket_drops`` is above zero, the next kernel WebSocket (a ``/channels`` request)
is reset as soon as the server's first bytes (its ``101``) have reached the client, as
a loaded server that hangs up during the readiness exchange does; ``websocket_delays``
holds the ``101`` back and the reset off by that many seconds. While
``silent_websockets`` is above zero, the next kernel WebSocket gets its ``101`` and
then nothing more from the server, as from a kernel that never answers. While ``swallowing``
is true, what the server sends is read and thrown away, as a network that lost the
path to the client while the server's socket still looks open. After
``hold_websocket_input()``, what clients send on kernel WebSockets already open is held
back until another kernel WebSocket opens, as a kernel that leaves a request unread
until a new connection reaches it (ipykernel 7.0-7.3).

Invariants: the proxy owns its task group (``async with``); leaving it closes the
listener and resets every open connection; nothing but 127.0.0.1 is ever bound or
dialled.
"""

from __future__ import annotations

import socket
import struct
from types import TracebackType

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskGroup
from anyio.streams.stapled import MultiListener

__all__ = ["TcpProxy"]

_CHUNK = 65536


def _reset(stream: SocketStream) -> None:
    """Make the coming close of ``stream`` send a TCP reset (SO_LINGER with timeout 0)."""
    raw: socket.socket = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``upstream_host:upstream_port`` until cut.

    Attributes:
        port: the local port to connect to (set once entered).
        refusing: while true, new connections are reset on accept.
        accepted: how many connections were accepted (refused ones included).
        cuts: how many connections ``cut()`` has reset so far.
        websocket_drops: how many of the next kernel WebSockets to reset right after
            their upgrade reached the client.
        websocket_delays: seconds to hold such an upgrade back, and then its reset.
        silent_websockets: how many of the next kernel WebSockets get nothing from the
            server after their upgrade.
        swallowing: while true, bytes from the server are discarded, not forwarded.
        admission: while set, new connections are accepted but wait on it before they
            reach the server (``hold_new_connections``).
        request_lines: the first line each forwarded connection sent (HTTP request
            lines: which paths, e.g. WebSocket URLs with their session ids, went by).
        websocket_upgrades: how many kernel WebSockets got their server's first bytes
            (the ``101``) through the pumps.
    """

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._scopes: set[anyio.CancelScope] = set()
        self._server_sides_kept: set[anyio.CancelScope] = set()
        self._task_group: TaskGroup | None = None
        self.port = 0
        self.refusing = False
        self.swallowing = False
        self.accepted = 0
        self.cuts = 0
        self.websocket_drops = 0
        self.websocket_delays = (0.0, 0.0)
        self.silent_websockets = 0
        self.request_lines: list[str] = []
        self._forwarded = anyio.Event()
        self._holding = False
        self._released = anyio.Event()
        self.websocket_upgrades = 0
        self._upgraded = anyio.Event()
        self.admission: anyio.Event | None = None

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> TcpProxy:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(SocketAttribute.local_port)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._serve, listener)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        return await self._task_group.__aexit__(exc_type, exc, tb)

    async def _serve(self, listener: MultiListener[SocketStream]) -> None:
        async with listener:
            await listener.serve(self._handle)

    def cut(self, *, keep_server_side: bool = False) -> int:
        """Reset every open connection now; returns how many there were.

        ``keep_server_side``: reset only the client's side and leave the server's open
        and silent until the proxy exits (a path that died without the server noticing).
        """
        scopes = list(self._scopes)
        for scope in scopes:
            if keep_server_side:
                self._server_sides_kept.add(scope)
            scope.cancel()
        self.cuts += len(scopes)
        return len(scopes)

    def hold_new_connections(self) -> None:
        """Accept new connections but forward none until ``admit_new_connections``."""
        self.admission = anyio.Event()

    def admit_new_connections(self) -> None:
        """Let the held connections, and every later one, through."""
        if self.admission is not None:
            self.admission.set()
            self.admission = None

    def hold_websocket_input(self) -> None:
        """Hold what open kernel WebSockets send until another kernel WebSocket opens."""
        self._holding = True
        self._released = anyio.Event()

    async def wait_for_upgrades(self, count: int) -> None:
        """Wait until ``count`` kernel WebSockets in all got their ``101`` through."""
        while self.websocket_upgrades < count:
            await self._upgraded.wait()

    async def wait_for_requests(self, count: int) -> None:
        """Wait until ``count`` connections in all have been forwarded."""
        while len(self.request_lines) < count:
            await self._forwarded.wait()

    async def _handle(self, downstream: SocketStream) -> None:
        self.accepted += 1
        _reset(downstream)
        async with downstream:
            if self.refusing:
                return
            if self.admission is not None:
                await self.admission.wait()
            try:
                upstream = await anyio.connect_tcp(*self._upstream)
            except OSError:
                return
            _reset(upstream)
            async with upstream:
                if await self._forward(downstream, upstream):
                    await downstream.aclose()
                    await anyio.sleep_forever()  # until the proxy exits

    async def _forward(self, downstream: SocketStream, upstream: SocketStream) -> bool:
        """Forward one connection until it ends; true if cut with its server side kept."""
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                first = await downstream.receive(_CHUNK)
                self.request_lines.append(first.split(b"\r\n", 1)[0].decode("latin-1"))
                self._forwarded.set()
                self._forwarded = anyio.Event()
                await upstream.send(first)
                websocket = b"/channels" in first.split(b"\r\n", 1)[0]
                if websocket and self._holding:
                    self._holding = False
                    self._released.set()
                if websocket and self.websocket_drops > 0:
                    self.websocket_drops -= 1
                    upgrade = await upstream.receive(_CHUNK)  # the 101
                    await anyio.sleep(self.websocket_delays[0])
                    await downstream.send(upgrade)
                    await anyio.sleep(self.websocket_delays[1])
                    self.cuts += 1
                    return False  # both sockets reset as they close
                silent = False
                if websocket and self.silent_websockets > 0:
                    self.silent_websockets -= 1
                    await downstream.send(await upstream.receive(_CHUNK))  # the 101
                    silent = True
                async with anyio.create_task_group() as pumps:
                    pumps.start_soon(
                        self._pump, downstream, upstream, scope, False, False, websocket
                    )
                    pumps.start_soon(
                        self._pump, upstream, downstream, scope, True, silent, False, websocket
                    )
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass  # closed before its first bytes went through
            finally:
                self._scopes.discard(scope)
        if scope in self._server_sides_kept:
            self._server_sides_kept.discard(scope)
            return True
        return False

    async def _pump(
        self,
        source: SocketStream,
        sink: SocketStream,
        scope: anyio.CancelScope,
        upward: bool,
        silent: bool,
        holdable: bool,
        upgrade: bool = False,
    ) -> None:
        """Copy ``source`` to ``sink`` (``upward``: from the server, which ``swallowing``
        discards, and ``silent`` for this connection; ``holdable``: held back while
        ``_holding``; ``upgrade``: the first bytes are a kernel WebSocket's ``101``, counted
        once sent); either side ending ends the pair."""
        try:
            while True:
                data = await source.receive(_CHUNK)
                if holdable and self._holding:
                    await self._released.wait()
                if not (upward and (self.swallowing or silent)):
                    await sink.send(data)
                if upgrade:
                    upgrade = False
                    self.websocket_upgrades += 1
                    self._upgraded.set()
                    self._upgraded = anyio.Event()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()
