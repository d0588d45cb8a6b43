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
* Speed never changes an answer: the usual v1 frame (no buffers, one byte per
  character, no whitespace around parts) is parsed in place from one text, and a parent
  header identical to the previous one is copied from it instead of parsed again; any
  frame the fast path cannot settle takes the general path, which decides alone. The
  remembered parent text is always the JSON of the remembered value. ``encode`` writes
  a header without extra fields from a template, quoting each value with the encoder's
  own string quoter: the same bytes and the same errors as the encoder.
"""

from __future__ import annotations

import abc
import json
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate, pairwise
from json.encoder import encode_basestring
from typing import Any, ClassVar

from ..errors import LocalProtocolError, RemoteProtocolError
from .messages import (
    CHANNELS,
    Header,
    Message,
    _checked_header,
    _message_from_parts,
    _message_with_header,
)

__all__ = ["V1_SUBPROTOCOL", "Codec", "LegacyCodec", "V1Codec", "codec_for"]

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"


def _compact_json_encoder() -> Callable[[Any], str]:
    """``JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode``.

    ``encode`` builds a C encoder per call; on CPython it is built once here instead,
    without cycle markers (a shared markers dict could keep stale ids after an error):
    a cycle ends in ``RecursionError``, which ``_dump_text`` reports like any other
    unencodable value.
    """
    plain = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
    if make is None:  # pragma: no cover - interpreters without the C accelerator
        return plain.encode
    # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
    chunks = make(
        None, plain.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return lambda obj: "".join(chunks(obj, 0))


_encode_json = _compact_json_encoder()
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
_V1_STRUCTS: dict[int, struct.Struct] = {}
#: the count and offset table of a frame without buffers (count 6, six offsets)
_V1_PLAIN = struct.Struct("<7Q")
_V1_PLAIN_SIZE = _V1_PLAIN.size  # a module name: cheaper than the attribute per frame
#: ``Header.to_wire()`` without extra fields as compact JSON (values already quoted)
_HEADER_JSON = '{"msg_id":%s,"msg_type":%s,"session":%s,"username":%s,"date":%s,"version":%s}'
#: ``execute_request`` content as ``MessageFactory`` builds it (no user expressions) as
#: compact JSON, values already written
_EXECUTE_KEYS = (
    "code",
    "silent",
    "store_history",
    "user_expressions",
    "allow_stdin",
    "stop_on_error",
)
_EXECUTE_JSON = (
    '{"code":%s,"silent":%s,"store_history":%s,"user_expressions":{},'
    '"allow_stdin":%s,"stop_on_error":%s}'
)
#: ``fullmatch(text, start, end)`` of a header exactly as jupyter_client packs it (every
#: kernel built on it, ipykernel first, and the server's own messages): its key order,
#: its separators, string values without escapes (those the C scanner reads as written)
_JUPYTER_CLIENT_HEADER = re.compile(
    r'\{"msg_id": %s, "msg_type": %s, "username": %s, "session": %s, "date": %s, "version": %s\}'
    % ((r'"([^"\\\x00-\x1f]*)"',) * 6)
).fullmatch
#: the text and value of the last flat parent header parsed (replaced as one tuple)
_last_parent: tuple[str, dict[str, str]] = ("{}", {})


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


def _dump_header(header: Header) -> bytes:
    """UTF-8 JSON of ``header.to_wire()``, from a template when ``extra`` is empty."""
    if header.extra:
        return _dump_text(header.to_wire(), "header").encode("utf-8")
    quote = encode_basestring  # the function the compact encoder quotes strings with
    text = _HEADER_JSON % (
        quote(header.msg_id),
        quote(header.msg_type),
        quote(header.session),
        quote(header.username),
        quote(header.date),
        quote(header.version),
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise LocalProtocolError(f"header cannot be sent as JSON: {exc}") from exc


def _dump_content(message: Message) -> bytes:
    """UTF-8 JSON of ``message.content``, from a template for a usual ``execute_request``."""
    content = message.content
    if (
        type(content) is dict
        and message.header.msg_type == "execute_request"
        and tuple(content) == _EXECUTE_KEYS
    ):
        code, silent, store_history, expressions, allow_stdin, stop_on_error = content.values()
        if (
            type(code) is str
            and type(expressions) is dict
            and not expressions
            and type(silent) is type(store_history) is type(allow_stdin) is bool
            and type(stop_on_error) is bool
        ):
            text = _EXECUTE_JSON % (
                encode_basestring(code),  # the compact encoder's string quoter
                "true" if silent else "false",
                "true" if store_history else "false",
                "true" if allow_stdin else "false",
                "true" if stop_on_error else "false",
            )
            try:
                return text.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogates
                raise LocalProtocolError(f"content cannot be sent as JSON: {exc}") from exc
    return _dump_object(content, "content")


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


def _remember_parent(text: str, parent: Any) -> Any:
    """Remember a flat parent header (only strings: a shallow copy is a full one)."""
    global _last_parent
    if type(parent) is dict and all(type(field) is str for field in parent.values()):
        _last_parent = (text, parent)
        return dict(parent)
    return parent


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
        channel = message.channel.encode("utf-8")
        header = _dump_header(message.header)
        parent = _dump_object(message.parent_header, "parent_header")
        metadata = _dump_object(message.metadata, "metadata")
        content = _dump_content(message)
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

    def decode(self, frame: str | bytes) -> Message:
        """Parse one v1 binary frame.

        The common frame (no buffers, one byte per character, canonical JSON) is parsed
        here from one text: the C scanner parses each part in place and a part counts
        only if it ends exactly at the next offset. Any other frame goes to the general
        path, which decides (and names any problem) on its own.

        Raises:
            RemoteProtocolError: a text frame, or a binary frame malformed in any way.
        """
        if type(frame) is not bytes or len(frame) < _V1_PLAIN_SIZE:
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
        text = frame[start:].decode("utf-8", "replace")
        end -= start
        if len(text) != end:  # multi-byte characters: text and byte offsets differ
            return _decode_v1(frame)
        header_at -= start
        parent_at -= start
        metadata_at -= start
        content_at -= start
        header_fields = _JUPYTER_CLIENT_HEADER(text, header_at, parent_at)
        try:
            if header_fields is None:
                header, stop = _scan_json(text, header_at)
                if stop != parent_at:
                    return _decode_v1(frame)
            # the messages answering one request all carry its header: an identical text
            # gets a fresh copy of the last flat one parsed instead of a new parse
            last_text, last_parent = _last_parent
            if metadata_at - parent_at == len(last_text) and text.startswith(last_text, parent_at):
                parent = dict(last_parent)
            else:
                parent, stop = _scan_json(text, parent_at)
                if stop != metadata_at:
                    return _decode_v1(frame)
                parent = _remember_parent(text[parent_at:metadata_at], parent)
            metadata: Any
            if content_at - metadata_at == 2 and text.startswith("{}", metadata_at):  # the usual
                metadata = {}
            else:
                metadata, stop = _scan_json(text, metadata_at)
                if stop != content_at:
                    return _decode_v1(frame)
            content, stop = _scan_json(text, content_at)
        except (StopIteration, ValueError, RecursionError):
            return _decode_v1(frame)
        if stop != end:
            return _decode_v1(frame)
        channel = text[:header_at]
        if header_fields is None:
            return _message_from_parts(Message, channel, header, parent, metadata, content)
        if channel not in CHANNELS:
            return _decode_v1(frame)  # which names the problem
        msg_id, msg_type, username, session, date, version = header_fields.groups()
        checked = _checked_header(msg_id, msg_type, session, username, date, version, {})
        return _message_with_header(Message, channel, checked, parent, metadata, content)


def _decode_v1(frame: str | bytes) -> Message:
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
