"""Incoming WebSocket frames: whole data frames parsed here, everything else by wsproto.

Theory of operation: a server sends Jupyter messages as single unfragmented text or
binary frames, and wsproto's general frame parser costs about as much per frame as the
rest of the client's work on it. ``InboundFrames`` parses the chunks read from the
server in place and splits them at frame boundaries (the header alone gives a frame's
length). A frame that is complete, final (FIN), text or binary, without RSV bits or a
mask, minimally length-encoded, within ``max_message_size`` and (for text) valid UTF-8,
while no fragmented message is open and the connection is OPEN, becomes a message at
once. Any other frame (control frames, fragments, anything invalid or oversized) is
handed to the ``WSConnection`` byte-exact, whole or as its bytes arrive, and the caller
drains wsproto's events as usual.

Memory: nothing is copied to reach a binary payload. A frame that lies whole in the
last chunk read is returned as a read-only ``memoryview`` of that chunk; a frame that
straddles chunks collects in a ``bytearray`` of exactly its own bytes (topped up from
each chunk with only what it still lacks), which the returned view then owns. Text is
decoded once, straight from the chunk or that buffer. The chunk is let go as soon as
its last frame is taken, before the next read.

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


def _header(data: bytes | bytearray, at: int) -> tuple[int, int, int] | None:
    """First byte, header length and payload length of the frame at ``data[at:]``;
    ``None`` while the header is incomplete."""
    size = len(data) - at
    if size < 2:
        return None
    second = data[at + 1]
    length, header = second & 0x7F, 2
    if length == 126:
        if size < 4:
            return None
        length, header = int.from_bytes(data[at + 2 : at + 4], "big"), 4
    elif length == 127:
        if size < 10:
            return None
        length, header = int.from_bytes(data[at + 2 : at + 10], "big"), 10
    if second & _MASKED:
        header += 4
    return data[at], header, length


def _header_missing(partial: bytearray) -> int:
    """How many bytes the frame header starting ``partial`` lacks, as far as its bytes
    so far tell (0: complete)."""
    if len(partial) < 2:
        return 2 - len(partial)
    length, masked = partial[1] & 0x7F, partial[1] & _MASKED
    header = (2 if length < 126 else 4 if length == 126 else 10) + (4 if masked else 0)
    return max(header - len(partial), 0)


class InboundFrames:
    """Splits what the server sends into fast-path messages and wsproto's share.

    Between steps, the unparsed bytes are ``_partial`` (the start of one frame, never
    more) followed by ``_chunk[_at:]``.
    """

    def __init__(self, connection: WSConnection, *, max_message_size: int) -> None:
        self._ws = connection
        self._max_message_size = max_message_size
        self._chunk = b""  # the last chunk read, parsed in place from ``_at``
        self._at = 0
        self._partial = bytearray()  # the start of a frame the chunks so far cut short
        self._owed = 0  # bytes of the current frame still due to wsproto
        self._fragmented = False  # wsproto holds an unfinished fragmented message
        self._eof = False

    def feed(self, data: bytes) -> None:
        """The next chunk read; only after ``step`` asked for more (all else is parsed)."""
        self._chunk, self._at = data, 0

    def feed_eof(self) -> None:
        """The server closed its side: the next steps hand wsproto what is left (its
        events come first, as if it had read the bytes before the end), then the end."""
        self._eof = True

    def step(self) -> str | memoryview | bool:
        """Take the next message or frame.

        Returns:
            a message (``str``, or a read-only ``memoryview`` for binary); ``True`` if
            bytes went to wsproto (drain its events before stepping again); ``False``
            if more data is needed.
        """
        if self._eof:
            rest = bytes(self._partial) + self._chunk[self._at :]
            self._partial, self._chunk, self._at = bytearray(), b"", 0
            self._ws.receive_data(rest or None)
            return True
        if self._owed:
            return self._hand_over()
        if self._partial:
            return self._step_partial()
        chunk, at = self._chunk, self._at
        parsed = _header(chunk, at)
        if parsed is None:
            return self._keep_rest()
        first, header, length = parsed
        end = at + header + length
        if self._fast(first, header, length):
            if len(chunk) < end:
                return self._keep_rest()
            message = _payload(first, chunk, at + header, end)
            if message is not None:
                self._at = end
                if end == len(chunk):
                    self._chunk, self._at = b"", 0
                return message
        self._to_wsproto(first, header + length)
        return self._hand_over()

    def _step_partial(self) -> str | memoryview | bool:
        """Step on a frame whose first bytes are in ``_partial``: top it up, then decide."""
        partial = self._partial
        while missing := _header_missing(partial):  # its first two bytes give its size
            if not self._top_up(missing):
                return False
        parsed = _header(partial, 0)
        assert parsed is not None  # the header is complete
        first, header, length = parsed
        if self._fast(first, header, length):
            if not self._top_up(header + length - len(partial)):
                return False
            message = _payload(first, partial, header, len(partial))
            if message is not None:
                self._partial = bytearray()  # a binary message's view owns the old one
                return message
        self._to_wsproto(first, header + length)
        return self._hand_over()

    def _fast(self, first: int, header: int, length: int) -> bool:
        """Whether the frame may become a message here (else wsproto parses it)."""
        return (
            first in (_WHOLE_BINARY, _WHOLE_TEXT)
            # unmasked, and the length in its shortest form (else wsproto objects)
            and header == (2 if length < 126 else 4 if length < 65536 else 10)
            and length <= self._max_message_size
            and not self._fragmented
            and self._ws.state is ConnectionState.OPEN
        )

    def _top_up(self, missing: int) -> bool:
        """Move up to ``missing`` bytes from the chunk to ``_partial``; True if all came."""
        if missing <= 0:
            return True
        chunk, at = self._chunk, self._at
        taken = min(missing, len(chunk) - at)
        if taken:
            with memoryview(chunk) as view:
                self._partial += view[at : at + taken]
            self._at = at + taken
        if self._at == len(chunk):
            self._chunk, self._at = b"", 0
        return taken == missing

    def _keep_rest(self) -> bool:
        """The chunk ends inside a frame: keep its start in ``_partial``; more is needed."""
        self._top_up(len(self._chunk) - self._at)
        return False

    def _to_wsproto(self, first: int, size: int) -> None:
        """The frame starting here (``size`` bytes) goes to wsproto as its bytes come."""
        opcode = first & 0x0F
        if opcode in (_TEXT, _BINARY) and not first & _FIN:
            self._fragmented = True
        elif opcode == _CONTINUATION and first & _FIN:
            self._fragmented = False
        self._owed = size

    def _hand_over(self) -> bool:
        """Give wsproto the bytes of its frame that are here (``_partial`` first)."""
        if self._partial:
            share = bytes(self._partial[: self._owed])
            del self._partial[: len(share)]
        else:
            chunk, at = self._chunk, self._at
            share = chunk[at : at + self._owed]
            self._at = at + len(share)
            if self._at == len(chunk):
                self._chunk, self._at = b"", 0
        if not share:
            return False
        self._ws.receive_data(share)
        self._owed -= len(share)
        return True


def _payload(first: int, data: bytes | bytearray, start: int, end: int) -> str | memoryview | None:
    """The frame's payload ``data[start:end]`` as a message; ``None`` for text that is
    not UTF-8 (wsproto then closes with 1007)."""
    if first == _WHOLE_BINARY:
        return memoryview(data).toreadonly()[start:end]
    with memoryview(data) as view:
        try:
            return str(view[start:end], "utf-8")
        except UnicodeDecodeError:
            return None
