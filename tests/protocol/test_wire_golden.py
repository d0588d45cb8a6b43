"""Frame codecs against the reference: byte-exact layouts of both framings, and golden
frames checked against jupyter_server's and jupyter_client's own serialisers.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import given
from jupyter_client.jsonutil import extract_dates, json_default
from jupyter_client.session import json_packer

from jupyter_interp.protocol.messages import Header, Message
from jupyter_interp.protocol.wire_json import JUPYTER_CLIENT_HEADER
from tests.strategies import messages

from .test_wire import (
    EXAMPLE_CONTENT,
    EXAMPLE_HEADER,
    EXAMPLE_TABLE,
    LEGACY,
    SESSION,
    V1,
    compact,
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    example_message,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
    unsendable,
)

# --- byte-exact layouts ----------------------------------------------------------------


def test_legacy_text_frame_is_compact_json_with_channel_and_no_buffers() -> None:
    message = unsendable({"code": "print('é')"})
    frame = LEGACY.encode(message)
    assert isinstance(frame, str)
    assert frame == compact(message.to_wire()).decode()
    assert '"channel":"shell"' in frame
    assert "é" in frame
    assert "buffers" not in json.loads(frame)


def test_legacy_binary_layout() -> None:
    message = unsendable({"a": 1}, buffers=(b"abc", b"", b"xy"))
    frame = LEGACY.encode(message)
    assert isinstance(frame, bytes)
    body = compact(message.to_wire())
    start = 4 * 5
    assert frame[:20] == struct.pack(
        ">5I", 4, start, start + len(body), start + len(body) + 3, start + len(body) + 3
    )
    assert frame[20:] == body + b"abc" + b"xy"


def test_v1_worked_example_is_byte_exact() -> None:
    frame = V1.encode(example_message())
    assert len(frame) == 302
    assert frame[:56] == EXAMPLE_TABLE
    assert frame[56:61] == b"shell"
    assert frame[185:189] == b"{}{}"
    assert frame[189:] == EXAMPLE_CONTENT
    assert json.loads(frame[61:185]) == json.loads(EXAMPLE_HEADER)
    # The frame exactly as protocol.md prints it decodes to the same message.
    printed = EXAMPLE_TABLE + b"shell" + EXAMPLE_HEADER + b"{}{}" + EXAMPLE_CONTENT
    assert V1.decode(printed) == example_message()


def test_v1_worked_example_with_one_buffer() -> None:
    frame = V1.encode(example_message("iopub", (b"\x00\x01\x02",)))
    assert struct.unpack_from("<8Q", frame) == (7, 64, 69, 193, 195, 197, 310, 313)
    assert frame[-3:] == b"\x00\x01\x02"


# --- golden frames: jupyter_server's and jupyter_client's own serialisers ----------------


def json_parts(message: Message, pack: Callable[[Any], bytes]) -> list[bytes]:
    wire = message.to_wire()
    names = ("header", "parent_header", "metadata", "content")
    return [*(pack(wire[name]) for name in names), *message.buffers]


@given(messages())
def test_v1_bytes_equal_jupyter_servers(message: Message) -> None:
    theirs = serialize_msg_to_ws_v1(json_parts(message, compact), message.channel)
    assert V1.encode(message) == theirs


@given(messages())
def test_jupyter_server_decodes_our_v1_frames(message: Message) -> None:
    channel, parts = deserialize_msg_from_ws_v1(V1.encode(message))
    wire = message.to_wire()
    assert channel == message.channel
    assert [json.loads(part) for part in parts[:4]] == [
        wire["header"],
        wire["parent_header"],
        wire["metadata"],
        wire["content"],
    ]
    assert tuple(parts[4:]) == message.buffers


@given(messages())
def test_we_decode_kernel_packed_v1_frames(message: Message) -> None:
    # The kernel's own packer (jupyter_client.session.json_packer), relayed unchanged.
    frame = serialize_msg_to_ws_v1(json_parts(message, json_packer), message.channel)
    assert V1.decode(frame) == message


def test_we_decode_what_a_jupyter_client_session_builds() -> None:
    # ipykernel's header as jupyter_client makes and packs it: the decoder's fast path
    # for its exact shape must still match it (or that path is dead), and agree.
    parent = SESSION.msg("execute_request", {"code": "1+1"})
    sent = SESSION.msg("stream", {"name": "stdout", "text": "2\n"}, parent=parent)
    parts = [json_packer(sent[key]) for key in ("header", "parent_header", "metadata", "content")]
    assert JUPYTER_CLIENT_HEADER(parts[0].decode()) is not None
    decoded = V1.decode(serialize_msg_to_ws_v1(parts, "iopub"))
    header = json.loads(parts[0])
    assert decoded.header == Header.from_wire(header)
    assert decoded.header.date == header["date"]
    assert header["date"].endswith("Z")
    assert decoded.parent_header == json.loads(parts[1])
    assert decoded.content == {"name": "stdout", "text": "2\n"}


def legacy_dict(message: Message) -> dict[str, Any]:
    return {**message.to_wire(), "buffers": list(message.buffers)}


@given(messages(min_buffers=1))
def test_we_decode_jupyter_server_legacy_binary(message: Message) -> None:
    assert LEGACY.decode(serialize_binary_message(legacy_dict(message))) == message


@given(messages(min_buffers=1))
def test_jupyter_server_decodes_our_legacy_binary(message: Message) -> None:
    frame = LEGACY.encode(message)
    assert isinstance(frame, bytes)
    expected = legacy_dict(message)
    expected["header"] = extract_dates(expected["header"])
    expected["parent_header"] = extract_dates(expected["parent_header"])
    assert deserialize_binary_message(frame) == expected


@given(messages())
def test_jupyter_server_accepts_our_legacy_frames(message: Message) -> None:
    # The server's incoming path: parse, pop the channel, Session.serialize for ZMQ.
    frame = LEGACY.encode(message)
    incoming = json.loads(frame) if isinstance(frame, str) else deserialize_binary_message(frame)
    assert incoming.pop("channel") == message.channel
    parts = SESSION.serialize(incoming)
    assert json.loads(parts[-1]) == message.to_wire()["content"]


def test_we_decode_jupyter_server_text_frames() -> None:
    # What the server writes for a kernel message without buffers (_reserialize_reply).
    request = SESSION.msg("execute_request", content={"code": "1"})
    reply = SESSION.msg("execute_reply", content={"status": "ok"}, parent=request)
    reply.update(channel="shell", buffers=[])
    message = LEGACY.decode(json.dumps(reply, default=json_default))
    assert message.msg_type == "execute_reply"
    assert message.parent_msg_id == request["header"]["msg_id"]
    assert message.header.date.endswith("Z")
    assert message.header.version == reply["header"]["version"]


def test_we_decode_the_server_restart_notice() -> None:
    frame = json.dumps(
        {
            "header": {
                "msg_id": "r1",
                "msg_type": "status",
                "session": "mine",
                "username": "u",
                "date": "2025-01-01T00:00:00.000Z",
                "version": "5.4",
            },
            "msg_id": "r1",
            "msg_type": "status",
            "parent_header": {},
            "metadata": {},
            "content": {"execution_state": "restarting"},
            "buffers": [],
            "channel": "iopub",
        }
    )
    message = LEGACY.decode(frame)
    assert message.channel == "iopub"
    assert message.content == {"execution_state": "restarting"}
    assert message.parent_msg_id is None
