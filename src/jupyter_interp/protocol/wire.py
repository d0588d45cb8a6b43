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

* ``decode`` of any ``str``, ``bytes`` or ``memoryview`` of bytes returns a ``Message``
  or raises ``RemoteProtocolError``, never anything else: the offset count is checked
  against the frame length before any table is read, offsets must be non-decreasing and
  inside the frame, and JSON errors are translated. A view is read in place: the frame's
  JSON is decoded straight from it, once. ``encode`` raises ``LocalProtocolError`` for
  content that strict JSON cannot carry.
* The JSON inside frames is written and read by ``wire_json``: compact UTF-8 out,
  UTF-8 with replacement characters in (invalid UTF-8 in a v1 channel name therefore
  fails the channel check).
* Speed never changes an answer: the usual frame (a v1 frame without buffers, one byte
  per character; a legacy text frame as Jupyter Server writes it) is offered to a fast
  path in ``wire_json`` first, and any frame it cannot settle takes the general path,
  which decides alone.
"""

from __future__ import annotations

import abc
import struct
from collections.abc import Sequence
from itertools import accumulate, pairwise
from typing import Any, ClassVar

from ..errors import LocalProtocolError, RemoteProtocolError
from .messages import Message, _message_from_parts
from .wire_json import (
    dump_content,
    dump_header,
    dump_object,
    dump_text,
    legacy_document,
    load,
    load_utf8,
    load_v1_parts,
    v1_parts_in_place,
)

__all__ = ["V1_SUBPROTOCOL", "Codec", "LegacyCodec", "V1Codec", "codec_for"]

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

_U32_MAX = 0xFFFF_FFFF
_LEGACY_COUNT = struct.Struct(">I")
_V1_COUNT = struct.Struct("<Q")
_V1_STRUCTS: dict[int, struct.Struct] = {}
#: the count and offset table of a frame without buffers (count 6, six offsets)
_V1_PLAIN = struct.Struct("<7Q")
_V1_PLAIN_SIZE = _V1_PLAIN.size  # a module name: cheaper than the attribute per frame


def _v1_struct(fields: int) -> struct.Struct:
    """``fields`` little-endian u64s (common layouts cached, boundedly)."""
    layout = _V1_STRUCTS.get(fields)
    if layout is None:
        layout = struct.Struct(f"<{fields}Q")
        if len(_V1_STRUCTS) < 16:
            _V1_STRUCTS[fields] = layout
    return layout


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
    if "header" not in data:  # ``from_wire`` names what is missing
        return Message.from_wire(data, channel=channel, buffers=buffers)
    return _message_from_parts(  # what ``from_wire`` does next, without its extra calls
        Message,
        channel,
        data["header"],
        data.get("parent_header"),
        data.get("metadata"),
        data.get("content"),
        buffers,
    )


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
    def decode(self, frame: str | bytes | memoryview) -> Message:
        """Parse one complete frame: text frames as ``str``, binary frames as ``bytes`` or
        a ``memoryview`` of bytes, read in place (no copy of the frame is made).

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
        text = dump_text(message.to_wire(), "message")
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

    def decode(self, frame: str | bytes | memoryview) -> Message:
        """Parse a JSON text frame or a legacy binary frame.

        A text frame as Jupyter Server writes it is read by ``wire_json.legacy_document``;
        any other goes to the general path, which decides on its own.

        Raises:
            RemoteProtocolError: the frame is malformed in any way.
        """
        if isinstance(frame, str):
            message = legacy_document(frame)
            if message is not None:
                return message
            return _message_from_json(load(frame, "text frame"), ())
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
            data = load_utf8(view[bounds[0] : bounds[1]], "binary frame message")
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
        channel = message.channel.encode("utf-8")
        header = dump_header(message.header)
        parent = dump_object(message.parent_header, "parent_header")
        metadata = dump_object(message.metadata, "metadata")
        content = dump_content(message)
        if not message.buffers:  # the usual case: the fixed table of six offsets
            header_at = _V1_PLAIN_SIZE + len(channel)
            parent_at = header_at + len(header)
            metadata_at = parent_at + len(parent)
            content_at = metadata_at + len(metadata)
            end = content_at + len(content)
            table = _V1_PLAIN.pack(
                6, _V1_PLAIN_SIZE, header_at, parent_at, metadata_at, content_at, end
            )
            return b"".join((table, channel, header, parent, metadata, content))
        parts = [channel, header, parent, metadata, content, *message.buffers]
        count = len(parts) + 1
        offsets = accumulate(map(len, parts), initial=8 * (count + 1))
        return b"".join([_v1_struct(count + 1).pack(count, *offsets), *parts])

    def decode(self, frame: str | bytes | memoryview) -> Message:
        """Parse one v1 binary frame.

        The common frame (no buffers, one byte per character) is read as one text by
        ``wire_json.v1_parts_in_place``; any frame it cannot settle goes to the general
        path, which decides (and names any problem) on its own.

        Raises:
            RemoteProtocolError: a text frame, or a binary frame malformed in any way.
        """
        if isinstance(frame, str) or len(frame) < _V1_PLAIN_SIZE:
            return _decode_v1(frame)
        count, start, header_at, parent_at, metadata_at, content_at, end = _V1_PLAIN.unpack_from(
            frame
        )
        if not (
            count == 6
            and _V1_PLAIN_SIZE
            <= start
            <= header_at
            <= parent_at
            <= metadata_at
            <= content_at
            <= end
            and end == len(frame)
        ):
            return _decode_v1(frame)
        text = str(frame[start:], "utf-8", "replace")  # a view's slice copies nothing
        if len(text) != end - start:  # multi-byte characters: text and byte offsets differ
            return _decode_v1(frame)
        message = v1_parts_in_place(
            text, header_at - start, parent_at - start, metadata_at - start, content_at - start
        )
        return _decode_v1(frame) if message is None else message


def _decode_v1(frame: str | bytes | memoryview) -> Message:
    """The general v1 decoder: any frame, every problem named."""
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
        offsets = _v1_struct(count).unpack_from(view, 8)
        _check_offsets(offsets, table_end, size)
        if offsets[-1] != size:
            raise RemoteProtocolError(f"v1 frame ends at {size}, its table at {offsets[-1]}")
        channel = str(view[offsets[0] : offsets[1]], "utf-8", "replace")
        header, parent, metadata, content = load_v1_parts(view, offsets)
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
