"""The WebSocket's own frame parsing agrees with wsproto's, frame for frame.

``io._frames.InboundFrames`` turns whole data frames into messages without wsproto; these
tests feed the same server bytes, in arbitrary chunks, to a ``WebSocket`` and to a bare
wsproto client and require the same messages and the same closing code.
"""

from __future__ import annotations

import contextlib
import math

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.frame_protocol import FrameProtocol
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

from jupyter_interp.errors import ConnectionClosed, MessageTooLarge, RemoteProtocolError
from jupyter_interp.io._upgrade import READ_SIZE, READ_SIZE_BULK

from .memory import MemoryByteStream, memory_stream_pair
from .test_websocket import FakeServer, connected, open_client

pytestmark = pytest.mark.anyio

_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _frames() -> st.SearchStrategy[Event]:
    return st.one_of(
        st.builds(TextMessage, data=st.text(max_size=30), message_finished=st.booleans()),
        st.builds(BytesMessage, data=st.binary(max_size=300), message_finished=st.booleans()),
        st.builds(Ping, payload=st.binary(max_size=10)),
        st.builds(Pong, payload=st.binary(max_size=10)),
        st.builds(CloseConnection, code=st.sampled_from([1000, 1001, 4000])),
    )


def _server_bytes(pieces: list[bytes | Event]) -> bytes:
    """What a server (sometimes a broken one) would write: frames and raw garbage."""
    server = Connection(ConnectionType.SERVER)
    out = bytearray()
    for piece in pieces:
        if isinstance(piece, bytes):
            out += piece
        else:
            # data after a close, or text and binary fragments mixed: not sendable
            with contextlib.suppress(WsLocalProtocolError, TypeError):
                out += server.send(piece)
    return bytes(out)


def _reference(data: bytes) -> tuple[list[str | bytes], int]:
    """The messages and closing code a bare wsproto client makes of ``data`` + EOF."""
    client = Connection(ConnectionType.CLIENT)
    messages: list[str | bytes] = []
    parts: list[str | bytes] = []
    for chunk in (data, None):
        client.receive_data(chunk)
        for event in client.events():
            if isinstance(event, TextMessage):
                parts.append(event.data)
            elif isinstance(event, BytesMessage):
                parts.append(bytes(event.data))
            elif isinstance(event, CloseConnection):
                return messages, event.code
            if isinstance(event, TextMessage | BytesMessage) and event.message_finished:
                text = isinstance(event, TextMessage)
                messages.append("".join(parts) if text else b"".join(parts))  # type: ignore[arg-type]
                parts = []
    raise AssertionError("wsproto always ends with a CloseConnection after EOF")


async def _ours(data: bytes, chunk: int) -> tuple[list[str | bytes], int]:
    """Our messages, binary ones copied only at the end: the views handed out must stay
    valid and unchanged while later chunks are read and parsed."""
    messages: list[str | bytes | memoryview] = []
    async with connected(buffer=math.inf, chunk=chunk, max_message_size=1 << 20) as (ws, server):
        await server.stream.send(data)
        await server.stream.send_eof()
        while True:
            try:
                messages.append(await ws.receive())
            except RemoteProtocolError:
                continue  # the next receive reports the closing code
            except ConnectionClosed as exc:
                for message in messages:
                    assert isinstance(message, str | bytes) or message.readonly
                return [m if isinstance(m, str) else bytes(m) for m in messages], exc.code


@_SETTINGS
@given(
    pieces=st.lists(st.one_of(_frames(), st.binary(max_size=12)), max_size=10),
    chunk=st.integers(1, 64),
)
async def test_messages_and_closing_code_match_wsproto(
    pieces: list[bytes | Event], chunk: int
) -> None:
    data = _server_bytes(pieces)
    with anyio.fail_after(10):
        assert await _ours(data, chunk) == _reference(data)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x82\x7e\x00\x05hello",  # two length bytes where one suffices
        b"\x82\x7f" + (5).to_bytes(8, "big") + b"hello",  # eight where one suffices
        b"\x92\x05hello",  # an RSV bit
        b"\x82\x85abcd" + bytes(5),  # masked
        b"\x81\x03\xe2\x82\xac\x81\x01\xff",  # good text, then bad UTF-8
    ],
)
async def test_frames_wsproto_refuses_are_not_taken_by_the_fast_path(frame: bytes) -> None:
    with anyio.fail_after(10):
        for chunk in (1, 64):
            assert await _ours(frame, chunk) == _reference(frame)


async def test_whole_frames_around_a_fragmented_message() -> None:
    pieces: list[bytes | Event] = [
        BytesMessage(data=b"whole"),
        TextMessage(data="frag", message_finished=False),
        Ping(payload=b"p"),
        TextMessage(data="mented", message_finished=True),
        BytesMessage(data=b"whole again"),
    ]
    data = _server_bytes(pieces)
    with anyio.fail_after(10):
        ours = await _ours(data, 5)
    assert ours == _reference(data) == ([b"whole", "fragmented", b"whole again"], 1006)


async def test_a_large_frame_is_received_in_pieces_and_whole() -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB, needs the 8-byte length
    frame = bytes(FrameProtocol(client=False, extensions=[]).send_data(payload, fin=True))
    with anyio.fail_after(10):
        assert await _ours(frame + frame[:3], 4096) == ([payload], 1006)


async def test_an_oversized_frame_still_closes_with_1009() -> None:
    frame = bytes(FrameProtocol(client=False, extensions=[]).send_data(b"x" * 100, fin=True))
    with anyio.fail_after(10):
        async with connected(max_message_size=64) as (ws, server):
            await server.stream.send(frame)
            with pytest.raises(MessageTooLarge):
                await ws.receive()
            close = await server.next_event()
            assert isinstance(close, CloseConnection)
            assert close.code == 1009


class _RecordingStream(MemoryByteStream):
    """A client end that notes how many bytes each read asks for."""

    asked: list[int]

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.asked.append(max_bytes)
        return await super().receive(max_bytes)


async def test_reads_ask_for_more_while_data_streams_in_and_less_after() -> None:
    client_end, server_end = memory_stream_pair(math.inf, 1 << 20)
    client_end.__class__ = _RecordingStream
    assert isinstance(client_end, _RecordingStream)
    client_end.asked = []
    server = FakeServer(server_end)
    big = bytes(600_000)  # 64 KiB + 2 x 256 KiB + 10,186 bytes, frame header included
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.accept)
            ws = await open_client(client_end)
        try:
            client_end.asked.clear()
            await server.send(BytesMessage(data=big))
            assert await ws.receive() == big
            await server.send(TextMessage(data="small"))
            assert await ws.receive() == "small"
        finally:
            await server_end.aclose()
            await ws.aclose()
    # each read that filled its request asks for the bulk size next; a short one, not
    assert client_end.asked[:5] == [READ_SIZE] + [READ_SIZE_BULK] * 3 + [READ_SIZE]
