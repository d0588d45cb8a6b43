"""The WebSocket adapter against a wsproto SERVER peer, in memory and over loopback TCP."""

from __future__ import annotations

import contextlib
import json
import math
import socket
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

from jupyter_interp.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionClosed,
    JupyterInterpError,
    KernelNotFound,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    ServerError,
    TransportTimeout,
)
from jupyter_interp.io.websocket import WebSocket, connect_websocket
from jupyter_interp.protocol.wire import V1_SUBPROTOCOL

from .memory import memory_stream_pair

pytestmark = pytest.mark.anyio

HOST = "gw.test:8888"
TARGET = "/api/kernels/k-1/channels?session_id=s-1"
TOKEN = "SECRET-TOKEN-0123456789"
HEADERS = {"Authorization": f"token {TOKEN}"}
OUR_ERRORS = (ConnectionClosed, RemoteProtocolError, MessageTooLarge)


class FakeServer:
    """A wsproto SERVER on the far end of a byte stream, driven step by step by a test."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self._events: deque[Event] = deque()
        self.request: Request | None = None

    async def next_event(self) -> Event:
        while not self._events:
            try:
                data: bytes | None = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = None
            self.ws.receive_data(data)
            self._events.extend(self.ws.events())
        return self._events.popleft()

    async def next_message(self) -> str | bytes:
        """Reassemble the next data message (control frames in between are dropped)."""
        parts: list[Any] = []
        while True:
            event = await self.next_event()
            if isinstance(event, TextMessage | BytesMessage):
                parts.append(event.data)
                if event.message_finished:
                    return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)

    async def read_request(self) -> Request:
        event = await self.next_event()
        assert isinstance(event, Request)
        self.request = event
        return event

    async def accept(self, subprotocol: str | None = V1_SUBPROTOCOL) -> Request:
        request = await self.read_request()
        await self.send(AcceptConnection(subprotocol=subprotocol))
        return request

    async def reject(self, status: int, body: bytes) -> None:
        await self.read_request()
        headers = [(b"content-type", b"text/html")]
        await self.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        await self.send(RejectData(data=body))

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))


async def open_client(stream: anyio.abc.ByteStream, **options: Any) -> WebSocket:
    options = {"headers": HEADERS, "close_timeout": 1.0, **options}
    return await WebSocket.from_stream(stream, host=HOST, target=TARGET, **options)


@contextlib.asynccontextmanager
async def connected(
    subprotocol: str | None = V1_SUBPROTOCOL,
    buffer: float = 16,
    chunk: int = 65536,
    **options: Any,
) -> AsyncIterator[tuple[WebSocket, FakeServer]]:
    client_end, server_end = memory_stream_pair(buffer, chunk)
    server = FakeServer(server_end)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.accept, subprotocol)
        ws = await open_client(client_end, **options)
    try:
        yield ws, server
    finally:
        await server_end.aclose()
        await ws.aclose()


async def test_offers_v1_sends_headers_and_adopts_the_echoed_subprotocol() -> None:
    with anyio.fail_after(5):
        async with connected(V1_SUBPROTOCOL) as (ws, server):
            assert ws.subprotocol == V1_SUBPROTOCOL
    request = server.request
    assert request is not None
    assert (request.host, request.target) == (HOST, TARGET)
    assert request.subprotocols == [V1_SUBPROTOCOL]
    headers = dict(request.extra_headers)
    assert headers[b"authorization"] == f"token {TOKEN}".encode()
    assert b"origin" not in headers


async def test_no_echoed_subprotocol_means_legacy() -> None:
    with anyio.fail_after(5):
        async with connected(subprotocol=None) as (ws, _):
            assert ws.subprotocol is None


async def test_empty_subprotocol_list_offers_none() -> None:
    with anyio.fail_after(5):
        async with connected(None, subprotocols=()) as (ws, server):
            assert ws.subprotocol is None
    assert server.request is not None
    assert server.request.subprotocols == []


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, KernelNotFound), (500, None)],
)
async def test_rejection_maps_status_and_quotes_the_json_message_redacted(
    status: int, error_type: type[ServerError] | None
) -> None:
    body = json.dumps({"message": f"Refused:  token {TOKEN} is not valid here"}).encode()
    error = await _rejected_with(status, body)
    if error_type is None:
        assert not isinstance(error, AuthenticationError | KernelNotFound)
    else:
        assert isinstance(error, error_type)
    assert error.status == status
    assert "Refused: [redacted] is not valid here" in str(error)  # all of "token <T>"
    assert TOKEN not in repr(error)


async def test_an_html_rejection_page_is_not_quoted() -> None:
    # Jupyter Server's error page embeds its token, which need not be the one we sent
    page = b'<html><body data-jupyter-api-token="other-0123456789"><h1>404</h1></body></html>'
    error = await _rejected_with(404, page)
    assert isinstance(error, KernelNotFound)
    assert str(error) == (
        "WebSocket upgrade refused by gw.test:8888: Not Found (no such kernel on the server) "
        "(HTTP 404)"
    )


async def _rejected_with(status: int, body: bytes) -> ServerError:
    client_end, server_end = memory_stream_pair()
    server = FakeServer(server_end)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, server_end:
            tg.start_soon(server.reject, status, body)
            with pytest.raises(ServerError) as info:
                await open_client(client_end)
    return info.value


async def test_rejection_snippet_is_bounded_and_the_stream_closed() -> None:
    client_end, server_end = memory_stream_pair(math.inf)
    server = FakeServer(server_end)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, server_end:
            tg.start_soon(_reject_ignoring_hang_up, server, b"boom " * 200_000)
            with pytest.raises(ServerError) as info:
                await open_client(client_end)
            with pytest.raises(anyio.BrokenResourceError):
                await server_end.send(b"more")
    assert len(str(info.value)) < 400


async def _reject_ignoring_hang_up(server: FakeServer, body: bytes) -> None:
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await server.reject(500, body)


async def test_bad_accept_answer_is_a_remote_protocol_error() -> None:
    client_end, server_end = memory_stream_pair()
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n"
    )
    with anyio.fail_after(5):
        async with server_end:
            await server_end.send(answer)
            with pytest.raises(RemoteProtocolError, match="accept"):
                await open_client(client_end)


async def test_hang_up_during_upgrade_is_a_connect_error() -> None:
    client_end, server_end = memory_stream_pair()
    server = FakeServer(server_end)

    async def hang_up() -> None:
        await server.read_request()
        await server_end.aclose()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hang_up)
            with pytest.raises(ConnectError):
                await open_client(client_end)


async def test_silent_server_hits_the_handshake_deadline() -> None:
    client_end, server_end = memory_stream_pair()
    with anyio.fail_after(5):
        async with server_end:
            with pytest.raises(TransportTimeout):
                await open_client(client_end, handshake_timeout=0.1)
            assert (await server_end.receive()).startswith(b"GET /api/kernels/")
            with pytest.raises(anyio.EndOfStream):
                await server_end.receive()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"token {TOKEN}\r\nX-Injected: 1"},
        {"Authorization": f" token {TOKEN}"},
        {"Sec-WebSocket-Key": "abc"},
        {"Bad Name": "x"},
    ],
)
async def test_invalid_headers_are_refused_without_echoing_values(headers: dict[str, str]) -> None:
    client_end, server_end = memory_stream_pair()
    with anyio.fail_after(5), pytest.raises(LocalProtocolError) as info:
        async with server_end:
            await open_client(client_end, headers=headers)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    with pytest.raises(anyio.ClosedResourceError):
        await client_end.send(b"x")


@pytest.mark.parametrize(
    "options",
    [
        {"target": "no-leading-slash"},
        {"target": "/ünïcode"},
        {"subprotocols": [""]},
        {"host": "bad\r\nhost"},
        {"host": "empty..label"},
    ],
)
async def test_invalid_request_parts_are_local_errors(options: dict[str, Any]) -> None:
    client_end, server_end = memory_stream_pair()
    arguments = {"host": HOST, "target": TARGET, "headers": HEADERS, **options}
    with anyio.fail_after(5), pytest.raises(LocalProtocolError):
        async with server_end:
            await WebSocket.from_stream(client_end, **arguments)


async def test_a_peer_gone_before_the_upgrade_is_a_connect_error() -> None:
    client_end, server_end = memory_stream_pair()
    await server_end.aclose()
    with anyio.fail_after(5), pytest.raises(ConnectError):
        await open_client(client_end)


async def test_unencodable_text_is_a_local_error() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            with pytest.raises(LocalProtocolError):
                await ws.send("lone surrogate \ud800")
            await ws.send("fine")
            assert await server.next_message() == "fine"


async def test_text_and_binary_messages_both_ways() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            await server.send(TextMessage(data="héllo ☃"))
            await server.send(BytesMessage(data=b"\x00\x01\xff"))
            assert await ws.receive() == "héllo ☃"
            assert await ws.receive() == b"\x00\x01\xff"
            await ws.send("to server ☃")
            await ws.send(b"\x02\x03")
            assert await server.next_message() == "to server ☃"
            assert await server.next_message() == b"\x02\x03"


async def test_fragmented_messages_are_reassembled_around_a_ping() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            await server.send(TextMessage(data="ab", message_finished=False))
            await server.send(Ping(payload=b"mid"))
            await server.send(TextMessage(data="c☃", message_finished=False))
            await server.send(TextMessage(data="d", message_finished=True))
            await server.send(BytesMessage(data=b"\x01", message_finished=False))
            await server.send(BytesMessage(data=b"\x02" * 200_000, message_finished=True))
            assert await ws.receive() == "abc☃d"
            assert await ws.receive() == b"\x01" + b"\x02" * 200_000
            assert await server.next_event() == Pong(payload=b"mid")


async def test_a_cancelled_receive_loses_no_fragment() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            await server.send(TextMessage(data="ab", message_finished=False))
            with anyio.move_on_after(0.1) as scope:
                await ws.receive()
            assert scope.cancelled_caught
            await server.send(TextMessage(data="cd", message_finished=True))
            assert await ws.receive() == "abcd"


async def test_our_ping_gets_a_pong() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            initial, before = ws.last_pong, anyio.current_time()
            assert initial is None
            await ws.ping(b"hb")
            ping = await server.next_event()
            assert ping == Ping(payload=b"hb")
            assert isinstance(ping, Ping)
            await server.send(ping.response())
            await server.send(TextMessage(data="after"))
            assert await ws.receive() == "after"
            assert ws.last_pong is not None
            assert ws.last_pong >= before
            with pytest.raises(LocalProtocolError):
                await ws.ping(b"x" * 126)


@pytest.mark.parametrize("code", [1000, 1001])
async def test_server_close_is_answered_and_raised(code: int) -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            await server.send(CloseConnection(code=code, reason="bye"))
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive()
            assert (info.value.code, info.value.reason) == (code, "bye")
            assert await server.next_event() == CloseConnection(code=code, reason="bye")
            assert server.ws.state is ConnectionState.CLOSED
            with pytest.raises(ConnectionClosed) as again:
                await ws.receive()
            assert again.value.code == code
            with pytest.raises(ConnectionClosed):
                await ws.send("too late")


async def test_eof_mid_message_is_an_abnormal_closure() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            await server.send(TextMessage(data="partial", message_finished=False))
            await server.stream.aclose()
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive()
            assert info.value.code == 1006


@pytest.mark.parametrize(
    "pieces",
    [
        [BytesMessage(data=b"x" * 300, message_finished=False)] * 5,  # never finished
        [TextMessage(data="é" * 600)],  # 600 characters but 1200 bytes
    ],
)
async def test_oversized_message_closes_with_1009(pieces: list[Event]) -> None:
    with anyio.fail_after(5):
        async with connected(max_message_size=1000) as (ws, server):
            for piece in pieces:
                await server.send(piece)
            with pytest.raises(MessageTooLarge):
                await ws.receive()
            close = await server.next_event()
            assert isinstance(close, CloseConnection)
            assert close.code == 1009
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive()
            assert info.value.code == 1009


async def test_concurrent_senders_never_interleave_frames() -> None:
    expected: list[str | bytes] = []
    for sender in range(12):
        for seq in range(3):
            body = f"{sender:02d}-{seq}:" * 20_000
            expected.append(body if sender % 2 else body.encode())
    with anyio.fail_after(10):
        async with connected(buffer=4, chunk=4096) as (ws, server):
            received: list[str | bytes] = []
            async with anyio.create_task_group() as tg:
                for sender in range(12):
                    tg.start_soon(_send_all, ws, expected[sender * 3 : sender * 3 + 3])
                for _ in expected:
                    received.append(await server.next_message())
    assert sorted(received, key=repr) == sorted(expected, key=repr)


async def _send_all(ws: WebSocket, messages: list[str | bytes]) -> None:
    for message in messages:
        await ws.send(message)


async def test_a_cancelled_sender_still_writes_whole_frames() -> None:
    big = b"y" * 50_000
    with anyio.fail_after(5):
        async with connected(buffer=1, chunk=1000) as (ws, server):
            send_scope = anyio.CancelScope()

            async def send_then_get_cancelled() -> None:
                with send_scope:
                    await ws.send(big)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_then_get_cancelled)
                await anyio.sleep(0.05)  # the write is blocked on the full buffer
                send_scope.cancel()
                assert await server.next_message() == big
            await ws.send(b"after")
            assert await server.next_message() == b"after"


async def test_a_stalled_write_times_out_and_kills_the_connection() -> None:
    with anyio.fail_after(5):
        async with connected(buffer=1, chunk=1000, write_timeout=0.1) as (ws, _):
            with pytest.raises(TransportTimeout):
                await ws.send(b"z" * 50_000)
            with pytest.raises(ConnectionClosed) as info:
                await ws.send(b"z")
            assert info.value.code == 1006
            with pytest.raises(ConnectionClosed):
                await ws.receive()


async def test_aclose_runs_the_close_handshake_and_is_idempotent() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):

            async def answer_close() -> None:
                close = await server.next_event()
                assert close == CloseConnection(code=1000, reason="done")
                assert isinstance(close, CloseConnection)
                await server.send(close.response())

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_close)
                await ws.aclose(reason="done")
            await ws.aclose()
            assert server.ws.state is ConnectionState.CLOSED
            with pytest.raises(anyio.EndOfStream):
                await server.stream.receive()
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive()
            assert info.value.code == 1000
            with pytest.raises(LocalProtocolError):
                await ws.aclose(code=999)


async def test_a_ping_during_the_close_handshake_does_not_derail_it() -> None:
    with anyio.fail_after(5):
        async with connected(close_timeout=3) as (ws, server):

            async def ping_then_answer_close() -> None:
                close = await server.next_event()
                assert isinstance(close, CloseConnection)
                await server.stream.send(b"\x89\x00")  # a ping, raw: wsproto won't send one now
                await server.send(close.response())

            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(ping_then_answer_close)
                await ws.aclose()
            assert anyio.current_time() - start < 1
            assert server.ws.state is ConnectionState.CLOSED


async def test_aclose_lets_the_active_reader_finish_the_handshake() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            outcome: list[int] = []

            async def read() -> None:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.receive()
                outcome.append(info.value.code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.sleep(0.05)
                with pytest.raises(LocalProtocolError):
                    await ws.receive()  # a second reader is refused
                tg.start_soon(ws.aclose, 1001)
                close = await server.next_event()
                assert isinstance(close, CloseConnection)
                await server.send(close.response())
            assert outcome == [1001]


async def test_aclose_gives_up_on_a_silent_server() -> None:
    with anyio.fail_after(5):
        async with connected(close_timeout=0.2) as (ws, server):
            start = anyio.current_time()
            await ws.aclose()
            assert anyio.current_time() - start < 2
            assert isinstance(await server.next_event(), CloseConnection)
            assert await server.next_event() == CloseConnection(code=1006)


@pytest.mark.parametrize(
    ("garbage", "code"),
    [
        (b"\x83\x00", 1002),  # reserved opcode
        (b"\x81\x82abcd\x00\x00", 1002),  # a masked frame from the server
        (b"\x81\x02\xff\xfe", 1007),  # text that is not UTF-8
    ],
)
async def test_bad_frames_are_remote_protocol_errors(garbage: bytes, code: int) -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            await server.stream.send(garbage)
            with pytest.raises(RemoteProtocolError):
                await ws.receive()
            close = await server.next_event()
            assert isinstance(close, CloseConnection)
            assert close.code == code
            with pytest.raises(ConnectionClosed):
                await ws.receive()


def _frame_events() -> st.SearchStrategy[Event]:
    return st.one_of(
        st.builds(TextMessage, data=st.text(max_size=20), message_finished=st.booleans()),
        st.builds(BytesMessage, data=st.binary(max_size=40), message_finished=st.booleans()),
        st.builds(Ping, payload=st.binary(max_size=10)),
        st.builds(Pong, payload=st.binary(max_size=10)),
        st.builds(CloseConnection, code=st.sampled_from([1000, 1001, 1011, 4000])),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=st.lists(st.one_of(st.binary(max_size=30), _frame_events()), max_size=12))
async def test_arbitrary_bytes_after_the_handshake_give_messages_or_our_errors(
    chunks: list[bytes | Event],
) -> None:
    with anyio.fail_after(5):
        async with connected(buffer=math.inf, max_message_size=64) as (ws, server):
            for chunk in chunks:
                if isinstance(chunk, bytes):
                    await server.stream.send(chunk)
                else:
                    with contextlib.suppress(WsLocalProtocolError, TypeError):
                        await server.send(chunk)
            await server.stream.send_eof()
            with pytest.raises(OUR_ERRORS):
                await _receive_until_error(ws)


async def _receive_until_error(ws: WebSocket) -> None:
    for _ in range(1000):
        assert isinstance(await ws.receive(), str | bytes)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    answer=st.one_of(
        st.binary(max_size=200),
        st.tuples(st.integers(100, 599), st.binary(max_size=120)).map(
            lambda t: b"HTTP/1.1 %d Reason\r\n" % t[0] + t[1]
        ),
    )
)
async def test_arbitrary_upgrade_answers_give_only_our_errors(answer: bytes) -> None:
    client_end, server_end = memory_stream_pair(math.inf)
    with anyio.fail_after(5):
        async with server_end:
            await server_end.send(answer)
            await server_end.send_eof()
            with pytest.raises(JupyterInterpError) as info:
                await open_client(client_end)
    assert TOKEN not in str(info.value)


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
