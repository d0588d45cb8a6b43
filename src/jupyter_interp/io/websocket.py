"""WebSocket client adapter: wsproto driven over an anyio byte stream (TCP or TLS).

Theory of operation: ``connect.connect_websocket`` opens the stream with
``anyio.connect_tcp`` and ``WebSocket.from_stream`` (which owns the stream from then
on, closing it if the handshake fails) sends the HTTP/1.1 upgrade with our headers and
offered subprotocols (no ``Origin``), then reads until wsproto accepts or a rejection
is complete. One deadline covers connect and upgrade; Jupyter delays the ``101`` until
the kernel answers, so it is long. A rejection becomes a typed ``ServerError`` with the
status and what a JSON body says, our header values redacted (``_upgrade``).

Invariants of an open ``WebSocket``:

* One reader. Only one task may be in ``receive()`` (another gets
  ``LocalProtocolError``); it alone feeds wsproto, through ``_frames.InboundFrames``,
  which turns whole unfragmented data frames into messages itself (wsproto's parser
  costs as much per frame as the rest of the client's work on a message), straight
  from the chunks read (a binary message is a view of them, not a copy), and hands
  every other frame to wsproto byte-exact. Bytes and fragments collect in instance
  buffers, so a cancelled ``receive()`` loses nothing. It answers pings, records pongs
  in ``last_pong``, counts what the server sends in ``activity`` and checks
  ``max_message_size`` against the running size (UTF-8 bytes for text), so a huge or
  endless message never sits in memory.
* Reads ask for ``READ_SIZE`` bytes, and for ``READ_SIZE_BULK`` while each read fills
  its request (data streaming in): asyncio's transport hands over up to 256 KiB at a
  time, which anyio would copy to split for a smaller request; a small request keeps
  trio's per-read allocation small while messages are.
* Whole messages. A message is written as frames of at most 512 KiB (wsproto copies a
  frame several times while masking it, so memory stays a small multiple of that, not of
  the message), all under one ``anyio.Lock``, shielded and bounded by ``write_timeout``:
  a cancelled sender never leaves half a message; a write that fails or stalls ends the
  connection (code 1006). Text is checked to be valid UTF-8 before its first frame.
* One ending. The first cause (peer close, reply to our close, EOF, bad frame, oversized
  message, failed write) is recorded once, the transport is closed, and ``receive()`` and
  ``send()`` raise ``ConnectionClosed`` with that code from then on. ``aclose()`` sends
  our close frame and waits, shielded and bounded by ``close_timeout``, for the reply,
  read by the active reader or by itself.

anyio, wsproto and h11 exceptions map to ``jupyter_interp.errors``; cancellation
propagates. No message contains a header value (tokens) or the request target (it
could carry ``?token=``).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalProtocolError

from ..errors import (
    ConnectionClosed,
    JupyterInterpError,
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    TransportError,
    TransportTimeout,
)
from ..protocol.wire import V1_SUBPROTOCOL
from ._frames import InboundFrames
from ._upgrade import (
    READ_SIZE,
    READ_SIZE_BULK,
    STREAM_ERRORS,
    build_request,
    handshake,
    handshake_deadline,
    read_chunk,
    secret_values,
    set_tcp_option,
)

__all__ = ["WebSocket"]

#: Outgoing messages are sent as frames of at most this many bytes (characters for
#: text): wsproto copies a frame's payload several times while masking it, so one frame
#: per multi-megabyte message would cost several times its size in memory.
_FRAGMENT_SIZE = 512 * 1024


def _fragments(
    data: str | memoryview, kind: type[TextMessage] | type[BytesMessage]
) -> Iterator[Event]:
    """``data`` as the frames of one message (a single frame when it is small)."""
    size = len(data)
    for start in range(0, max(size, 1), _FRAGMENT_SIZE):
        stop = start + _FRAGMENT_SIZE
        yield kind(data=data[start:stop], message_finished=stop >= size)  # type: ignore[arg-type]


class WebSocket:
    """An open client WebSocket (see the module docstring for the invariants).

    Built by ``connect_websocket`` or ``WebSocket.from_stream``. Only one task may call
    ``receive()`` at a time; pongs and close replies are only noticed while it runs.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        connection: WSConnection,
        *,
        subprotocol: str | None,
        max_message_size: int,
        close_timeout: float,
        write_timeout: float,
    ) -> None:
        self._stream, self._ws = stream, connection
        self._frames = InboundFrames(connection, max_message_size=max_message_size)
        self._wsproto_fed = False  # wsproto may have events to give
        self._read_size = READ_SIZE
        self._socket = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        set_tcp_option(self._socket, socket.TCP_NODELAY)
        self._subprotocol = subprotocol
        self._max_message_size = max_message_size
        self._close_timeout, self._write_timeout = close_timeout, write_timeout
        self._send_lock = anyio.Lock(fast_acquire=True)  # the write itself yields
        self._receiving = False
        self._text: list[str] = []
        self._binary = bytearray()
        self._size = 0
        self._last_pong: float | None = None
        self._activity = 0
        self._closed: tuple[int, str] | None = None  # the one recorded ending
        self._local_close: tuple[int, str] | None = None
        self._finished = anyio.Event()
        self._transport_closed = False

    @classmethod
    async def from_stream(
        cls,
        stream: anyio.abc.ByteStream,
        *,
        host: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        subprotocols: Sequence[str] = (V1_SUBPROTOCOL,),
        handshake_timeout: float = 120.0,
        max_message_size: int = 256 * 1024 * 1024,
        close_timeout: float = 10.0,
        write_timeout: float = 60.0,
    ) -> WebSocket:
        """Upgrade an already connected byte stream; the WebSocket takes ownership of it.

        Args:
            stream: Connected transport (closed here if the handshake fails).
            host: ``Host`` header value, e.g. ``"gw.example:8888"``.
            target: Request target, e.g. ``"/api/kernels/<id>/channels?session_id=<sid>"``.
            headers, subprotocols, handshake_timeout, max_message_size, close_timeout,
            write_timeout: As for ``connect_websocket``.

        Returns:
            The open ``WebSocket``.

        Raises:
            The errors of ``connect_websocket``, except those of the TCP connect.
        """
        headers = headers or {}
        try:
            with handshake_deadline(handshake_timeout, host):
                request = build_request(host, target, headers, subprotocols)
                ws = WSConnection(ConnectionType.CLIENT)
                subprotocol = await handshake(stream, ws, request, secret_values(headers))
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(*STREAM_ERRORS):
                await anyio.aclose_forcefully(stream)
            raise
        return cls(
            stream,
            ws,
            subprotocol=subprotocol,
            max_message_size=max_message_size,
            close_timeout=close_timeout,
            write_timeout=write_timeout,
        )

    @property
    def subprotocol(self) -> str | None:
        """The accepted subprotocol; ``None`` means the legacy JSON protocol."""
        return self._subprotocol

    @property
    def last_pong(self) -> float | None:
        """``anyio.current_time()`` when the last pong arrived, or ``None``."""
        return self._last_pong

    @property
    def activity(self) -> int:
        """How many messages and pings the server has sent (pongs, which answer ours,
        are not counted): a keep-alive pings only a socket whose count stood still."""
        return self._activity

    @property
    def sending(self) -> bool:
        """Whether a message is being written now."""
        return self._send_lock.locked()

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def send(self, message: str | bytes) -> None:
        """Send one message: ``str`` as a text frame, ``bytes`` as a binary frame.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TransportTimeout: The frame could not be written within ``write_timeout``.
            LocalProtocolError: ``message`` is text that cannot be encoded as UTF-8.
        """
        if len(message) <= _FRAGMENT_SIZE:  # the usual case: one frame
            kind = TextMessage if isinstance(message, str) else BytesMessage
            await self._send_events((kind(data=message),))  # type: ignore[arg-type]
        elif isinstance(message, str):
            if not message.isascii():
                try:  # checked up front: a message is never cut short halfway through
                    message.encode("utf-8")
                except UnicodeEncodeError:
                    raise LocalProtocolError("text messages must be encodable as UTF-8") from None
            await self._send_events(_fragments(message, TextMessage))
        else:
            with memoryview(message) as view:
                await self._send_events(_fragments(view, BytesMessage))

    async def ping(self, payload: bytes = b"") -> None:
        """Send a ping (at most 125 bytes); the pong shows up in ``last_pong``."""
        if len(payload) > 125:
            raise LocalProtocolError("a ping payload is at most 125 bytes")
        await self._send_events([Ping(payload=payload)])

    async def receive(self) -> str | bytes | memoryview:
        """Return the next complete message: ``str`` for text; for binary, ``bytes`` or a
        read-only ``memoryview`` of the receive buffer (``bytes(message)`` to keep it
        without keeping that buffer).

        Raises:
            ConnectionClosed: The connection closed (``code`` 1006 when it just dropped).
            MessageTooLarge: A message exceeded ``max_message_size`` (we closed with 1009).
            RemoteProtocolError: The server sent an invalid frame (we closed with its code).
            LocalProtocolError: Another task is already receiving.
        """
        if self._receiving:
            raise LocalProtocolError("another task is already receiving on this WebSocket")
        self._receiving = True
        try:
            message = await self._next_message()
        finally:
            self._receiving = False
        self._activity += 1
        return message

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake (bounded by ``close_timeout``) and close; idempotent."""
        if not 1000 <= code <= 4999:
            raise LocalProtocolError(f"close code {code} is outside 1000-4999")
        if self._transport_closed:
            return
        with anyio.move_on_after(self._close_timeout, shield=True):
            await self._close_handshake(code, reason)
        await self._finish(code, reason)

    async def _close_handshake(self, code: int, reason: str) -> None:
        if self._closed is None and self._ws.state is ConnectionState.OPEN:
            self._local_close = (code, reason)
            try:
                await self._send_events([CloseConnection(code=code, reason=reason)])
            except TransportError:
                return
        if self._receiving:
            await self._finished.wait()
            return
        self._receiving = True
        try:
            while True:
                await self._next_message()  # discarded: we are closing
        except JupyterInterpError:
            return
        finally:
            self._receiving = False

    async def _next_message(self) -> str | bytes | memoryview:
        frames = self._frames
        while True:
            if self._closed is not None:
                raise ConnectionClosed(*self._closed)
            if self._wsproto_fed:
                for event in self._ws.events():
                    message = await self._handle(event)
                    if message is not None:
                        return message
                self._wsproto_fed = False
            step = frames.step()
            if step is True:
                self._wsproto_fed = True
            elif step is False:
                size = self._read_size
                data = await read_chunk(self._stream, self._socket, size)
                if data is None:
                    frames.feed_eof()
                    self._wsproto_fed = True
                else:
                    if len(data) >= size:
                        self._read_size = READ_SIZE_BULK
                    elif len(data) < READ_SIZE:
                        self._read_size = READ_SIZE
                    frames.feed(data)
                    del data  # the frames let go of a chunk once it is parsed
            else:
                return step

    async def _handle(self, event: Event) -> str | bytes | None:
        if isinstance(event, TextMessage):
            text = event.data
            await self._grow(len(text) if text.isascii() else len(text.encode()))
            self._text.append(text)
            if event.message_finished:
                message, self._text, self._size = "".join(self._text), [], 0
                return message
        elif isinstance(event, BytesMessage):
            await self._grow(len(event.data))
            if event.message_finished and not self._binary:  # whole in one event: one copy
                self._size = 0
                return bytes(event.data)
            self._binary += event.data
            if event.message_finished:
                data, self._binary, self._size = bytes(self._binary), bytearray(), 0
                return data
        elif isinstance(event, Ping):  # answered unless closing; a failed write ends us
            self._activity += 1
            with anyio.CancelScope(shield=True), contextlib.suppress(TransportError):
                await self._send_events([event.response()])
        elif isinstance(event, Pong):
            self._last_pong = anyio.current_time()
        elif isinstance(event, CloseConnection):
            await self._on_close(event)
        return None

    async def _grow(self, size: int) -> None:
        self._size += size
        if self._size > self._max_message_size:
            self._text, self._binary, self._size = [], bytearray(), 0
            await self._end(1009, "message too big", CloseConnection(code=1009, reason="too big"))
            raise MessageTooLarge(f"incoming message exceeds {self._max_message_size} bytes")

    async def _on_close(self, event: CloseConnection) -> None:
        code, reason = int(event.code), event.reason or ""
        synthesized = self._ws.state is ConnectionState.OPEN  # wsproto's verdict on bad bytes
        await self._end(code, reason, event.response())
        if synthesized:
            raise RemoteProtocolError(f"invalid WebSocket frame from the server: {reason}")
        raise ConnectionClosed(*(self._closed or (code, reason)))

    async def _end(self, code: int, reason: str, reply: CloseConnection) -> None:
        """Send our close frame if one is still due, then finish; never interrupted."""
        with anyio.CancelScope(shield=True):
            if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                with contextlib.suppress(TransportError):
                    await self._send_events([reply])
            await self._finish(code, reason)

    async def _send_events(self, events: Iterable[Event]) -> None:
        """Serialize and write ``events`` (one message's frames) under the write lock."""
        async with self._send_lock:
            if self._closed is not None:
                raise ConnectionClosed(*self._closed)
            deadline = anyio.current_time() + self._write_timeout
            # one scope: shielded (whole messages, or the connection ends) with its deadline
            with anyio.CancelScope(shield=True, deadline=deadline) as scope:
                try:
                    for event in events:
                        await self._stream.send(self._serialize(event))
                    return
                except STREAM_ERRORS as exc:
                    error: TransportError = ConnectionClosed(1006, "connection lost while writing")
                    cause: BaseException | None = exc
            if scope.cancelled_caught:
                error = TransportTimeout(
                    f"a WebSocket write did not finish within {self._write_timeout} s"
                )
                cause = None
            await self._finish(1006, "connection lost while writing")
            raise error from cause

    def _serialize(self, event: Event) -> bytes:
        try:
            return self._ws.send(event)
        except UnicodeEncodeError:
            raise LocalProtocolError("text messages must be encodable as UTF-8") from None
        except WsLocalProtocolError:
            raise ConnectionClosed(*(self._local_close or (1006, "closing"))) from None

    async def _finish(self, code: int, reason: str) -> None:
        """Record the ending (first cause wins), wake ``aclose`` and close the transport."""
        if self._closed is None:
            self._closed = (code, reason)
        self._finished.set()
        if not self._transport_closed:
            self._transport_closed = True
            with anyio.CancelScope(shield=True), contextlib.suppress(*STREAM_ERRORS):
                await anyio.aclose_forcefully(self._stream)
