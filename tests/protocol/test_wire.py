"""Frame codecs: round trips, fuzzing, malformed frames, byte-exact layouts, and golden
frames checked against jupyter_server's and jupyter_client's own (de)serialisers."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import count
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection import base as server_base

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.messages import Header, Message
from jupyter_interp.protocol.wire import (
    V1_SUBPROTOCOL,
    Codec,
    LegacyCodec,
    V1Codec,
    codec_for,
)
from tests.strategies import encoded_frames, messages, mutated_frames

LEGACY = LegacyCodec()
V1 = V1Codec()
SESSION = Session(key=b"")
EPOCH_2025 = datetime(2025, 1, 1, tzinfo=timezone.utc)

# jupyter_server ships no type hints: name its serialisers with the signatures we rely on.
serialize_msg_to_ws_v1: Callable[[list[bytes], str], bytes] = server_base.serialize_msg_to_ws_v1
deserialize_msg_from_ws_v1: Callable[[bytes], tuple[str, list[bytes]]] = (
    server_base.deserialize_msg_from_ws_v1
)
serialize_binary_message: Callable[[dict[str, Any]], bytes] = server_base.serialize_binary_message
deserialize_binary_message: Callable[[bytes], dict[str, Any]] = (
    server_base.deserialize_binary_message
)

# protocol.md §3.4 worked example, JSON exactly as printed there.
EXAMPLE_HEADER = (
    b'{"msg_id":"m1","session":"s1","username":"u","date":"2025-01-01T00:00:00.000Z",'
    b'"msg_type":"execute_request","version":"5.3"}'
)
EXAMPLE_CONTENT = (
    b'{"code":"1+1","silent":false,"store_history":true,"user_expressions":{},'
    b'"allow_stdin":false,"stop_on_error":true}'
)
EXAMPLE_TABLE = bytes.fromhex(
    "0600000000000000"
    "3800000000000000"
    "3d00000000000000"
    "b900000000000000"
    "bb00000000000000"
    "bd00000000000000"
    "2e01000000000000"
)


def example_message(channel: str = "shell", buffers: tuple[bytes, ...] = ()) -> Message:
    return Message(
        channel=channel,
        header=Header.from_wire(json.loads(EXAMPLE_HEADER)),
        content=json.loads(EXAMPLE_CONTENT),
        buffers=buffers,
    )


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def v1_frame(channel: bytes, *parts: bytes, offsets: list[int] | None = None) -> bytes:
    """A v1 frame assembled by hand; ``offsets`` overrides the computed table."""
    segments = [channel, *parts]
    if offsets is None:
        offsets = [8 * (len(segments) + 2)]
        for segment in segments:
            offsets.append(offsets[-1] + len(segment))
    table = struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets)
    return table + b"".join(segments)


def legacy_frame(*parts: bytes, offsets: list[int] | None = None) -> bytes:
    """A legacy binary frame assembled by hand; ``offsets`` overrides the computed table."""
    if offsets is None:
        offsets = [4 * (len(parts) + 1)]
        for part in parts[:-1]:
            offsets.append(offsets[-1] + len(part))
    return struct.pack(f">{len(offsets) + 1}I", len(offsets), *offsets) + b"".join(parts)


HEADER = compact({"msg_id": "k1", "msg_type": "status"})
LEGACY_JSON = compact({"channel": "iopub", "header": {"msg_id": "k1", "msg_type": "status"}})
DEEP = b"[" * 100_000 + b"]" * 100_000


# --- codec selection -------------------------------------------------------------------


def test_codec_for_negotiated_subprotocols() -> None:
    assert isinstance(codec_for(None), LegacyCodec)
    assert isinstance(codec_for(V1_SUBPROTOCOL), V1Codec)
    assert codec_for(None).subprotocol is None
    assert (
        codec_for(V1_SUBPROTOCOL).subprotocol == V1_SUBPROTOCOL == "v1.kernel.websocket.jupyter.org"
    )
    assert isinstance(codec_for(None), Codec)


@pytest.mark.parametrize("name", ["", "v2.kernel.websocket.jupyter.org", "chat"])
def test_codec_for_unknown_subprotocol(name: str) -> None:
    with pytest.raises(LocalProtocolError, match="unsupported WebSocket subprotocol"):
        codec_for(name)


# --- round trips -----------------------------------------------------------------------


@given(messages(max_buffers=0))
def test_legacy_text_round_trip(message: Message) -> None:
    frame = LEGACY.encode(message)
    assert isinstance(frame, str)
    assert LEGACY.decode(frame) == message


def _received(frame: bytes) -> memoryview:
    """``frame`` as the WebSocket hands it over: a view inside a larger receive buffer."""
    return memoryview(b"\x82\x7e" + frame + b"next")[2:-4]


@given(messages(min_buffers=1))
def test_legacy_binary_round_trip(message: Message) -> None:
    frame = LEGACY.encode(message)
    assert isinstance(frame, bytes)
    assert LEGACY.decode(frame) == message
    assert LEGACY.decode(_received(frame)) == message


@given(messages())
def test_v1_round_trip(message: Message) -> None:
    frame = V1.encode(message)
    assert isinstance(frame, bytes)
    assert V1.decode(frame) == message
    assert V1.decode(_received(frame)) == message


@pytest.mark.parametrize("codec", [LEGACY, V1], ids=["legacy", "v1"])
def test_factory_requests_round_trip(codec: Codec) -> None:
    ids = count()
    factory = MessageFactory(
        session="s", new_id=lambda: f"id-{next(ids)}", clock=lambda: EPOCH_2025
    )
    parent = factory.header("input_request")
    built = [
        factory.execute_request("print('é')", user_expressions={"x": "1"}),
        factory.kernel_info_request(),
        factory.interrupt_request(),
        factory.shutdown_request(restart=True),
        factory.input_reply("Ada", parent=parent),
        factory.comm_close("c1"),
    ]
    for message in built:
        assert codec.decode(codec.encode(message)) == message


# --- fuzzing: any input gives a Message or RemoteProtocolError ------------------------


def decodes_or_rejects(codec: Codec, frame: str | bytes | memoryview) -> None:
    try:
        message = codec.decode(frame)
    except RemoteProtocolError:
        return
    assert isinstance(message, Message)


@pytest.mark.parametrize("codec", [LEGACY, V1], ids=["legacy", "v1"])
@given(frame=st.binary() | st.text())
def test_arbitrary_input_decodes_or_rejects(codec: Codec, frame: str | bytes) -> None:
    decodes_or_rejects(codec, frame)
    if isinstance(frame, bytes):
        decodes_or_rejects(codec, _received(frame))


@given(frame=mutated_frames(V1))
def test_mutated_v1_frames_decode_or_reject(frame: bytes) -> None:
    decodes_or_rejects(V1, frame)
    decodes_or_rejects(V1, _received(frame))


@given(frame=mutated_frames(LEGACY))
def test_mutated_legacy_frames_decode_or_reject(frame: bytes) -> None:
    decodes_or_rejects(LEGACY, frame)


@given(frame=encoded_frames(LEGACY, max_buffers=0), cut=st.integers(min_value=0))
def test_truncated_legacy_text_frames_decode_or_reject(frame: str | bytes, cut: int) -> None:
    assert isinstance(frame, str)
    decodes_or_rejects(LEGACY, frame[: cut % (len(frame) + 1)])


# --- malformed frames ------------------------------------------------------------------

V1_GOOD_TAIL = (HEADER, b"{}", b"{}", b"{}")
MALFORMED_V1: dict[str, tuple[bytes | str, str]] = {
    "empty": (b"", "no offset count"),
    "truncated count": (b"\x06\x00\x00", "no offset count"),
    "truncated table": (v1_frame(b"iopub", *V1_GOOD_TAIL)[:40], "cannot hold 6 offsets"),
    "too few offsets": (struct.pack("<6Q", 5, 48, 48, 48, 48, 48), "cannot hold 5 offsets"),
    "huge count": (struct.pack("<QQ", 2**64 - 1, 16), "cannot hold"),
    "count overflowing table": (struct.pack("<7Q", 2**61, *[56] * 6), "cannot hold"),
    "offset past the end": (
        v1_frame(b"iopub", *V1_GOOD_TAIL, offsets=[56, 61, 95, 97, 99, 10_000]),
        "not ordered",
    ),
    "decreasing offsets": (
        v1_frame(b"iopub", *V1_GOOD_TAIL, offsets=[56, 61, 97, 95, 99, 101]),
        "not ordered",
    ),
    "channel inside the table": (
        v1_frame(b"iopub", *V1_GOOD_TAIL, offsets=[8, 61, 95, 97, 99, 101]),
        "not ordered",
    ),
    "trailing bytes": (v1_frame(b"iopub", *V1_GOOD_TAIL) + b"x", "frame ends at"),
    "invalid utf-8 channel": (v1_frame(b"io\xffpub", *V1_GOOD_TAIL), "unknown channel"),
    "unknown channel": (v1_frame(b"heartbeat", *V1_GOOD_TAIL), "unknown channel"),
    "header not an object": (v1_frame(b"iopub", b"[]", b"{}", b"{}", b"{}"), "header must be"),
    "header missing msg_id": (
        v1_frame(b"iopub", b'{"msg_type":"status"}', b"{}", b"{}", b"{}"),
        "no 'msg_id'",
    ),
    "header not JSON": (v1_frame(b"iopub", b"{", b"{}", b"{}", b"{}"), "header is not valid JSON"),
    "empty header": (v1_frame(b"iopub", b"", b"{}", b"{}", b"{}"), "header is not valid JSON"),
    "content not an object": (v1_frame(b"iopub", HEADER, b"{}", b"{}", b"7"), "content must be"),
    "deeply nested content": (
        v1_frame(b"iopub", HEADER, b"{}", b"{}", DEEP),
        "content is not valid",
    ),
    "huge integer": (v1_frame(b"iopub", HEADER, b"{}", b"{}", b"1" * 5000), "content is not valid"),
    "text frame": ('{"channel":"iopub"}', "text frame received under the v1"),
}


@pytest.mark.parametrize(("frame", "reason"), MALFORMED_V1.values(), ids=MALFORMED_V1.keys())
def test_malformed_v1_frames(frame: bytes | str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        V1.decode(frame)


MALFORMED_LEGACY: dict[str, tuple[bytes | str, str]] = {
    "short binary": (b"\x00\x00", "no offset count"),
    "zero parts": (b"\x00\x00\x00\x00", "cannot hold 0 parts"),
    "huge count": (b"\xff\xff\xff\xff\x00\x00\x00\x08", "cannot hold"),
    "truncated table": (legacy_frame(LEGACY_JSON, b"abc")[:10], "cannot hold 2 parts"),
    "offset past the end": (legacy_frame(LEGACY_JSON, b"abc", offsets=[12, 9999]), "not ordered"),
    "decreasing offsets": (legacy_frame(LEGACY_JSON, b"abc", offsets=[30, 12]), "not ordered"),
    "JSON inside the table": (legacy_frame(LEGACY_JSON, offsets=[4]), "not ordered"),
    "binary JSON not an object": (legacy_frame(b"[1]", b"x"), "must hold a JSON object"),
    "binary JSON invalid": (legacy_frame(b'{"a"', b"x"), "not valid JSON"),
    "binary deep nesting": (legacy_frame(DEEP, b"x"), "not valid JSON"),
    "binary channel not a string": (
        legacy_frame(compact({"channel": ["iopub"], "header": {}}), b"x"),
        "channel must be a string, not list",
    ),
    "binary unknown channel": (
        legacy_frame(compact({"channel": "hb", "header": {}}), b"x"),
        "unknown channel",
    ),
    "text not JSON": ("not json", "text frame is not valid JSON"),
    "text not an object": ('["iopub"]', "must hold a JSON object, got list"),
    "text deep nesting": (DEEP.decode(), "not valid JSON"),
    "text channel missing": ('{"header":{"msg_id":"a","msg_type":"b"}}', "not NoneType"),
    "text channel unhashable": ('{"channel":{},"header":{}}', "not dict"),
    "text without header": ('{"channel":"shell"}', "no header"),
    "text content not an object": (
        '{"channel":"shell","header":{"msg_id":"a","msg_type":"b"},"content":[]}',
        "content must be",
    ),
}


@pytest.mark.parametrize(
    ("frame", "reason"), MALFORMED_LEGACY.values(), ids=MALFORMED_LEGACY.keys()
)
def test_malformed_legacy_frames(frame: bytes | str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        LEGACY.decode(frame)


def test_binary_json_with_invalid_utf8_is_replaced_not_rejected() -> None:
    # jupyter_client relays kernel bytes with errors="replace"; so do we.
    content = b'{"text":"caf\xe9"}'
    message = V1.decode(v1_frame(b"iopub", HEADER, b"{}", b"{}", content))
    assert message.content == {"text": "caf\ufffd"}


def test_legacy_binary_without_buffers_is_accepted() -> None:
    message = LEGACY.decode(legacy_frame(LEGACY_JSON))
    assert message.channel == "iopub"
    assert message.buffers == ()


def test_gap_after_the_table_is_tolerated() -> None:
    body = b"\x00" * 8 + b"iopub" + b"".join(V1_GOOD_TAIL)
    offsets = [8 * 7 + 8]  # the table, then 8 unused bytes
    for part in (b"iopub", *V1_GOOD_TAIL):
        offsets.append(offsets[-1] + len(part))
    frame = struct.pack("<7Q", 6, *offsets) + body
    assert V1.decode(frame).msg_id == "k1"


# --- encoding errors -------------------------------------------------------------------


def unsendable(content: dict[str, Any] | None = None, **fields: Any) -> Message:
    header = fields.pop("header", Header(msg_id="m", msg_type="t"))
    return Message(channel="shell", header=header, content=content or {}, **fields)


def circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


BAD_MESSAGES = {
    "object": unsendable({"x": object()}),
    "nan": unsendable({"x": math.nan}),
    "infinity": unsendable(metadata={"x": -math.inf}),
    "lone surrogate": unsendable({"code": "\ud800"}),
    "tuple key": unsendable(parent_header={(1, 2): "x"}),
    "circular": unsendable(circular()),
    "nested mapping proxy": unsendable({"inner": MappingProxyType({"a": 1})}),
    "header extra": unsendable(header=Header(msg_id="m", msg_type="t", extra={"x": {1j}})),
}


@pytest.mark.parametrize("codec", [LEGACY, V1], ids=["legacy", "v1"])
@pytest.mark.parametrize("message", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
@pytest.mark.parametrize("buffers", [(), (b"buf",)], ids=["text", "buffers"])
def test_unsendable_messages(codec: Codec, message: Message, buffers: tuple[bytes, ...]) -> None:
    with pytest.raises(LocalProtocolError, match="cannot be sent as JSON"):
        codec.encode(attrs.evolve(message, buffers=buffers))


def test_top_level_mapping_proxies_are_sent_as_objects() -> None:
    message = unsendable(dict(MappingProxyType({"a": 1})), metadata=MappingProxyType({"m": 2}))
    assert V1.decode(V1.encode(message)).metadata == {"m": 2}
    assert LEGACY.decode(LEGACY.encode(message)).content == {"a": 1}


class HugeBuffer(bytes):
    """Claims 4 GiB so the u32 overflow check can run without allocating it."""

    def __len__(self) -> int:
        return 2**32


def test_legacy_binary_offsets_must_fit_u32() -> None:
    message = unsendable()
    object.__setattr__(message, "buffers", (HugeBuffer(b""), b"last"))
    with pytest.raises(LocalProtocolError, match="too large for the legacy binary"):
        LEGACY.encode(message)
