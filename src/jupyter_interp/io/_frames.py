"""Incoming WebSocket frames: whole data frames parsed here, everything else by wsproto.

Theory of operation: a server sends Jupyter messages as single unfragmented text or
binary frames, and wsproto's general frame parser costs about as much per frame as the
rest of the client's work on it. ``InboundFrames`` buffers the bytes read from the
server and splits them at frame boundaries (the header alone gives a frame's length).
A frame that is complete, final (FIN), text or binary, without RSV bits or a mask,
minimally length-encoded, within ``max_message_size`` and (for text) valid UTF-8, while
no fragmented message is open and the connection is OPEN, becomes a message at once.
Any other frame (control frames, fragments, anything invalid or oversized) is handed to
the ``WSConnection`` byte-exact, whole or as its bytes arrive, and the caller drains
wsproto's events as usual.

Invariant: wsproto only ever sees whole frames in their original order (or a frame's
bytes up to the last one read), so its parser is at a frame boundary whenever this
class parses, and a frame parsed here is one wsproto would have turned into exactly the
same message without changing its own state.
"""

from __future__ import annotations

from wsproto import WSConnection
from wsproto.connection import ConnectionState

__all__ = ["InboundFrames"]

_FIN = 0x80
_MASKED = 0x80
_WHOLE_TEXT = _FIN | 0x1  # FIN, no RSV bits, opcode text
_WHOLE_BINARY = _FIN | 0x2
_CONTINUATION, _TEXT, _BINARY = 0x0, 0x1, 0x2


def _header(buffer: bytearray) -> tuple[int, int, int] | None:
    """First byte, header length and payload length of the frame at the start of
    ``buffer``; ``None`` while the header is incomplete."""
    size = len(buffer)
    if size < 2:
        return None
    second = buffer[1]
    length, header = second & 0x7F, 2
    if length == 126:
        if size < 4:
            return None
        length, header = int.from_bytes(buffer[2:4], "big"), 4
    elif length == 127:
        if size < 10:
            return None
        length, header = int.from_bytes(buffer[2:10], "big"), 10
    if second & _MASKED:
        header += 4
    return buffer[0], header, length


class InboundFrames:
    """Splits what the server sends into fast-path messages and wsproto's share."""

    def __init__(self, connection: WSConnection, *, max_message_size: int) -> None:
        self._ws = connection
        self._max_message_size = max_message_size
        self._buffer = bytearray()
        self._owed = 0  # bytes of the current frame still due to wsproto
        self._fragmented = False  # wsproto holds an unfinished fragmented message
        self._eof = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def feed_eof(self) -> None:
        """The server closed its side: the next steps hand wsproto what is left (its
        events come first, as if it had read the bytes before the end), then the end."""
        self._eof = True

    def step(self) -> str | bytes | bool:
        """Take the next message or frame from the buffer.

        Returns:
            a message (``str`` or ``bytes``); ``True`` if bytes went to wsproto (drain
            its events before stepping again); ``False`` if more data is needed.
        """
        buffer = self._buffer
        if self._eof:
            self._ws.receive_data(bytes(buffer) if buffer else None)
            buffer.clear()
            return True
        if not self._owed:
            parsed = _header(buffer)
            if parsed is None:
                return False
            first, header, length = parsed
            end = header + length
            if (
                first in (_WHOLE_BINARY, _WHOLE_TEXT)
                # unmasked, and the length in its shortest form (else wsproto objects)
                and header == (2 if length < 126 else 4 if length < 65536 else 10)
                and length <= self._max_message_size
                and not self._fragmented
                and self._ws.state is ConnectionState.OPEN
            ):
                if len(buffer) < end:
                    return False
                message = self._take(first, header, end)
                if message is not None:
                    return message
            opcode = first & 0x0F
            if opcode in (_TEXT, _BINARY) and not first & _FIN:
                self._fragmented = True
            elif opcode == _CONTINUATION and first & _FIN:
                self._fragmented = False
            self._owed = end
        share = min(self._owed, len(buffer))
        if not share:
            return False
        self._ws.receive_data(bytes(buffer[:share]))
        del buffer[:share]
        self._owed -= share
        return True

    def _take(self, first: int, header: int, end: int) -> str | bytes | None:
        """The frame's payload as a message; ``None`` for text that is not UTF-8."""
        buffer = self._buffer
        with memoryview(buffer) as view, view[header:end] as payload:
            if first == _WHOLE_BINARY:
                message: str | bytes = bytes(payload)
            else:
                try:
                    message = str(payload, "utf-8")
                except UnicodeDecodeError:
                    return None  # wsproto closes with 1007
        del buffer[:end]
        return message
