"""KernelConnection: routing by parent, restarts, kernel death, session changes, replays."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
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
    KernelDead,
    KernelRestarted,
    KernelStatus,
    OutputDropped,
    ReplyReceived,
    StreamText,
)
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.messages import Header, Message
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, Recovery
from tests.protocol.kernel_messages import CLIENT_SESSION, EPOCH, FakeKernel, client_factory


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


# -- restarts and death --------------------------------------------------------------------


def start_two(connection: KernelConnection, kernel: FakeKernel) -> tuple[Message, Message]:
    _, first = connection.execute("import time; time.sleep(100)")
    _, second = connection.execute("queued")
    connection.request(connection.factory.kernel_info_request())
    feed(connection, [kernel.status(first, "busy"), kernel.stream(first, "before\n")])
    return first, second


def test_server_restarting_status_fails_in_flight_with_kernel_died() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    first, second = start_two(connection, kernel)
    assert session_of(connection) == "kernel-a"
    events = connection.receive(kernel.server_status("restarting"))
    assert events[0] == KernelStatus(execution_state="restarting")
    reason = "the kernel died and the server is restarting it"
    assert events[-1] == KernelRestarted(generation=1, reason=reason)
    finished = results(events)
    assert list(finished) == [first.msg_id, second.msg_id]
    assert all(
        r.status is ExecutionStatus.KERNEL_DIED and r.detail == reason for r in finished.values()
    )
    assert finished[first.msg_id].stdout == "before\n"
    assert (connection.generation, connection.in_flight, connection.kernel_session) == (1, (), None)
    assert len(connection.pending_requests) == 1  # the I/O layer times these out and forgets them
    new_kernel = FakeKernel(session="kernel-b")
    _, request = connection.execute("1")
    events = feed(
        connection,
        [kernel.stream(first, "old kernel, late"), *new_kernel.ipykernel_run(request, 1)],
    )
    assert not [e for e in events if isinstance(e, KernelRestarted)]
    assert session_of(connection) == "kernel-b"
    assert connection.generation == 1


def test_server_dead_status_fails_in_flight_with_kernel_died() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _first, _second = start_two(connection, kernel)
    events = connection.receive(kernel.server_status("dead"))
    assert events[0] == KernelStatus(execution_state="dead")
    assert events[-1] == KernelDead(generation=0)
    assert {r.status for r in results(events).values()} == {ExecutionStatus.KERNEL_DIED}
    assert len(results(events)) == 2
    assert connection.in_flight == ()


def test_kernel_session_change_fails_in_flight_with_kernel_restarted() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    first, _ = start_two(connection, kernel)
    events = connection.receive(FakeKernel(session="kernel-b").status(None, "starting"))
    assert events[0] == KernelStatus(execution_state="starting")
    assert events[-1] == KernelRestarted(
        generation=1, reason="the kernel was restarted (its session changed)"
    )
    assert {r.status for r in results(events).values()} == {ExecutionStatus.KERNEL_RESTARTED}
    assert session_of(connection) == "kernel-b"
    assert connection.in_flight == ()
    late_old = kernel.stream(first, "old")
    assert connection.receive(late_old) == []
    assert connection.generation == 1


def test_the_request_revealing_the_new_session_is_spared() -> None:
    connection = KernelConnection(client_factory())
    kernel, new_kernel = FakeKernel(), FakeKernel(session="kernel-b")
    first, second = start_two(connection, kernel)
    events = connection.receive(new_kernel.status(second, "busy"))
    assert list(results(events)) == [first.msg_id]
    assert isinstance(events[-2], KernelRestarted)
    assert events[-1] == KernelStatus(execution_state="busy", parent_msg_id=second.msg_id)
    assert connection.in_flight == (second.msg_id,)
    done = feed(connection, new_kernel.ipykernel_run(second, 1)[1:])
    assert results(done)[second.msg_id].status is ExecutionStatus.OK


def test_sessions_that_are_not_the_kernels_are_never_learned() -> None:
    connection = KernelConnection(client_factory())
    irkernel = FakeKernel(session="ir", copies_parent_session=True)
    _, request = connection.execute("1")
    other = client_factory(session="other-client", prefix="o").execute_request("x")
    messages = [
        irkernel.status(other, "busy"),  # another client's session, copied
        irkernel.rate_limit_notice(request),  # server-made: our session
        *irkernel.irkernel_run(request, 1, "[1] 1"),  # copies our session
        irkernel.message("iopub", "status", {"execution_state": "idle"}, session=""),
    ]
    events = feed(connection, messages)
    assert connection.kernel_session is None
    assert not [e for e in events if isinstance(e, KernelRestarted)]
    assert results(events)[request.msg_id].status is ExecutionStatus.OK


def test_notice_restart_fails_in_flight_and_retires_the_session() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _first, _second = start_two(connection, kernel)
    events = connection.notice_restart("restarted through REST")
    assert events[-1] == KernelRestarted(generation=1, reason="restarted through REST")
    finished = results(events)
    assert {r.status for r in finished.values()} == {ExecutionStatus.KERNEL_RESTARTED}
    assert {r.detail for r in finished.values()} == {"restarted through REST"}
    assert connection.receive(kernel.status(None, "starting")) == [
        KernelStatus(execution_state="starting")
    ]
    assert connection.kernel_session is None  # the old kernel's session is retired
    assert connection.notice_restart("again") == [KernelRestarted(generation=2, reason="again")]


def test_fail_all() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    start_two(connection, kernel)
    with pytest.raises(LocalProtocolError, match="failure status"):
        connection.fail_all(ExecutionStatus.OK)
    events = connection.fail_all(ExecutionStatus.CONNECTION_LOST, detail="socket closed")
    assert len(events) == 2
    assert all(isinstance(e, ExecutionFinished) for e in events)
    assert {(r.status, r.detail) for r in results(events).values()} == {
        (ExecutionStatus.CONNECTION_LOST, "socket closed")
    }
    assert connection.fail_all(ExecutionStatus.CANCELLED) == []


def test_trackers_ended_directly_are_unregistered() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    timed_out, _ = connection.execute("sleep")
    misused, _ = connection.execute("x")
    timed_out.fail(ExecutionStatus.TIMED_OUT)
    with pytest.raises(LocalProtocolError):
        misused.finish_incomplete()
    assert connection.in_flight == ()
    assert connection.notice_restart("REST") == [KernelRestarted(generation=1, reason="REST")]
    assert connection.receive(kernel.status(None, "idle")) == [KernelStatus(execution_state="idle")]


def test_messages_for_a_tracker_ended_directly_skip_it() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    timed_out, timed_out_request = connection.execute("sleep")
    misused, misused_request = connection.execute("x")
    timed_out.fail(ExecutionStatus.TIMED_OUT)
    with pytest.raises(LocalProtocolError):
        misused.finish_incomplete()  # poisoned: feeding it would raise
    for request in (timed_out_request, misused_request):
        late = [kernel.stream(request, "late"), kernel.status(request, "idle")]
        assert feed(connection, late) == [
            KernelStatus(execution_state="idle", parent_msg_id=request.msg_id)
        ]
    assert connection.in_flight == ()


def test_an_id_reused_after_its_execution_finished_is_tracked_again() -> None:
    connection = KernelConnection(
        MessageFactory(session="s", new_id=lambda: "same", clock=lambda: EPOCH)
    )
    kernel = FakeKernel()
    first, request = connection.execute("1")
    first.fail(ExecutionStatus.CANCELLED)  # ended directly: still registered until pruned
    second, again = connection.execute("2")
    assert connection.in_flight == (again.msg_id,)
    events = feed(connection, kernel.ipykernel_run(again, 2, result="2"))
    assert results(events)[again.msg_id].result == "2"
    assert second.done
    assert request.msg_id == again.msg_id


def test_own_session_id_is_ours() -> None:
    connection = KernelConnection(client_factory())
    assert connection.factory.session == CLIENT_SESSION
    assert connection.receive(FakeKernel().server_status("idle")) == [
        KernelStatus(execution_state="idle")
    ]
    assert connection.kernel_session is None


def test_old_kernel_output_after_a_restart_is_not_learned() -> None:
    connection = KernelConnection(client_factory())
    old_kernel, new_kernel = FakeKernel(), FakeKernel(session="kernel-b")
    _, before = connection.execute("sleep")
    connection.notice_restart("REST restart")
    assert connection.receive(old_kernel.stream(before, "late from the old kernel")) == []
    assert session_of(connection) is None
    _, after = connection.execute("1")
    events = feed(connection, new_kernel.ipykernel_run(after, 1))
    assert results(events)[after.msg_id].ok
    assert (session_of(connection), connection.generation) == ("kernel-b", 1)


def test_fail_and_finish_incomplete_by_msg_id() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _, slow = connection.execute("sleep")
    _, quick = connection.execute("1")
    connection.receive(kernel.stream(slow, "partial\n"))
    events = connection.fail(
        slow.msg_id, ExecutionStatus.TIMED_OUT, detail="deadline", recovery=Recovery.INTERRUPTED
    )
    result = results(events)[slow.msg_id]
    assert (result.status, result.recovery, result.stdout) == (
        ExecutionStatus.TIMED_OUT,
        Recovery.INTERRUPTED,
        "partial\n",
    )
    connection.receive(kernel.execute_reply(quick, execution_count=1))
    assert results(connection.finish_incomplete(quick.msg_id))[quick.msg_id].ok
    assert connection.in_flight == ()
    with pytest.raises(LocalProtocolError, match="in flight"):
        connection.fail(slow.msg_id, ExecutionStatus.CANCELLED)
    with pytest.raises(LocalProtocolError, match="in flight"):
        connection.finish_incomplete("unknown")


# -- loss across reconnects: gaps in jupyter_client's message counters -------------------

_PREFIX = "kernel-a_4242"  # jupyter_client >= 7: {session}_{pid}_{n}


def numbered(messages: Iterable[Message], start: int, prefix: str = _PREFIX) -> list[Message]:
    """Give ``messages`` the ids jupyter_client's Session makes: ``{prefix}_{n}``."""
    return [
        attrs.evolve(m, header=attrs.evolve(m.header, msg_id=f"{prefix}_{start + i}"))
        for i, m in enumerate(messages)
    ]


def lined_run(kernel: FakeKernel, request: Message, lines: int) -> list[Message]:
    """busy, execute_input, one stream per line, reply, idle."""
    run = kernel.ipykernel_run(request, 1)
    streams = [kernel.stream(request, f"line {i}\n") for i in range(lines)]
    return [*run[:2], *streams, *run[2:]]


def warmed_up(prefix: str = _PREFIX) -> tuple[KernelConnection, FakeKernel, int]:
    """A connection that saw a kernel_info exchange numbered 1-3; the next counter."""
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    info = connection.request(connection.factory.kernel_info_request())
    exchange = [
        kernel.status(info, "busy"),
        kernel.kernel_info_reply(info),
        kernel.status(info, "idle"),
    ]
    feed(connection, numbered(exchange, 1, prefix))
    return connection, kernel, 4


@given(
    lines=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_lost_messages_of_a_reconnect_spanning_execution_are_flagged(
    lines: int, data: st.DataObject
) -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, lines), start)
    body, ending = messages[1:-2], messages[-2:]  # execute_input and the streams
    lost = data.draw(st.sets(st.sampled_from(range(len(body)))), label="lost")
    delivered = [messages[0]] + [m for i, m in enumerate(body) if i not in lost]
    order = data.draw(st.permutations(delivered), label="order")  # channels interleave
    cut_at = data.draw(st.integers(min_value=0, max_value=len(order)), label="cut_at")
    events = feed(connection, order[:cut_at])
    connection.notice_reconnect(connection.in_flight)
    events += feed(connection, [*order[cut_at:], *data.draw(st.permutations(ending))])
    result = results(events)[request.msg_id]
    kept_lines = {f"line {i}\n" for i in range(lines) if i + 1 not in lost}
    assert set(result.stdout.splitlines(keepends=True)) == kept_lines
    assert len(result.stdout.splitlines()) == len(kept_lines)  # nothing twice
    assert result.status is ExecutionStatus.OK
    assert result.output_dropped == bool(lost)
    assert result.ok == (not lost)
    if lost:
        assert f"{len(lost)} kernel message" in result.detail
        assert "lost while reconnecting" in result.detail
        assert "lost while reconnecting" in result.describe()
    else:
        assert result.detail == ""


@given(lost=st.sets(st.integers(min_value=1, max_value=5), min_size=1))
def test_without_a_reconnect_gaps_are_never_flagged(lost: set[int]) -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 5), start)
    events = feed(connection, [m for i, m in enumerate(messages) if i not in lost])
    assert results(events)[request.msg_id].ok


def test_jupyter_client_6_ids_are_checked_too() -> None:
    connection, kernel, start = warmed_up(prefix="kernel-a")  # {session}_{n}
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 3), start, prefix="kernel-a")
    connection.notice_reconnect(connection.in_flight)
    result = results(feed(connection, messages[:2] + messages[3:]))[request.msg_id]
    assert result.output_dropped
    assert result.detail == "1 kernel message was lost while reconnecting"


def test_only_executions_sent_on_the_old_socket_are_checked() -> None:
    # after a restart frame the next request waits for the new socket: all of its
    # messages come there, and a gap in its span is a foreign reply (a server's nudge
    # for the new socket), not a loss
    connection, kernel, start = warmed_up()
    _, sent = connection.execute("print lines")
    _, waiting = connection.execute("print lines")
    connection.notice_reconnect([sent.msg_id, "not-an-execution"])
    first = numbered(lined_run(kernel, sent, 3), start)
    second = numbered(lined_run(kernel, waiting, 3), start + len(first))
    events = feed(connection, first[:2] + first[3:] + second[:2] + second[3:])
    assert results(events)[sent.msg_id].output_dropped
    assert results(events)[waiting.msg_id].ok


def test_ids_without_counters_cannot_be_checked() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()  # ids like kernel-a-7 (xeus, Deno and others: no counter)
    _, request = connection.execute("print lines")
    messages = lined_run(kernel, request, 3)
    connection.notice_reconnect(connection.in_flight)
    assert results(feed(connection, messages[:2] + messages[3:]))[request.msg_id].ok


def test_counters_of_other_sessions_or_shapes_are_not_the_kernels() -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 4), start)
    odd = [
        attrs.evolve(messages[2], header=attrs.evolve(messages[2].header, msg_id=msg_id))
        for msg_id in ("kernel-ab_9", "kernel-a_4242_x", "kernel-a_4242_٣", "nounderscore")
    ]
    connection.notice_reconnect(connection.in_flight)
    events = feed(connection, [messages[0], *odd, *messages[1:]])
    assert results(events)[request.msg_id].ok


def test_a_lost_busy_checks_from_the_last_counter_before_the_request() -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 2), start)
    connection.notice_reconnect(connection.in_flight)
    result = results(feed(connection, messages[1:]))[request.msg_id]  # busy lost
    assert result.output_dropped
    assert result.detail.startswith("1 kernel message was")


def test_an_execution_before_any_counter_is_checked_from_its_first_message() -> None:
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 3), 10)
    connection.notice_reconnect(connection.in_flight)
    # busy lost and nothing counted before: the check starts at the first message seen
    shuffled = [messages[2], messages[1], *messages[4:]]  # line 1 lost
    result = results(feed(connection, shuffled))[request.msg_id]
    assert result.output_dropped
    assert result.detail == "1 kernel message was lost while reconnecting"


def test_loss_and_the_rate_limit_flag_together() -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 3), start)
    notice = kernel.rate_limit_notice(request)
    connection.notice_reconnect(connection.in_flight)
    result = results(feed(connection, [*messages[:2], notice, *messages[3:]]))[request.msg_id]
    assert result.output_dropped
    assert not result.ok
    assert result.detail.startswith("IOPub data rate exceeded")
    assert result.detail.endswith("; 1 kernel message was lost while reconnecting")


def test_a_lost_reply_finished_after_the_grace_is_checked() -> None:
    connection, kernel, start = warmed_up()
    tracker, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 3), start)
    connection.notice_reconnect(connection.in_flight)
    feed(connection, [*messages[:3], *messages[4:-2], messages[-1]])  # line 1, reply lost
    assert tracker.awaiting_grace
    (finished,) = connection.finish_incomplete(request.msg_id)
    assert isinstance(finished, ExecutionFinished)
    assert finished.result.status is ExecutionStatus.NO_REPLY
    assert finished.result.detail.endswith("; 2 kernel messages were lost while reconnecting")
    assert tracker.result is finished.result


def test_failed_executions_are_not_checked() -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 3), start)
    connection.notice_reconnect(connection.in_flight)
    feed(connection, [messages[0], messages[3]])
    (finished,) = connection.fail(request.msg_id, ExecutionStatus.CONNECTION_LOST)
    assert isinstance(finished, ExecutionFinished)
    assert not finished.result.output_dropped


def test_holes_from_earlier_executions_do_not_count_and_stay_bounded() -> None:
    connection, kernel, start = warmed_up()
    _, first = connection.execute("first")
    # a huge jump (another client, a long silence) and a hole left by a lost message
    early = numbered(lined_run(kernel, first, 2), start + 10_000)
    feed(connection, early[:2] + early[3:])
    _, second = connection.execute("second")
    messages = numbered(lined_run(kernel, second, 2), start + 20_000)
    connection.notice_reconnect(connection.in_flight)
    assert results(feed(connection, messages))[second.msg_id].ok


def test_pipelined_executions_are_checked_each_on_its_own_span() -> None:
    connection, kernel, start = warmed_up()
    _, first = connection.execute("first")
    _, second = connection.execute("second")  # queued behind the first
    first_run = numbered(lined_run(kernel, first, 1), start)
    second_run = numbered(lined_run(kernel, second, 2), start + len(first_run))
    connection.notice_reconnect(connection.in_flight)
    lost_line = second_run[3]
    events = feed(connection, [*first_run, *(m for m in second_run if m is not lost_line)])
    assert results(events)[first.msg_id].ok
    assert results(events)[second.msg_id].detail == "1 kernel message was lost while reconnecting"


def reconnected_run(lines: int) -> tuple[KernelConnection, Message, list[Message]]:
    """A warmed-up connection, an execution printing ``lines`` lines, a reconnect; the
    connection, the request and the kernel's numbered messages for it."""
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, lines), start)
    connection.notice_reconnect(connection.in_flight)
    return connection, request, messages


def test_an_execution_spanning_two_reconnects_is_checked_across_both() -> None:
    connection, request, messages = reconnected_run(4)
    feed(connection, messages[:3])
    connection.notice_reconnect(connection.in_flight)
    events = feed(connection, messages[4:])  # line 1 lost in the second reconnect
    assert results(events)[request.msg_id].detail == "1 kernel message was lost while reconnecting"


def test_the_servers_own_requests_after_an_execution_are_not_its_losses() -> None:
    # busy, input, reply (delayed on shell), idle; then the server's kernel_info for a
    # reopened WebSocket: busy and idle are broadcast, its reply goes to the server only
    connection, kernel, start = warmed_up()
    _, request = connection.execute("1")
    busy, input_, reply, idle = numbered(kernel.ipykernel_run(request, 1), start)
    nudge = connection.factory.kernel_info_request()  # stands for the server's request
    server_busy, _, server_idle = numbered(
        [
            kernel.status(nudge, "busy"),
            kernel.kernel_info_reply(nudge),
            kernel.status(nudge, "idle"),
        ],
        start + 4,
    )
    feed(connection, [busy, input_, idle, server_busy, server_idle])
    connection.notice_reconnect(connection.in_flight)
    assert results(feed(connection, [reply]))[request.msg_id].ok


def nudged_run(
    lines: int, places: tuple[int, int, int]
) -> tuple[KernelConnection, Message, list[Message], list[Message]]:
    """A reconnect-spanning execution printing ``lines`` lines, and a server's
    control-channel kernel_info (busy, reply, idle) that ipykernel answers beside the
    running cell (its reply goes to the server only). The server's three messages are
    numbered at ``places`` (ascending indices in the merged sequence). Returns the
    connection, the request, and the numbered messages of the execution and of the
    server's request."""
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    nudge = connection.factory.kernel_info_request()  # stands for the server's request
    server = [
        kernel.status(nudge, "busy"),
        kernel.kernel_info_reply(nudge),
        kernel.status(nudge, "idle"),
    ]
    merged = [(message, False) for message in lined_run(kernel, request, lines)]
    for place, message in zip(places, server, strict=True):
        merged.insert(place, (message, True))
    messages = numbered([message for message, _ in merged], start)
    connection.notice_reconnect(connection.in_flight)
    own = [m for m, (_, foreign) in zip(messages, merged, strict=True) if not foreign]
    theirs = [m for m, (_, foreign) in zip(messages, merged, strict=True) if foreign]
    return connection, request, own, theirs


def counter(message: Message) -> int:
    return int(message.header.msg_id.rsplit("_", 1)[1])


def test_a_servers_control_request_answered_inside_a_cell_is_not_its_loss() -> None:
    connection, request, own, (busy, _, idle) = nudged_run(3, (3, 5, 6))
    result = results(feed(connection, [*own[:3], busy, *own[3:4], idle, *own[4:]]))
    assert result[request.msg_id].ok


@given(lines=st.integers(min_value=1, max_value=6), data=st.data())
def test_requests_not_ours_never_hide_a_loss(lines: int, data: st.DataObject) -> None:
    # the server's busy comes after the cell's busy, its idle before the cell's reply
    last = lines + 4  # merged indices 1 .. lines + 4 keep the cell's ends outside
    places = data.draw(
        st.lists(st.integers(1, last), min_size=3, max_size=3, unique=True).map(sorted),
        label="places",
    )
    connection, request, own, (busy, _, idle) = nudged_run(lines, (places[0], places[1], places[2]))
    body = range(1, len(own) - 2)  # execute_input and the lines: losable without a hang
    lost = data.draw(st.sets(st.sampled_from(body)), label="lost")
    kept = [m for i, m in enumerate(own) if i not in lost]
    delivered = sorted([*kept, busy, idle], key=counter)
    result = results(feed(connection, delivered))[request.msg_id]
    assert result.output_dropped == bool(lost)
    if not lost:
        assert result.ok, result.detail
        return
    reported = int(result.detail.split()[0])
    inside = any(counter(busy) < counter(own[i]) < counter(idle) for i in lost)
    assert reported == len(lost) + inside  # a loss beside the reply excuses nothing


def test_a_request_not_ours_whose_idle_was_lost_excuses_nothing() -> None:
    connection, request, own, (busy, _, _) = nudged_run(3, (3, 5, 6))
    result = results(feed(connection, [*own[:3], busy, *own[3:]]))[request.msg_id]
    assert result.detail == "2 kernel messages were lost while reconnecting"


def test_a_request_not_ours_whose_busy_was_lost_excuses_nothing() -> None:
    connection, request, own, (_, _, idle) = nudged_run(3, (3, 5, 6))
    result = results(feed(connection, [*own[:4], idle, *own[4:]]))[request.msg_id]
    assert result.detail == "2 kernel messages were lost while reconnecting"


def test_a_request_not_ours_answered_before_the_cell_excuses_none_of_its_losses() -> None:
    # the server's busy and reply come before the cell's busy, its idle inside the cell
    connection, request, own, (busy, _, idle) = nudged_run(3, (0, 1, 3))
    kept = [m for m in own if m is not own[3]]  # line 1 lost
    result = results(feed(connection, sorted([*kept, busy, idle], key=counter)))
    assert result[request.msg_id].detail == "1 kernel message was lost while reconnecting"


def test_requests_not_ours_are_remembered_within_bounds() -> None:
    # during one long cell: 70 requests whose idle was lost (reply and idle missing
    # each), a status of another state, then 70 whole ones: the oldest 6 whole ones
    # are forgotten, so their replies count as missing; the last 64 are excused
    connection, kernel, start = warmed_up()
    _, request = connection.execute("a long cell")
    busy, input_, reply, idle = kernel.ipykernel_run(request, 1)
    others = [connection.factory.kernel_info_request() for _ in range(140)]
    server: list[Message] = []
    for other in others:
        server.append(kernel.status(other, "busy"))
        server.append(kernel.kernel_info_reply(other))
        server.append(kernel.status(other, "idle"))
    server.insert(1, kernel.status(others[0], "starting"))
    numbered_run = numbered([busy, input_, *server, reply, idle], start)
    connection.notice_reconnect(connection.in_flight)
    idles_lost = {m.msg_id for m in others[:70]}
    delivered = [
        m
        for m in numbered_run
        if m.header.msg_type != "kernel_info_reply"
        and not (m.content.get("execution_state") == "idle" and m.parent_msg_id in idles_lost)
    ]
    result = results(feed(connection, delivered))[request.msg_id]
    assert result.detail == f"{70 * 2 + 6} kernel messages were lost while reconnecting"


def test_many_holes_collapse_into_a_range_counted_as_lost() -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 2), start)
    spread = [
        attrs.evolve(m, header=attrs.evolve(m.header, msg_id=f"{_PREFIX}_{start + 2 * i}"))
        for i, m in enumerate(messages[:3])
    ]  # every other counter missing
    far = [
        kernel.status(None, "idle") for _ in range(4200)
    ]  # parentless, every other counter: 4200 more holes
    far = [
        attrs.evolve(m, header=attrs.evolve(m.header, msg_id=f"{_PREFIX}_{start + 6 + 2 * i}"))
        for i, m in enumerate(far)
    ]
    end = numbered(messages[3:], start + 6 + 2 * len(far))
    connection.notice_reconnect(connection.in_flight)
    result = results(feed(connection, [*spread, *far, *end]))[request.msg_id]
    assert result.output_dropped
    assert "were lost while reconnecting" in result.detail


def test_a_new_counter_prefix_starts_a_new_log() -> None:
    connection, request, messages = reconnected_run(3)
    feed(connection, messages[:2])
    # the same session from another process (a forked helper): its counters restart
    rest = numbered(messages[3:], 1, prefix="kernel-a_777")
    result = results(feed(connection, rest))[request.msg_id]
    assert result.ok  # unknown span: cannot be checked


def test_a_huge_jump_inside_an_execution_counts_as_lost() -> None:
    connection, kernel, start = warmed_up()
    _, request = connection.execute("print lines")
    messages = numbered(lined_run(kernel, request, 2), start)
    tail = numbered(messages[3:], start + 10_000)
    connection.notice_reconnect(connection.in_flight)
    result = results(feed(connection, [*messages[:3], *tail]))[request.msg_id]
    assert result.output_dropped
    assert result.detail.startswith(f"{10_000 - 3} kernel messages")
