"""The JSON inside WebSocket frames: compact writing, parsing in place, the fast paths.

Strategy: the codecs in ``wire`` own the framings (offset tables, text or binary
frames); this module owns the JSON text of message parts, written and read.

* Writing: compact UTF-8 JSON (``ensure_ascii=False``) through one C encoder built once;
  ``LocalProtocolError`` for what strict JSON cannot carry (unknown objects, NaN or
  infinities, cycles, lone surrogates). A header without extra fields and a usual
  ``execute_request`` content are written from templates, quoting each value with the
  encoder's own string quoter: the same bytes and the same errors as the encoder.
* Reading, general path: ``load``/``load_utf8`` translate every JSON error (including
  nesting too deep to parse) to ``RemoteProtocolError``; bytes are decoded as UTF-8 with
  replacement characters, like jupyter_client does when it relays kernel bytes.
* Reading, fast paths (``v1_parts_in_place``, ``legacy_document``): text laid out the
  way servers write it is parsed in place. A header exactly as jupyter_client packs it
  is read by one regular expression; other parts by the C scanner, and a part counts
  only if it ends exactly where the frame says it ends. They return None for anything
  they cannot settle and the codec takes its general path, which decides alone: speed
  never changes an answer, a message or an error.
* Parent memory: the messages answering one request all carry its header, so the text
  and value of the last flat parent header parsed are remembered (one tuple, replaced
  whole); an identical text gets a fresh shallow copy instead of a new parse. The
  remembered text is always the JSON of the remembered value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from ..errors import LocalProtocolError, RemoteProtocolError
from .messages import (
    CHANNELS,
    Header,
    Message,
    _checked_header,
    _message_from_parts,
    _message_with_header,
)

__all__ = [
    "EXECUTE_JSON",
    "EXECUTE_KEYS",
    "JUPYTER_CLIENT_HEADER",
    "dump_content",
    "dump_header",
    "dump_object",
    "dump_text",
    "legacy_document",
    "load",
    "load_utf8",
    "load_v1_parts",
    "v1_parts_in_place",
]


def _compact_json_encoder() -> Callable[[Any], str]:
    """``JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode``.

    ``encode`` builds a C encoder per call; on CPython it is built once here instead,
    without cycle markers (a shared markers dict could keep stale ids after an error):
    a cycle ends in ``RecursionError``, which ``dump_text`` reports like any other
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
_EMPTY_OBJECT = memoryview(b"{}")
#: (offset index, name) of the v1 parts after the channel that are JSON objects
_V1_PARTS = tuple(enumerate(("header", "parent_header", "metadata", "content"), start=1))
#: ``Header.to_wire()`` without extra fields as compact JSON (values already quoted)
_HEADER_JSON = '{"msg_id":%s,"msg_type":%s,"session":%s,"username":%s,"date":%s,"version":%s}'
#: ``execute_request`` content keys in the order ``MessageFactory`` writes them
EXECUTE_KEYS = (
    "code",
    "silent",
    "store_history",
    "user_expressions",
    "allow_stdin",
    "stop_on_error",
)
#: that content without user expressions as compact JSON, values already written
EXECUTE_JSON = (
    '{"code":%s,"silent":%s,"store_history":%s,"user_expressions":{},'
    '"allow_stdin":%s,"stop_on_error":%s}'
)
#: a JSON string the C scanner reads as written (no escapes, no control characters)
_PLAIN_STRING = r'"([^"\\\x00-\x1f]*)"'
#: a header exactly as jupyter_client packs it (every kernel built on it, ipykernel
#: first, and the server's own messages): its key order and its separators
_HEADER_PATTERN = (
    r'\{"msg_id": %s, "msg_type": %s, "username": %s, "session": %s, "date": %s, "version": %s\}'
    % ((_PLAIN_STRING,) * 6)
)
#: ``fullmatch(text, start, end)`` of such a header; groups are its six values
JUPYTER_CLIENT_HEADER = re.compile(_HEADER_PATTERN).fullmatch
#: ``match(text)`` of a legacy document as Jupyter Server writes it (``json.dumps`` of the
#: message jupyter_client deserialised) up to the parent header's value: the header,
#: then ``msg_id`` and ``msg_type`` copied from it
_LEGACY_HEAD = re.compile(
    r'\{"header": ' + _HEADER_PATTERN + r', "msg_id": "\1", "msg_type": "\2", "parent_header": '
).match
_LEGACY_METADATA = ', "metadata": '
_LEGACY_NO_METADATA = ', "metadata": {}, "content": '
_LEGACY_CONTENT = ', "content": '
#: what follows the content, for each channel a message may arrive on
_LEGACY_TAILS = {f', "buffers": [], "channel": "{channel}"}}': channel for channel in CHANNELS}
#: the text and value of the last flat parent header parsed (replaced as one tuple)
_last_parent: tuple[str, dict[str, str]] = ("{}", {})


def dump_text(obj: Any, what: str) -> str:
    """Compact JSON text of ``obj``, checked to be encodable as UTF-8."""
    try:
        text = _encode_json(obj)
        if not text.isascii():
            text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"{what} cannot be sent as JSON: {exc}") from exc
    return text


def dump_object(obj: Mapping[str, Any], what: str) -> bytes:
    """UTF-8 compact JSON of one mapping (``{}`` without encoding anything)."""
    if not obj:
        return b"{}"
    return dump_text(obj if type(obj) is dict else dict(obj), what).encode("utf-8")


def dump_header(header: Header) -> bytes:
    """UTF-8 JSON of ``header.to_wire()``, from a template when ``extra`` is empty."""
    if header.extra:
        return dump_text(header.to_wire(), "header").encode("utf-8")
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


def dump_content(message: Message) -> bytes:
    """UTF-8 JSON of ``message.content``, from a template for a usual ``execute_request``."""
    content = message.content
    if (
        type(content) is dict
        and message.header.msg_type == "execute_request"
        and tuple(content) == EXECUTE_KEYS
    ):
        code, silent, store_history, expressions, allow_stdin, stop_on_error = content.values()
        if (
            type(code) is str
            and type(expressions) is dict
            and not expressions
            and type(silent) is type(store_history) is type(allow_stdin) is bool
            and type(stop_on_error) is bool
        ):
            text = EXECUTE_JSON % (
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
    return dump_object(content, "content")


def load(text: str, what: str) -> Any:
    """The JSON value of ``text``; ``RemoteProtocolError`` naming ``what`` if it is none."""
    try:
        return _decode_json(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"{what} is not valid JSON: {exc}") from exc


def load_utf8(raw: memoryview, what: str) -> Any:
    """``load`` of bytes decoded as UTF-8 with replacement characters."""
    if raw == _EMPTY_OBJECT:
        return {}
    return load(str(raw, "utf-8", "replace"), what)


def load_v1_parts(view: memoryview, offsets: Sequence[int]) -> list[Any]:
    """The four JSON parts of a v1 frame, each exactly as ``load_utf8`` would return it.

    The parts are contiguous, so they are decoded to text once and the C scanner parses
    each in place; a result counts only if it ends exactly where its part ends. Anything
    else (non-ASCII text, whitespace, errors) takes ``load_utf8``.
    """
    base, end = offsets[1], offsets[5]
    text = str(view[base:end], "utf-8", "replace")
    if len(text) != end - base:  # multi-byte characters: text and byte offsets differ
        return [load_utf8(view[offsets[i] : offsets[i + 1]], name) for i, name in _V1_PARTS]
    values = []
    for i, name in _V1_PARTS:
        start, stop = offsets[i] - base, offsets[i + 1] - base
        try:
            value, stopped = _scan_json(text, start)
        except (StopIteration, ValueError, RecursionError):
            stopped = -1
        if stopped != stop:
            value = load_utf8(view[offsets[i] : offsets[i + 1]], name)
        values.append(value)
    return values


def v1_parts_in_place(
    text: str, header_at: int, parent_at: int, metadata_at: int, content_at: int
) -> Message | None:
    """The message of a v1 frame without buffers, or None for the general path.

    ``text`` is the frame from its channel name to its end, one character per byte;
    the channel runs to ``header_at``, the content from ``content_at`` to the end.

    Raises:
        RemoteProtocolError: the parts are read but no message may hold them (the
            error the general path gives).
    """
    header_fields = JUPYTER_CLIENT_HEADER(text, header_at, parent_at)
    try:
        if header_fields is None:
            header, stop = _scan_json(text, header_at)
            if stop != parent_at:
                return None
        # the messages answering one request all carry its header: an identical text
        # gets a fresh copy of the last flat one parsed instead of a new parse
        last_text, last_parent = _last_parent
        if metadata_at - parent_at == len(last_text) and text.startswith(last_text, parent_at):
            parent: Any = dict(last_parent)
        else:
            parent, stop = _scan_json(text, parent_at)
            if stop != metadata_at:
                return None
            parent = _remember_parent(text[parent_at:metadata_at], parent)
        metadata: Any
        if content_at - metadata_at == 2 and text.startswith("{}", metadata_at):  # the usual
            metadata = {}
        else:
            metadata, stop = _scan_json(text, metadata_at)
            if stop != content_at:
                return None
        content, stop = _scan_json(text, content_at)
    except (StopIteration, ValueError, RecursionError):
        return None
    if stop != len(text):
        return None
    channel = text[:header_at]
    if header_fields is None:
        return _message_from_parts(Message, channel, header, parent, metadata, content)
    if channel not in CHANNELS:
        return None  # the general path names the problem
    msg_id, msg_type, username, session, date, version = header_fields.groups()
    checked = _checked_header(msg_id, msg_type, session, username, date, version, {})
    return _message_with_header(Message, channel, checked, parent, metadata, content)


def legacy_document(text: str) -> Message | None:
    """The message of a legacy text frame as servers write it, or None for the general path.

    The layout is the one ``json.dumps`` gives the message dict jupyter_client builds:
    header, msg_id, msg_type, parent_header, metadata, content, empty buffers, channel,
    with the default separators. Only the values vary; every key and separator must be
    where that layout puts it, so the document holds no other or repeated key.

    Raises:
        RemoteProtocolError: the parts are read but no message may hold them (the
            error the general path gives).
    """
    head = _LEGACY_HEAD(text)
    if head is None:
        return None
    parent_at = head.end()
    parent: Any
    try:
        last_text, last_parent = _last_parent
        if text.startswith(last_text, parent_at):
            parent = dict(last_parent)
            metadata_at = parent_at + len(last_text)
        else:
            parent, metadata_at = _scan_json(text, parent_at)
            parent = _remember_parent(text[parent_at:metadata_at], parent)
        metadata: Any
        if text.startswith(_LEGACY_NO_METADATA, metadata_at):  # the usual
            metadata = {}
            content_at = metadata_at + len(_LEGACY_NO_METADATA)
        elif text.startswith(_LEGACY_METADATA, metadata_at):
            metadata, content_at = _scan_json(text, metadata_at + len(_LEGACY_METADATA))
            if not text.startswith(_LEGACY_CONTENT, content_at):
                return None
            content_at += len(_LEGACY_CONTENT)
        else:
            return None
        content, end = _scan_json(text, content_at)
    except (StopIteration, ValueError, RecursionError):
        return None
    channel = _LEGACY_TAILS.get(text[end:])
    if channel is None:
        return None
    msg_id, msg_type, username, session, date, version = head.groups()
    checked = _checked_header(msg_id, msg_type, session, username, date, version, {})
    return _message_with_header(Message, channel, checked, parent, metadata, content)


def _remember_parent(text: str, parent: Any) -> Any:
    """Remember a flat parent header (only strings: a shallow copy is a full one)."""
    global _last_parent
    if type(parent) is dict and all(type(field) is str for field in parent.values()):
        _last_parent = (text, parent)
        return dict(parent)
    return parent
