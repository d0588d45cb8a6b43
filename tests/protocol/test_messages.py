"""Header and Message values, their wire dicts, and the request builders."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any

import pytest
from hypothesis import given

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol.messages import (
    CHANNELS,
    PROTOCOL_VERSION,
    Header,
    Message,
    MessageFactory,
    format_date,
)
from tests.strategies import headers, messages

MOMENT = datetime(2025, 1, 2, 3, 4, 5, 678_999, tzinfo=timezone.utc)
HEADER = {"msg_id": "k1", "msg_type": "status"}


def make_factory(**overrides: Any) -> MessageFactory:
    ids = count(1)
    options: dict[str, Any] = {
        "session": "sess",
        "new_id": lambda: f"id-{next(ids)}",
        "clock": lambda: MOMENT,
    }
    return MessageFactory(**{**options, **overrides})


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


# --- MessageFactory --------------------------------------------------------------------


def test_header_uses_injected_id_clock_session_and_username() -> None:
    factory = make_factory(username="alice")
    first, second = factory.header("a"), factory.header("b")
    assert (first.msg_id, second.msg_id) == ("id-1", "id-2")
    assert first.date == "2025-01-02T03:04:05.678Z"
    assert (first.session, first.username, first.version) == ("sess", "alice", "5.3")
    assert make_factory().header("a").username == "jupyter_interp"


def test_execute_request_has_all_six_fields() -> None:
    message = make_factory().execute_request("1+1")
    assert message.channel == "shell"
    assert message.msg_type == "execute_request"
    assert message.parent_header == {}
    assert message.metadata == {}
    assert message.content == {
        "code": "1+1",
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


def test_execute_request_options() -> None:
    message = make_factory().execute_request(
        "x",
        silent=True,
        store_history=False,
        user_expressions={"y": "x + 1"},
        allow_stdin=True,
        stop_on_error=False,
    )
    assert message.content == {
        "code": "x",
        "silent": True,
        "store_history": False,
        "user_expressions": {"y": "x + 1"},
        "allow_stdin": True,
        "stop_on_error": False,
    }


def test_execute_request_rejects_lone_surrogate() -> None:
    with pytest.raises(LocalProtocolError, match="code is not valid UTF-8"):
        make_factory().execute_request("print('\ud83d')")


@pytest.mark.parametrize("code", [b"print(1)", None, 3])
def test_execute_request_rejects_non_str_code(code: object) -> None:
    with pytest.raises(LocalProtocolError, match="code must be str"):
        make_factory().execute_request(code)  # type: ignore[arg-type]


@pytest.mark.parametrize("expressions", [{"x": 1}, {1: "x"}])
def test_execute_request_rejects_non_str_user_expressions(expressions: dict[Any, Any]) -> None:
    with pytest.raises(LocalProtocolError, match="user_expressions must map str to str"):
        make_factory().execute_request("x", user_expressions=expressions)


def test_input_reply_carries_the_input_request_header() -> None:
    request = Header(msg_id="k-17", msg_type="input_request", session="kernel")
    message = make_factory().input_reply("Ada", parent=request)
    assert message.channel == "stdin"
    assert message.msg_type == "input_reply"
    assert message.content == {"value": "Ada"}
    assert message.parent_header == request.to_wire()
    assert message.parent_msg_id == "k-17"


@pytest.mark.parametrize(
    ("value", "reason"), [(None, "input value must be str"), ("\udc80", "not valid UTF-8")]
)
def test_input_reply_rejects_bad_values(value: object, reason: str) -> None:
    parent = Header(msg_id="k", msg_type="input_request")
    with pytest.raises(LocalProtocolError, match=reason):
        make_factory().input_reply(value, parent=parent)  # type: ignore[arg-type]


def test_control_and_shell_builders() -> None:
    factory = make_factory()
    info = factory.kernel_info_request()
    assert (info.channel, info.msg_type, info.content) == ("shell", "kernel_info_request", {})
    assert factory.kernel_info_request(channel="control").channel == "control"
    interrupt = factory.interrupt_request()
    assert (interrupt.channel, interrupt.msg_type) == ("control", "interrupt_request")
    assert factory.shutdown_request().content == {"restart": False}
    shutdown = factory.shutdown_request(restart=True)
    assert (shutdown.channel, shutdown.content) == ("control", {"restart": True})
    close = factory.comm_close("c1")
    assert (close.channel, close.msg_type) == ("shell", "comm_close")
    assert close.content == {"comm_id": "c1", "data": {}}


@pytest.mark.parametrize(
    "overrides",
    [{"new_id": lambda: 7}, {"session": b"sess"}, {"username": None}],
    ids=["id", "session", "username"],
)
def test_factory_headers_are_still_validated(overrides: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        make_factory(**overrides).header("a")


def test_request_refuses_an_unknown_channel() -> None:
    with pytest.raises(LocalProtocolError, match="unknown channel"):
        make_factory().request("heartbeat", "custom_request", {})


def test_request_copies_content() -> None:
    content = {"a": 1}
    message = make_factory().request("shell", "custom_request", content)
    content["a"] = 2
    assert message.content == {"a": 1}


# --- format_date -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (MOMENT, "2025-01-02T03:04:05.678Z"),
        (MOMENT.replace(tzinfo=None), "2025-01-02T03:04:05.678Z"),
        (
            datetime(2025, 1, 2, 5, 4, 5, 1000, tzinfo=timezone(timedelta(hours=2))),
            "2025-01-02T03:04:05.001Z",
        ),
        (
            datetime(2024, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-1, minutes=-30))),
            "2025-01-01T00:30:00.000Z",
        ),
    ],
    ids=["utc", "naive-is-utc", "plus-two", "minus-one-thirty"],
)
def test_format_date(moment: datetime, expected: str) -> None:
    assert format_date(moment) == expected
