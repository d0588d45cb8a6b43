"""KernelConnection when the kernel restarts or dies: in-flight executions end at once
with a typed status, the generation is bumped, and a new kernel session is noticed.
"""

from __future__ import annotations

import pytest

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.protocol.connection import KernelConnection
from jupyter_interp.protocol.events import (
    ExecutionFinished,
    KernelDead,
    KernelRestarted,
    KernelStatus,
)
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.result import ExecutionStatus, Recovery
from tests.protocol.kernel_messages import CLIENT_SESSION, EPOCH, FakeKernel, client_factory

from .test_connection import (
    feed,
    results,
    session_of,
)

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
