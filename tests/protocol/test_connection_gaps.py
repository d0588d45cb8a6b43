"""KernelConnection across reconnects: gaps in jupyter_client's message counters mark
the executions whose output may have been lost (``output_dropped``), and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.protocol.connection import KernelConnection
from jupyter_interp.protocol.events import (
    ExecutionFinished,
)
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.result import ExecutionStatus
from tests.protocol.kernel_messages import FakeKernel, client_factory

from .test_connection import (
    feed,
    results,
)

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
