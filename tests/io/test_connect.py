"""``connect_websocket`` over real loopback TCP and TLS: the upgrade goes through, and a
refused connection, a failed TLS handshake or a bad URL become our typed errors.
"""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest
from wsproto.events import (
    CloseConnection,
    Request,
    TextMessage,
)

from jupyter_interp.errors import (
    ConnectError,
    LocalProtocolError,
)
from jupyter_interp.io.connect import connect_websocket
from jupyter_interp.protocol.wire import V1_SUBPROTOCOL

from .test_websocket import (
    HEADERS,
    TARGET,
    FakeServer,
)

pytestmark = pytest.mark.anyio


async def _serve_echo(stream: anyio.abc.SocketStream, requests: list[Request]) -> None:
    async with stream:
        server = FakeServer(stream)
        requests.append(await server.accept(V1_SUBPROTOCOL))
        message = await server.next_message()
        await server.send(TextMessage(data=f"echo {message!s}"))
        close = await server.next_event()
        assert isinstance(close, CloseConnection)
        await server.send(close.response())


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_connect_websocket_over_loopback_tcp(scheme: str) -> None:
    requests: list[Request] = []
    with anyio.fail_after(10):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, lambda s: _serve_echo(s, requests))
                url = f"{scheme}://127.0.0.1:{port}{TARGET}"
                async with await connect_websocket(url, headers=HEADERS) as ws:
                    assert ws.subprotocol == V1_SUBPROTOCOL
                    await ws.send("hi")
                    assert await ws.receive() == "echo hi"
                    raw = ws._socket  # reaching in once to check the socket tuning
                    assert raw is not None
                    assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                tg.cancel_scope.cancel()
    assert requests[0].host == f"127.0.0.1:{port}"
    assert requests[0].target == TARGET
    assert dict(requests[0].extra_headers)[b"authorization"] == HEADERS["Authorization"].encode()


async def test_a_failed_tls_handshake_is_a_connect_error() -> None:
    async def hang_up(stream: anyio.abc.SocketStream) -> None:
        await stream.aclose()

    with anyio.fail_after(10):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, hang_up)
                with pytest.raises(ConnectError):
                    await connect_websocket(f"wss://127.0.0.1:{port}/", headers=HEADERS)
                tg.cancel_scope.cancel()


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))  # bound, not listening: connects are refused
        port = reserved.getsockname()[1]
        with anyio.fail_after(5), pytest.raises(ConnectError):
            await connect_websocket(f"ws://127.0.0.1:{port}/", headers=HEADERS)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "ws:///no-host", "ws://127.0.0.1:99999/"])
async def test_bad_urls_are_local_errors(url: str) -> None:
    with anyio.fail_after(5), pytest.raises(LocalProtocolError):
        await connect_websocket(url)
