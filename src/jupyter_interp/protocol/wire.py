"""WebSocket frame codecs: one ``Message`` in, one WebSocket frame out, and back.

Strategy: the kernel WebSocket speaks one of two framings, fixed at the handshake by
the negotiated subprotocol. ``codec_for(subprotocol)`` picks the codec once; after that
``encode``/``decode`` are pure functions of one message or one complete frame (the I/O
layer reassembles fragments and sends ``str`` results as text frames, ``bytes`` as
binary frames).

* ``LegacyCodec`` (no subprotocol): a message without buffers is one JSON text frame
  (``Message.to_wire()``, ``channel`` included, no ``buffers`` key, which the server
  defaults to ``[]``). A message with buffers is a legacy binary frame: a big-endian
  u32 count ``1 + len(buffers)``, that many absolute u32 start offsets, the JSON (with
  ``channel``), then the raw buffers, the last one running to the end of the frame.
* ``V1Codec`` (``v1.kernel.websocket.jupyter.org``): every message is one binary frame:
  a little-endian u64 count ``n = 6 + len(buffers)``, ``n`` absolute u64 offsets, the
  channel name, the header, parent header, metadata and content JSON objects, then the
  buffers; the last offset is the frame length. Servers speaking v1 send only binary
  frames and cannot parse text frames, so a text frame under v1 is a protocol error.

Invariants:

* ``decode`` of any ``str`` or ``bytes`` returns a ``Message`` or raises
  ``RemoteProtocolError``, never anything else: the offset count is checked against the
  frame length before any table is read, offsets must be non-decreasing and inside the
  frame, and JSON errors (including nesting too deep to parse) are translated.
* JSON parts of binary frames are decoded as UTF-8 with replacement characters, like
  jupyter_client does when it relays kernel bytes; invalid UTF-8 in a channel name
  therefore fails the channel check.
* ``encode`` writes compact UTF-8 JSON (``ensure_ascii=False``) in the canonical layout
  and raises ``LocalProtocolError`` for content that strict JSON cannot carry: objects
  the encoder does not know, NaN or infinities, cycles, lone surrogates.
"""

from __future__ import annotations

import abc
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any, ClassVar

from ..errors import LocalProtocolError, RemoteProtocolError
from .messages import Message

__all__ = ["V1_SUBPROTOCOL", "Codec", "LegacyCodec", "V1Codec", "codec_for"]

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_JSON_DECODER = json.JSONDecoder()
_decode_json = _JSON_DECODER.decode
#: ``scan(text, index) -> (value, end)``: the scanner ``JSONDecoder.decode`` runs, without
#: its whitespace handling (typeshed does not declare the ``scan_once`` attribute).
_scan_json: Callable[[str, int], tuple[Any, int]] = _JSON_DECODER.scan_once  # type: ignore[attr-defined]
_U32_MAX = 0xFFFF_FFFF
_LEGACY_COUNT = struct.Struct(">I")
_V1_COUNT = struct.Struct("<Q")
_EMPTY_OBJECT = memoryview(b"{}")
# v1 parts after the channel that are JSON objects, in frame order.
_V1_JSON_PARTS = ("header", "parent_header", "metadata", "content")
_PARTS = tuple(enumerate(_V1_JSON_PARTS, start=1))  # (offset index, name)
_V1_TABLES: dict[int, struct.Struct] = {}


def _dump_text(obj: Any, what: str) -> str:
    """Compact JSON text of ``obj``, checked to be encodable as UTF-8."""
    try:
        text = _encode_json(obj)
        if not text.isascii():
            text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"{what} cannot be sent as JSON: {exc}") from exc
    return text


def _dump_object(obj: Mapping[str, Any], what: str) -> bytes:
    if not obj:
        return b"{}"
    return _dump_text(obj if type(obj) is dict else dict(obj), what).encode("utf-8")


def _load(text: str, what: str) -> Any:
    try:
        return _decode_json(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"{what} is not valid JSON: {exc}") from exc


def _load_utf8(raw: memoryview, what: str) -> Any:
    if raw == _EMPTY_OBJECT:
        return {}
    return _load(str(raw, "utf-8", "replace"), what)


def _load_v1_parts(view: memoryview, offsets: Sequence[int]) -> list[Any]:
    """The four JSON parts of a v1 frame, each exactly as ``_load_utf8`` would return it.

    Fast path: the parts are contiguous, so they are decoded to text once and the C
    scanner parses each in place; a result counts only if it ends exactly where its part
    ends. Anything else (non-ASCII text, whitespace, errors) takes ``_load_utf8``.
    """
    base, end = offsets[1], offsets[5]
    text = str(view[base:end], "utf-8", "replace")
    if len(text) != end - base:  # multi-byte characters: text and byte offsets differ
        return [_load_utf8(view[offsets[i] : offsets[i + 1]], name) for i, name in _PARTS]
    values = []
    for i, name in _PARTS:
        start, stop = offsets[i] - base, offsets[i + 1] - base
        try:
            value, stopped = _scan_json(text, start)
        except (StopIteration, ValueError, RecursionError):
            stopped = -1
        if stopped != stop:
            value = _load_utf8(view[offsets[i] : offsets[i + 1]], name)
        values.append(value)
    return values


def _v1_table(count: int) -> struct.Struct:
    """The offset table layout for ``count`` offsets (common ones cached, boundedly)."""
    table = _V1_TABLES.get(count)
    if table is None:
        table = struct.Struct(f"<{count}Q")
        if len(_V1_TABLES) < 16:
            _V1_TABLES[count] = table
    return table


def _check_offsets(offsets: Sequence[int], table_end: int, size: int) -> None:
    if offsets[0] < table_end or offsets[-1] > size or list(offsets) != sorted(offsets):
        raise RemoteProtocolError(f"frame offsets are not ordered within [{table_end}, {size}]")


def _message_from_json(data: Any, buffers: tuple[bytes, ...]) -> Message:
    """A legacy message: the channel travels inside the JSON object."""
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"frame must hold a JSON object, got {type(data).__name__}")
    channel = data.get("channel")
    if not isinstance(channel, str):
        raise RemoteProtocolError(f"message channel must be a string, not {type(channel).__name__}")
    return Message.from_wire(data, channel=channel, buffers=buffers)


class Codec(abc.ABC):
    """Turns messages into WebSocket frames and frames into messages for one subprotocol.

    ``encode`` returns ``str`` for a text frame and ``bytes`` for a binary frame.
    """

    __slots__ = ()

    #: The negotiated ``Sec-WebSocket-Protocol`` value this codec speaks (None: legacy).
    subprotocol: ClassVar[str | None]

    @abc.abstractmethod
    def encode(self, message: Message) -> str | bytes:
        """Serialise one message as one frame.

        Raises:
            LocalProtocolError: the message holds data strict JSON cannot carry.
        """

    @abc.abstractmethod
    def decode(self, frame: str | bytes) -> Message:
        """Parse one complete frame (text frames as ``str``, binary frames as ``bytes``).

        Raises:
            RemoteProtocolError: the frame is malformed in any way.
        """


class LegacyCodec(Codec):
    """The framing used when no subprotocol was negotiated."""

    __slots__ = ()
    subprotocol: ClassVar[str | None] = None

    def encode(self, message: Message) -> str | bytes:
        """JSON text frame without buffers, legacy binary frame with them.

        Raises:
            LocalProtocolError: unserialisable data, or a frame beyond u32 offsets.
        """
        text = _dump_text(message.to_wire(), "message")
        buffers = message.buffers
        if not buffers:
            return text
        body = text.encode("utf-8")
        count = 1 + len(buffers)
        position = 4 * (count + 1)
        offsets = []
        for part in (body, *buffers):
            offsets.append(position)
            position += len(part)
        if offsets[-1] > _U32_MAX:
            raise LocalProtocolError("message too large for the legacy binary framing")
        table = struct.pack(f">{count + 1}I", count, *offsets)
        return b"".join([table, body, *buffers])

    def decode(self, frame: str | bytes) -> Message:
        """Parse a JSON text frame or a legacy binary frame.

        Raises:
            RemoteProtocolError: the frame is malformed in any way.
        """
        if isinstance(frame, str):
            return _message_from_json(_load(frame, "text frame"), ())
        with memoryview(frame) as view:
            size = len(view)
            if size < 4:
                raise RemoteProtocolError(f"binary frame of {size} bytes has no offset count")
            (count,) = _LEGACY_COUNT.unpack_from(view)
            table_end = 4 * (count + 1)
            if count < 1 or table_end > size:
                raise RemoteProtocolError(f"binary frame of {size} bytes cannot hold {count} parts")
            bounds = (*struct.unpack_from(f">{count}I", view, 4), size)
            _check_offsets(bounds, table_end, size)
            data = _load_utf8(view[bounds[0] : bounds[1]], "binary frame message")
            buffers = tuple(bytes(view[start:stop]) for start, stop in pairwise(bounds[1:]))
        return _message_from_json(data, buffers)


class V1Codec(Codec):
    """The ``v1.kernel.websocket.jupyter.org`` framing: one binary frame per message."""

    __slots__ = ()
    subprotocol: ClassVar[str | None] = V1_SUBPROTOCOL

    def encode(self, message: Message) -> bytes:
        """One binary frame in the canonical v1 layout.

        Raises:
            LocalProtocolError: the message holds data strict JSON cannot carry.
        """
        parts = [
            message.channel.encode("utf-8"),
            _dump_text(message.header.to_wire(), "header").encode("utf-8"),
            _dump_object(message.parent_header, "parent_header"),
            _dump_object(message.metadata, "metadata"),
            _dump_object(message.content, "content"),
            *message.buffers,
        ]
        count = len(parts) + 1
        position = 8 * (count + 1)
        offsets = [position]
        for part in parts:
            position += len(part)
            offsets.append(position)
        return b"".join([struct.pack(f"<{count + 1}Q", count, *offsets), *parts])

    def decode(self, frame: str | bytes) -> Message:
        """Parse one v1 binary frame.

        Raises:
            RemoteProtocolError: a text frame, or a binary frame malformed in any way.
        """
        if isinstance(frame, str):
            raise RemoteProtocolError("text frame received under the v1 subprotocol")
        with memoryview(frame) as view:
            size = len(view)
            if size < 8:
                raise RemoteProtocolError(f"binary frame of {size} bytes has no offset count")
            (count,) = _V1_COUNT.unpack_from(view)
            table_end = 8 * (count + 1)
            if count < 6 or table_end > size:
                raise RemoteProtocolError(f"v1 frame of {size} bytes cannot hold {count} offsets")
            offsets = _v1_table(count).unpack_from(view, 8)
            _check_offsets(offsets, table_end, size)
            if offsets[-1] != size:
                raise RemoteProtocolError(f"v1 frame ends at {size}, its table at {offsets[-1]}")
            channel = str(view[offsets[0] : offsets[1]], "utf-8", "replace")
            header, parent, metadata, content = _load_v1_parts(view, offsets)
            buffers: tuple[bytes, ...] = ()
            if count > 6:
                buffers = tuple(bytes(view[start:stop]) for start, stop in pairwise(offsets[5:]))
        return Message.from_parts(channel, header, parent, metadata, content, buffers)


_CODECS: dict[str | None, Codec] = {None: LegacyCodec(), V1_SUBPROTOCOL: V1Codec()}


def codec_for(subprotocol: str | None) -> Codec:
    """The codec for the subprotocol the server accepted in the WebSocket handshake.

    Args:
        subprotocol: the accepted ``Sec-WebSocket-Protocol``, or None when the server
            chose none (the legacy framing).

    Returns:
        A stateless codec, shared between connections.

    Raises:
        LocalProtocolError: the subprotocol is not one this library offers.
    """
    try:
        return _CODECS[subprotocol]
    except KeyError:
        raise LocalProtocolError(f"unsupported WebSocket subprotocol {subprotocol!r}") from None
