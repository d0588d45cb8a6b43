"""MessageFactory builds every request from injected ids and clock; format_date's text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any

import pytest

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.protocol.message_factory import MessageFactory, format_date
from jupyter_interp.protocol.messages import Header

MOMENT = datetime(2025, 1, 2, 3, 4, 5, 678_999, tzinfo=timezone.utc)


def make_factory(**overrides: Any) -> MessageFactory:
    ids = count(1)
    options: dict[str, Any] = {
        "session": "sess",
        "new_id": lambda: f"id-{next(ids)}",
        "clock": lambda: MOMENT,
    }
    return MessageFactory(**{**options, **overrides})


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
