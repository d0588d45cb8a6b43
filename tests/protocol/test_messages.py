"""Header and Message values and their wire dicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol.messages import CHANNELS, PROTOCOL_VERSION, Header, Message
from tests.strategies import headers, messages

HEADER = {"msg_id": "k1", "msg_type": "status"}


def wire(**fields: Any) -> dict[str, Any]:
    return {"channel": "iopub", "header": HEADER, **fields}


# --- round trips -----------------------------------------------------------------------


@given(headers)
def test_header_round_trip(header: Header) -> None:
    assert Header.from_wire(header.to_wire()) == header


@given(messages())
def test_message_round_trip(message: Message) -> None:
    assert Message.from_wire(message.to_wire(), buffers=message.buffers) == message


@given(messages(max_buffers=0))
def test_message_round_trip_through_json_text(message: Message) -> None:
    assert Message.from_wire(json.loads(json.dumps(message.to_wire()))) == message


def test_message_to_wire_shape() -> None:
    message = Message(
        channel="shell",
        header=Header(msg_id="m", msg_type="t"),
        content={"a": 1},
        buffers=[b"x"],
    )
    assert message.to_wire() == {
        "channel": "shell",
        "header": {
            "msg_id": "m",
            "msg_type": "t",
            "session": "",
            "username": "",
            "date": "",
            "version": PROTOCOL_VERSION,
        },
        "parent_header": {},
        "metadata": {},
        "content": {"a": 1},
    }


# --- Header validation -----------------------------------------------------------------


def test_header_defaults_for_missing_optional_fields() -> None:
    header = Header.from_wire(HEADER)
    assert (header.session, header.username, header.date) == ("", "", "")
    assert header.version == PROTOCOL_VERSION == "5.3"
    assert header.extra == {}


def test_header_extra_fields_are_preserved() -> None:
    raw = {**HEADER, "subshell_id": None, "x-trace": {"span": 3}}
    header = Header.from_wire(raw)
    assert header.extra == {"subshell_id": None, "x-trace": {"span": 3}}
    assert header.to_wire() == {**raw, "session": "", "username": "", "date": "", "version": "5.3"}


def test_header_standard_fields_win_over_extra_on_the_wire() -> None:
    header = Header(msg_id="real", msg_type="t", extra={"msg_id": "shadow"})
    assert header.to_wire()["msg_id"] == "real"


@pytest.mark.parametrize("missing", ["msg_id", "msg_type"])
def test_header_requires_msg_id_and_type(missing: str) -> None:
    raw = {k: v for k, v in HEADER.items() if k != missing}
    with pytest.raises(RemoteProtocolError, match=f"no '{missing}'"):
        Header.from_wire(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [("msg_id", 1), ("msg_type", None), ("session", 2), ("date", []), ("version", 5.3)],
)
def test_header_fields_must_be_strings(field: str, value: object) -> None:
    with pytest.raises(RemoteProtocolError, match=f"'{field}' must be a string"):
        Header.from_wire({**HEADER, field: value})


@pytest.mark.parametrize("raw", [None, [], "header", 3])
def test_header_must_be_an_object(raw: object) -> None:
    with pytest.raises(RemoteProtocolError, match="header must be a JSON object"):
        Header.from_wire(raw)


# --- Message validation ----------------------------------------------------------------


def test_message_from_wire_ignores_server_extras() -> None:
    raw = wire(msg_id="k1", msg_type="status", buffers=[], content={"execution_state": "idle"})
    message = Message.from_wire(raw)
    assert message.channel == "iopub"
    assert message.msg_id == "k1"
    assert message.msg_type == "status"
    assert message.content == {"execution_state": "idle"}
    assert message.buffers == ()


@pytest.mark.parametrize("field", ["parent_header", "metadata", "content"])
def test_null_or_missing_parts_become_empty_objects(field: str) -> None:
    assert getattr(Message.from_wire(wire(**{field: None})), field) == {}
    assert getattr(Message.from_wire(wire()), field) == {}


@pytest.mark.parametrize("field", ["parent_header", "metadata", "content"])
@pytest.mark.parametrize("value", [[], "x", 0, True])
def test_parts_must_be_objects(field: str, value: object) -> None:
    with pytest.raises(RemoteProtocolError, match=f"{field} must be a JSON object"):
        Message.from_wire(wire(**{field: value}))


@pytest.mark.parametrize("channel", [None, "hb", "SHELL", 3, [], {}])
def test_unknown_channel_is_remote_error(channel: object) -> None:
    with pytest.raises(RemoteProtocolError, match="unknown channel"):
        Message.from_wire(wire(channel=channel))


def test_explicit_channel_overrides_the_json() -> None:
    raw = {"header": HEADER}
    assert Message.from_wire(raw, channel="shell").channel == "shell"
    with pytest.raises(RemoteProtocolError, match="unknown channel"):
        Message.from_wire(raw, channel="heartbeat")


def test_message_needs_a_header() -> None:
    with pytest.raises(RemoteProtocolError, match="no header"):
        Message.from_wire({"channel": "shell"})
    with pytest.raises(RemoteProtocolError, match="header must be"):
        Message.from_wire({"channel": "shell", "header": None})


@pytest.mark.parametrize("raw", [None, [], "message"])
def test_message_must_be_an_object(raw: object) -> None:
    with pytest.raises(RemoteProtocolError, match="message must be a JSON object"):
        Message.from_wire(raw)


def test_constructing_on_an_unknown_channel_is_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="unknown channel 'hb'"):
        Message(channel="hb", header=Header(msg_id="m", msg_type="t"))
    assert frozenset({"shell", "iopub", "stdin", "control"}) == CHANNELS


def test_buffers_are_converted_to_bytes() -> None:
    message = Message(
        channel="iopub",
        header=Header(msg_id="m", msg_type="t"),
        buffers=[bytearray(b"ab"), memoryview(b"cd"), b"ef"],
    )
    assert message.buffers == (b"ab", b"cd", b"ef")
    assert all(type(buffer) is bytes for buffer in message.buffers)


@pytest.mark.parametrize(
    ("parent", "expected"),
    [({"msg_id": "p1"}, "p1"), ({}, None), ({"msg_id": ""}, None), ({"msg_id": 7}, None)],
)
def test_parent_msg_id(parent: dict[str, Any], expected: str | None) -> None:
    assert Message.from_wire(wire(parent_header=parent)).parent_msg_id == expected
