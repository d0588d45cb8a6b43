"""The WebSocket adapter against a wsproto SERVER peer, in memory and over loopback TCP."""

from __future__ import annotations

import contextlib
import math
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
    ConnectionClosed,
    JupyterInterpError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    TransportTimeout,
)
from jupyter_interp.io.websocket import WebSocket
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
        assert isinstance(await ws.receive(), str | bytes | memoryview)


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
