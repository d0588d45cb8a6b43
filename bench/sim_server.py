"""A simulated Jupyter server for benchmarks: thousands of kernels, no kernel processes.

Usage: ``python -m bench.sim_server [--latency S] [--output-size N] [--token T]``
prints ``listening <url>`` and serves until stdin closes. ``sim_server()`` runs it as a
child process for a benchmark (so the client's process measures only the client).

Strategy: one anyio TCP listener on 127.0.0.1; every connection is parsed by h11. REST
requests get Jupyter's answers (``GET /api``, ``/api/kernelspecs``, ``/api/kernels``,
``POST``/``GET``/``DELETE /api/kernels/<id>``, ``interrupt``; ``GET /api/status`` is
404, as on Kernel Gateway, so the client moves files through the kernel). A
``GET /api/kernels/<id>/channels`` upgrade is accepted by h11 (101, the
``v1.kernel.websocket.jupyter.org`` subprotocol when the client offers it and
``--legacy`` is off), then wsproto frames the connection; frames are decoded and
replies encoded with the project's own codecs (``protocol.wire``), and
``SimKernel`` (``_sim_kernel``) decides the replies. A kernel is a few hundred bytes of
state, so one process holds tens of thousands.

Invariants: a wrong token gets 403 on every route; shell requests of one kernel are
answered in order (one lock per kernel), each execution and each kernel delete after
``latency`` seconds; control and pings are answered at once; closing stdin (the parent
went away) stops the server.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import h11
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, TextMessage
from wsproto.utilities import ProtocolError as WsProtocolError
from wsproto.utilities import generate_accept_token

from jupyter_interp.errors import RemoteProtocolError
from jupyter_interp.protocol.wire import V1_SUBPROTOCOL, Codec, codec_for

from ._sim_kernel import SimKernel

__all__ = ["SimServer", "raise_fd_limit", "serving", "sim_server"]

_KERNEL = re.compile(r"/api/kernels/(?P<id>[0-9a-f-]{36})(?P<rest>/[a-z]+)?")
_SPECS = {
    "default": "python3",
    "kernelspecs": {
        "python3": {
            "name": "python3",
            "spec": {"argv": [], "display_name": "Simulated Python", "language": "python"},
            "resources": {},
        }
    },
}
_READ = 65536
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def _ws_message(frame: str | bytes) -> Event:
    return TextMessage(data=frame) if isinstance(frame, str) else BytesMessage(data=frame)


class SimServer:
    """The simulated server's state: its kernels and how they behave."""

    def __init__(
        self, *, token: str, latency: float = 0.0, output_size: int = 0, legacy: bool = False
    ) -> None:
        self.token = token
        self.latency = latency
        self.output_size = output_size
        self.legacy = legacy
        self.kernels: dict[str, SimKernel] = {}
        self._locks: dict[str, anyio.Lock] = {}
        #: kernel deletes in flight now, and at most so far (each takes ``latency``)
        self.deleting = self.peak_deleting = 0

    async def serve(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        await listener.serve(self._guarded)

    async def _guarded(self, stream: anyio.abc.SocketStream) -> None:
        """One connection; its failure (a peer gone mid-request) drops it, not the server."""
        try:
            await self._connection(stream)
        except (h11.ProtocolError, WsProtocolError, anyio.EndOfStream, *_GONE):
            pass

    def _model(self, kernel_id: str) -> dict[str, Any]:
        return {
            "id": kernel_id,
            "name": "python3",
            "last_activity": "2026-01-01T00:00:00.000000Z",
            "execution_state": "idle",
            "connections": 0,
        }

    def _route(self, method: str, path: str, body: bytes, authorized: bool) -> tuple[int, Any]:
        """Status and JSON body of one REST request (a start honours a ``kernel_id``)."""
        if not authorized:
            return 403, {"message": "Forbidden", "reason": None}
        if path == "/api":
            return 200, {"version": "2.0.0"}
        if path == "/api/kernelspecs":
            return 200, _SPECS
        if path == "/api/kernels":
            if method == "POST":
                wanted = json.loads(body or b"{}").get("kernel_id")
                kernel_id = wanted if isinstance(wanted, str) else str(uuid.uuid4())
                self.kernels[kernel_id] = SimKernel(
                    kernel_id=kernel_id, output_size=self.output_size
                )
                self._locks[kernel_id] = anyio.Lock()
                return 201, self._model(kernel_id)
            return 200, [self._model(kernel_id) for kernel_id in self.kernels]
        match = _KERNEL.fullmatch(path)
        if match is None or match["id"] not in self.kernels:
            return 404, {"message": "Not found", "reason": None}
        kernel_id, rest = match["id"], match["rest"]
        if rest is None and method == "DELETE":
            del self.kernels[kernel_id], self._locks[kernel_id]
            return 204, None
        if rest is None or rest == "/restart":
            return 200, self._model(kernel_id)
        return 204, None

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            conn = h11.Connection(h11.SERVER)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        conn.receive_data(await stream.receive(_READ))
                    except (anyio.EndOfStream, *_GONE):
                        conn.receive_data(b"")
                    continue
                if not isinstance(event, h11.Request):
                    return  # closed, or a protocol error: drop the connection
                request, body = event, b""
                while not isinstance(event, h11.EndOfMessage):
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive(_READ))
                    elif isinstance(event, h11.Data):
                        body += event.data
                headers = {name.decode(): value.decode() for name, value in request.headers}
                target = request.target.decode()
                path = target.partition("?")[0]
                authorized = headers.get("authorization") == f"token {self.token}"
                if headers.get("upgrade", "").lower() == "websocket" and authorized:
                    match = _KERNEL.fullmatch(path)
                    if match and match["rest"] == "/channels" and match["id"] in self.kernels:
                        await self._websocket(stream, conn, headers, match["id"])
                        return
                method = request.method.decode()
                if method == "DELETE" and self.latency:  # a kernel takes time to stop
                    self.deleting += 1
                    self.peak_deleting = max(self.peak_deleting, self.deleting)
                    await anyio.sleep(self.latency)
                    self.deleting -= 1
                status, answer = self._route(method, path, body, authorized)
                data = b"" if answer is None else json.dumps(answer).encode()
                reply = [(b"content-type", b"application/json")] if answer is not None else []
                reply.append((b"content-length", str(len(data)).encode()))
                await stream.send(conn.send(h11.Response(status_code=status, headers=reply)))
                await stream.send(conn.send(h11.Data(data=data)) + conn.send(h11.EndOfMessage()))
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()

    async def _websocket(
        self,
        stream: anyio.abc.SocketStream,
        conn: h11.Connection,
        headers: dict[str, str],
        kernel_id: str,
    ) -> None:
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        subprotocol = V1_SUBPROTOCOL if V1_SUBPROTOCOL in offered and not self.legacy else None
        accept = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(headers["sec-websocket-key"].encode())),
        ]
        if subprotocol:
            accept.append((b"sec-websocket-protocol", subprotocol.encode()))
        await stream.send(conn.send(h11.InformationalResponse(status_code=101, headers=accept)))
        ws = Connection(ConnectionType.SERVER)
        ws.receive_data(conn.trailing_data[0])
        codec = codec_for(subprotocol)
        send_lock = anyio.Lock()

        async def send(data: bytes) -> None:
            async with send_lock:
                await stream.send(data)

        parts: list[Any] = []
        async with anyio.create_task_group() as tg:
            while True:
                for event in ws.events():
                    if isinstance(event, Ping):
                        await send(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        await send(ws.send(event.response()))
                        tg.cancel_scope.cancel()
                        return
                    elif isinstance(event, TextMessage | BytesMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            frame = (
                                "".join(parts)
                                if isinstance(event, TextMessage)
                                else b"".join(parts)
                            )
                            parts.clear()
                            tg.start_soon(self._answer, kernel_id, codec, frame, ws, send)
                try:
                    data = await stream.receive(_READ)
                except (anyio.EndOfStream, *_GONE):
                    tg.cancel_scope.cancel()
                    return
                ws.receive_data(data)

    async def _answer(
        self,
        kernel_id: str,
        codec: Codec,
        frame: str | bytes,
        ws: Connection,
        send: Callable[[bytes], Awaitable[None]],
    ) -> None:
        kernel = self.kernels.get(kernel_id)
        if kernel is None:
            return
        try:
            request = codec.decode(frame)
        except RemoteProtocolError:
            return  # a kernel drops what it cannot parse
        lock = self._locks[kernel_id] if request.channel == "shell" else None
        async with lock if lock is not None else nullcontext():
            if self.latency and request.msg_type == "execute_request":
                await anyio.sleep(self.latency)
            if ws.state is not ConnectionState.OPEN:
                return  # the client closed the socket meanwhile
            out = b"".join(ws.send(_ws_message(codec.encode(m))) for m in kernel.handle(request))
        with suppress(*_GONE):
            await send(out)


@asynccontextmanager
async def serving(server: SimServer) -> AsyncIterator[str]:
    """Serve ``server`` on a free loopback port in this event loop; yields its base URL."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0, backlog=4096)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(server.serve, listener)
        yield f"http://127.0.0.1:{port}/"
        tg.cancel_scope.cancel()


async def _serve(options: argparse.Namespace) -> None:
    server = SimServer(
        token=options.token,
        latency=options.latency,
        output_size=options.output_size,
        legacy=options.legacy,
    )
    async with serving(server) as url:
        print(f"listening {url}", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per execution")
    parser.add_argument("--output-size", type=int, default=0, help="stdout bytes per execution")
    parser.add_argument("--legacy", action="store_true", help="refuse the v1 subprotocol")
    options = parser.parse_args(argv)
    raise_fd_limit()
    anyio.run(_serve, options)
    return 0


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@asynccontextmanager
async def sim_server(
    *, token: str = "sim-token", latency: float = 0.0, output_size: int = 0, legacy: bool = False
) -> AsyncIterator[str]:
    """Run the simulated server in a child process; yields its base URL."""
    command = [sys.executable, "-m", "bench.sim_server", "--token", token]
    command += ["--latency", str(latency), "--output-size", str(output_size)]
    command += ["--legacy"] if legacy else []
    process = await anyio.open_process(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).parents[1]
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        line = b""
        with anyio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive(1)
                line += chunk
        yield line.decode().split()[1]
    finally:
        with anyio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


if __name__ == "__main__":
    sys.exit(main())
