"""Jupyter messages as frozen values and their wire dicts.

Strategy: a ``Message`` is the logical five-part Jupyter message (header, parent
header, metadata, content, buffers) plus the WebSocket ``channel`` it travels on. The
framing codecs in ``wire`` turn messages into frames and back; this module only knows
the dict shape (``to_wire`` / ``from_wire``).

Invariants:

* ``from_wire`` accepts exactly what servers send and raises ``RemoteProtocolError``
  (never ``KeyError``/``TypeError``) on anything else. Unknown header fields and unknown
  message types are kept, as the spec's compatibility rule asks.
* ``parent_header`` and ``metadata`` are always mappings (``{}`` when absent): servers and
  kernels drop messages whose parent header or metadata is ``null``.
* Requests are built by ``message_factory.MessageFactory`` from injected ids and clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "CHANNELS",
    "PROTOCOL_VERSION",
    "Header",
    "Message",
]

PROTOCOL_VERSION = "5.3"
CHANNELS = frozenset({"shell", "iopub", "stdin", "control"})

_is_str = attrs.validators.instance_of(str)
_HEADER_FIELDS = ("msg_id", "msg_type", "session", "username", "date", "version")
_HEADER_KEYS = frozenset(_HEADER_FIELDS)
_ABSENT: Any = object()


def _expect_mapping(value: object, what: str) -> Mapping[str, Any]:
    if type(value) is dict or isinstance(value, Mapping):  # the exact type first: fast
        return value
    raise RemoteProtocolError(f"{what} must be a JSON object, got {type(value).__name__}")


_new = object.__new__


@attrs.frozen(kw_only=True)
class Header:
    """A message header. ``extra`` keeps fields we do not model (e.g. ``subshell_id``)."""

    msg_id: str = attrs.field(validator=_is_str)
    msg_type: str = attrs.field(validator=_is_str)
    session: str = attrs.field(default="", validator=_is_str)
    username: str = attrs.field(default="", validator=_is_str)
    date: str = attrs.field(default="", validator=_is_str)
    version: str = attrs.field(default=PROTOCOL_VERSION, validator=_is_str)
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready header dict."""
        wire: dict[str, Any] = dict(self.extra)
        wire.update(
            msg_id=self.msg_id,
            msg_type=self.msg_type,
            session=self.session,
            username=self.username,
            date=self.date,
            version=self.version,
        )
        return wire

    @classmethod
    def from_wire(cls, data: object) -> Header:
        """Validate a header dict from the server.

        Every field is checked here, so the instance is built without running the
        field validators a second time (the hot path of every received message).

        Raises:
            RemoteProtocolError: not an object, or ``msg_id``/``msg_type`` missing or not
                strings, or another standard field of the wrong type.
        """
        return _parse_header(cls, data)


# The slot setters of validated instances: writing a slot through its descriptor skips
# the frozen ``__setattr__`` and the attrs validators (the values were checked above).
(
    _header_msg_id,
    _header_msg_type,
    _header_session,
    _header_username,
    _header_date,
    _header_version,
    _header_extra,
) = (vars(Header)[name].__set__ for name in (*_HEADER_FIELDS, "extra"))


def _parse_header(cls: type[Header], data: object) -> Header:
    """``Header.from_wire``: every field is checked, then the slots are written."""
    raw = data if type(data) is dict else _expect_mapping(data, "header")
    msg_id = _ABSENT
    if type(raw) is dict and len(raw) == 6:  # usually exactly the six fields: no defaults
        try:
            msg_id, msg_type, session = raw["msg_id"], raw["msg_type"], raw["session"]
            username, date, version = raw["username"], raw["date"], raw["version"]
            extra: Mapping[str, Any] = {}
        except KeyError:
            msg_id = _ABSENT
    if msg_id is _ABSENT:
        get = raw.get
        msg_id, msg_type = get("msg_id", _ABSENT), get("msg_type", _ABSENT)
        session, username = get("session", ""), get("username", "")
        date, version = get("date", ""), get("version", PROTOCOL_VERSION)
        extra = {} if raw.keys() <= _HEADER_KEYS else _extra_fields(raw)
    if not (
        type(msg_id) is type(msg_type) is type(session) is str
        and type(username) is type(date) is type(version) is str
    ):
        _check_header_fields(raw)  # the slow path: name the problem (or accept subclasses)
    return _checked_header(msg_id, msg_type, session, username, date, version, extra, cls)


def _checked_header(
    msg_id: str,
    msg_type: str,
    session: str,
    username: str,
    date: str,
    version: str,
    extra: Mapping[str, Any],
    cls: type[Header] = Header,
) -> Header:
    """A ``Header`` of fields the caller checked (skips the frozen attrs ``__init__``)."""
    header: Header = _new(cls)
    _header_msg_id(header, msg_id)
    _header_msg_type(header, msg_type)
    _header_session(header, session)
    _header_username(header, username)
    _header_date(header, date)
    _header_version(header, version)
    _header_extra(header, extra)
    return header


def _extra_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key not in _HEADER_KEYS}


def _check_header_fields(raw: Mapping[str, Any]) -> None:
    for name in _HEADER_FIELDS:
        if name not in raw:
            if name in ("msg_id", "msg_type"):
                raise RemoteProtocolError(f"header has no {name!r}")
        elif not isinstance(raw[name], str):
            raise RemoteProtocolError(f"header field {name!r} must be a string")


def _to_buffers(buffers: Iterable[bytes | bytearray | memoryview]) -> tuple[bytes, ...]:
    if buffers == ():  # the usual case: nothing to copy
        return ()
    return tuple(bytes(b) for b in buffers)


@attrs.frozen(kw_only=True)
class Message:
    """One Jupyter message on one channel."""

    channel: str = attrs.field()
    header: Header
    parent_header: Mapping[str, Any] = attrs.field(factory=dict)
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    content: Mapping[str, Any] = attrs.field(factory=dict)
    buffers: tuple[bytes, ...] = attrs.field(default=(), converter=_to_buffers)

    @channel.validator
    def _check_channel(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value not in CHANNELS:
            raise LocalProtocolError(f"unknown channel {value!r}")

    @property
    def msg_id(self) -> str:
        return self.header.msg_id

    @property
    def msg_type(self) -> str:
        return self.header.msg_type

    @property
    def parent_msg_id(self) -> str | None:
        """The ``msg_id`` of the request this message answers, if any."""
        parent = self.parent_header.get("msg_id")
        return parent if isinstance(parent, str) and parent else None

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict (with ``channel``, without ``buffers``)."""
        return {
            "channel": self.channel,
            "header": self.header.to_wire(),
            "parent_header": dict(self.parent_header),
            "metadata": dict(self.metadata),
            "content": dict(self.content),
        }

    @classmethod
    def from_wire(
        cls,
        data: object,
        *,
        channel: str | None = None,
        buffers: tuple[bytes, ...] = (),
    ) -> Message:
        """Validate a message dict received from the server.

        Args:
            data: the decoded JSON object.
            channel: the channel when the framing carries it outside the JSON (v1);
                otherwise it is read from ``data["channel"]``.
            buffers: binary buffers carried next to the JSON.

        Raises:
            RemoteProtocolError: on any shape the protocol does not allow.
        """
        raw = _expect_mapping(data, "message")
        if "header" not in raw:
            chan = channel if channel is not None else raw.get("channel")
            if isinstance(chan, str) and chan in CHANNELS:
                raise RemoteProtocolError("message has no header")
        return cls.from_parts(
            channel if channel is not None else raw.get("channel"),
            raw.get("header"),
            raw.get("parent_header"),
            raw.get("metadata"),
            raw.get("content"),
            buffers,
        )

    @classmethod
    def from_parts(
        cls,
        channel: object,
        header: object,
        parent_header: object,
        metadata: object,
        content: object,
        buffers: tuple[bytes, ...] = (),
    ) -> Message:
        """Validate a message given as its decoded parts (as the v1 framing carries it).

        ``None`` stands for an absent ``parent_header``, ``metadata`` or ``content``.

        Raises:
            RemoteProtocolError: on any shape the protocol does not allow.
        """
        return _message_from_parts(cls, channel, header, parent_header, metadata, content, buffers)


(
    _message_channel,
    _message_header,
    _message_parent_header,
    _message_metadata,
    _message_content,
    _message_buffers,
) = (vars(Message)[field.name].__set__ for field in attrs.fields(Message))


def _message_from_parts(
    cls: type[Message],
    channel: object,
    header: object,
    parent_header: object,
    metadata: object,
    content: object,
    buffers: tuple[bytes, ...] = (),
) -> Message:
    """``Message.from_parts`` (the decoders call it directly: no classmethod binding)."""
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise RemoteProtocolError(f"message on unknown channel {channel!r}")
    checked = _parse_header(Header, header)
    return _message_with_header(cls, channel, checked, parent_header, metadata, content, buffers)


def _message_with_header(
    cls: type[Message],
    channel: str,
    header: Header,
    parent_header: object,
    metadata: object,
    content: object,
    buffers: tuple[bytes, ...] = (),
) -> Message:
    """``_message_from_parts`` after the channel and header are checked (a decoder that
    read the header itself, or a builder that made it, calls this): the other parts are
    checked, then the slots written (skips the frozen attrs ``__init__``)."""
    if type(parent_header) is not dict:  # the exact type first (the usual case): fast
        parent_header = _mapping_or_empty(parent_header, "parent_header")
    if type(metadata) is not dict:
        metadata = _mapping_or_empty(metadata, "metadata")
    if type(content) is not dict:
        content = _mapping_or_empty(content, "content")
    message: Message = _new(cls)
    _message_channel(message, channel)
    _message_header(message, header)
    _message_parent_header(message, parent_header)
    _message_metadata(message, metadata)
    _message_content(message, content)
    _message_buffers(message, _to_buffers(buffers) if buffers else ())
    return message


def _mapping_or_empty(value: object, what: str) -> Mapping[str, Any]:
    return {} if value is None else _expect_mapping(value, what)
