"""KernelConnection: routing by parent, restarts, kernel death, session changes, replays."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol.budget import OutputBudget
from jupyter_interp.protocol.connection import KernelConnection
from jupyter_interp.protocol.events import (
    Event,
    ExecuteResult,
    ExecutionFinished,
    KernelStatus,
    OutputDropped,
    ReplyReceived,
    StreamText,
)
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.messages import Header, Message
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus
from tests.protocol.kernel_messages import EPOCH, FakeKernel, client_factory


def feed(connection: KernelConnection, messages: Iterable[Message]) -> list[Event]:
    events: list[Event] = []
    for message in messages:
        events.extend(connection.receive(message))
    return events


def session_of(connection: KernelConnection) -> str | None:
    """Read the learned session without letting mypy narrow it across calls."""
    return connection.kernel_session


def results(events: list[Event]) -> dict[str, ExecutionResult]:
    return {e.msg_id: e.result for e in events if isinstance(e, ExecutionFinished)}


def test_execute_registers_a_tracker_and_builds_the_request() -> None:
    factory = client_factory()
    connection = KernelConnection(factory, budget=OutputBudget(max_stream_bytes=4))
    assert connection.factory is factory
    tracker, message = connection.execute("print(1)", allow_stdin=True)
    assert (message.msg_type, message.channel, message.content["allow_stdin"]) == (
        "execute_request",
        "shell",
        True,
    )
    assert connection.in_flight == (message.msg_id,) == (tracker.msg_id,)
    assert connection.tracker(message.msg_id) is tracker
    assert connection.tracker("nope") is None
    events = feed(connection, FakeKernel().ipykernel_run(message, 1, stdout="0123456789"))
    assert results(events)[message.msg_id].stdout_truncated  # the budget reached the tracker


def test_execute_refuses_bad_code_and_repeated_ids() -> None:
    connection = KernelConnection(
        MessageFactory(session="s", new_id=lambda: "same", clock=lambda: EPOCH)
    )
    with pytest.raises(LocalProtocolError):
        connection.execute("\ud800")
    connection.execute("1")
    with pytest.raises(LocalProtocolError, match="already in flight"):
        connection.execute("2")
    with pytest.raises(LocalProtocolError, match="already in flight"):
        connection.request(connection.factory.kernel_info_request())


def test_ipykernel_run_routes_events_and_unregisters_when_finished() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    tracker, request = connection.execute("print('hi'); 1+1")
    events = feed(connection, kernel.ipykernel_run(request, 5, stdout="hi\n", result="2"))
    assert events[0] == KernelStatus(execution_state="busy", parent_msg_id=request.msg_id)
    assert events[-2] == KernelStatus(execution_state="idle", parent_msg_id=request.msg_id)
    assert isinstance(events[-1], ExecutionFinished)
    assert events[-1].result is tracker.result
    assert [type(e) for e in events[1:-2]][-2:] == [StreamText, ExecuteResult]
    assert tracker.result.result == "2"
    assert connection.in_flight == ()
    assert connection.tracker(request.msg_id) is None
    late = [kernel.stream(request, "late"), kernel.status(request, "idle")]
    assert feed(connection, late) == [
        KernelStatus(execution_state="idle", parent_msg_id=request.msg_id)
    ]


def test_results_carry_the_generation_they_started_in() -> None:
    connection = KernelConnection(client_factory())
    connection.notice_restart("REST restart")
    _, request = connection.execute("1")
    events = feed(connection, FakeKernel().ipykernel_run(request, 1))
    assert results(events)[request.msg_id].generation == 1


def test_rate_limit_notice_reaches_the_tracker() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _, request = connection.execute("print('x' * 10**7)")
    events = feed(
        connection, [kernel.rate_limit_notice(request), *kernel.ipykernel_run(request, 1)]
    )
    assert isinstance(events[0], OutputDropped)
    assert results(events)[request.msg_id].output_dropped


# -- non-execute requests ------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_request_reply_becomes_reply_received(channel: str) -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    request = connection.factory.kernel_info_request(channel=channel)
    assert connection.request(request) is request
    assert list(connection.pending_requests) == [request.msg_id]
    busy = kernel.status(request, "busy")
    assert connection.receive(busy) == [
        KernelStatus(execution_state="busy", parent_msg_id=request.msg_id)
    ]
    assert connection.receive(kernel.stream(request, "noise")) == []
    reply = kernel.kernel_info_reply(request, channel)
    assert connection.receive(reply) == [
        ReplyReceived(request_msg_id=request.msg_id, message=reply)
    ]
    assert list(connection.pending_requests) == []
    assert connection.receive(kernel.kernel_info_reply(request, "iopub")) == []


def test_request_refuses_execute_requests() -> None:
    connection = KernelConnection(client_factory())
    with pytest.raises(LocalProtocolError, match="execute"):
        connection.request(connection.factory.execute_request("1"))


def test_forget_drops_a_pending_request() -> None:
    connection = KernelConnection(client_factory())
    request = connection.request(connection.factory.kernel_info_request())
    connection.forget(request.msg_id)
    connection.forget("never-sent")
    assert list(connection.pending_requests) == []
    assert connection.receive(FakeKernel().kernel_info_reply(request)) == []


# -- what is not ours ----------------------------------------------------------------------


def test_other_parents_are_ignored_entirely() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _, request = connection.execute("1")
    other = client_factory(session="other-client", prefix="o").execute_request("x")
    assert feed(connection, kernel.ipykernel_run(other, 9, stdout="OTHER")) == []
    assert connection.in_flight == (request.msg_id,)


@given(order=st.lists(st.booleans(), min_size=12, max_size=12))
def test_interleaved_clients_never_mix(order: list[bool]) -> None:
    kernel = FakeKernel()
    alone = KernelConnection(client_factory())
    _, request = alone.execute("print('mine')")
    mine = kernel.ipykernel_run(request, 1, stdout="mine\n", result="1")
    expected = feed(alone, mine)
    shared = KernelConnection(client_factory())
    shared.execute("print('mine')")
    other = client_factory(session="other-client", prefix="o").execute_request("x")
    theirs = kernel.ipykernel_run(other, 2, stdout="OTHER\n", result="'OTHER'")
    merged: list[Message] = []
    queues = [list(mine), list(theirs)]
    for pick in order:
        queue = queues[pick] or queues[not pick]
        merged.append(queue.pop(0))
    merged.extend(queues[0] + queues[1])
    assert feed(shared, merged) == expected


def test_parentless_messages() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    assert connection.receive(kernel.status(None, "starting")) == [
        KernelStatus(execution_state="starting")
    ]
    welcome = kernel.message("iopub", "iopub_welcome", {"subscription": ""})
    assert connection.receive(welcome) == []
    assert session_of(connection) == "kernel-a"


def test_malformed_parentless_status_raises_but_the_connection_goes_on() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    with pytest.raises(RemoteProtocolError, match="execution_state"):
        connection.receive(kernel.message("iopub", "status", {"execution_state": None}))
    _, request = connection.execute("1")
    assert results(feed(connection, kernel.ipykernel_run(request, 1)))[request.msg_id].ok


def test_malformed_content_ends_that_execution_with_error() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    tracker, request = connection.execute("print(1)")
    connection.receive(kernel.stream(request, "kept\n"))
    events = connection.receive(kernel.message("iopub", "stream", {"name": "stdout"}, request))
    result = results(events)[request.msg_id]
    assert (result.status, result.stdout) == (ExecutionStatus.ERROR, "kept\n")
    assert "malformed" in result.detail
    assert result.error is None
    assert connection.in_flight == ()
    assert tracker.done
    bad_status = kernel.message("iopub", "status", {"execution_state": 3}, request)
    assert connection.receive(bad_status) == []


# -- replays after a reconnect -------------------------------------------------------------


def test_replayed_messages_are_ignored() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _, request = connection.execute("print(1)")
    run = kernel.ipykernel_run(request, 1, stdout="once\n")
    events = feed(connection, run[:3] + run[:3] + run[3:])
    assert results(events)[request.msg_id].stdout == "once\n"


def test_replay_memory_is_bounded() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    first = kernel.status(None, "busy")
    assert connection.receive(first) != []
    assert connection.receive(first) == []
    feed(connection, [kernel.status(None, "idle") for _ in range(4095)])
    assert connection.receive(first) == []  # the last 4096 ids are always known
    feed(connection, [kernel.status(None, "idle") for _ in range(2 * 4096)])
    assert connection.receive(first) == [KernelStatus(execution_state="busy")]


def test_request_id_memory_is_bounded() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    first = connection.request(connection.factory.kernel_info_request())
    connection.forget(first.msg_id)
    busy = KernelStatus(execution_state="busy", parent_msg_id=first.msg_id)
    assert connection.receive(kernel.status(first, "busy")) == [busy]  # still ours
    for _ in range(4096):
        connection.forget(connection.request(connection.factory.kernel_info_request()).msg_id)
    assert connection.receive(kernel.status(first, "idle")) == []  # forgotten


def test_messages_without_id_are_never_deduplicated() -> None:
    connection = KernelConnection(client_factory())
    header = Header(msg_id="", msg_type="status", session="kernel-a")
    anonymous = Message(channel="iopub", header=header, content={"execution_state": "busy"})
    assert connection.receive(anonymous) == connection.receive(anonymous) != []
