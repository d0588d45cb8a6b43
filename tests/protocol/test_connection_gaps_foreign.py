"""KernelConnection's gap check around requests that are not ours (the server's own
kernel_info nudges and control requests): their messages never count as an execution's
loss, and never excuse one either.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jupyter_interp.protocol.connection import KernelConnection
from jupyter_interp.protocol.messages import Message
from tests.protocol.kernel_messages import FakeKernel, client_factory

from .test_connection import (
    feed,
    results,
)
from .test_connection_gaps import (
    lined_run,
    numbered,
    warmed_up,
)


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


# -- kernels without counters: our own busy must come ------------------------------------


@given(lose_busy=st.booleans())
def test_without_counters_a_lost_busy_of_ours_is_flagged_and_nothing_else(
    lose_busy: bool,
) -> None:
    # message ids are uuids (xeus, IRkernel): only our own busy can be checked
    connection = KernelConnection(client_factory())
    kernel = FakeKernel()
    _, request = connection.execute("x")
    connection.notice_reconnect(connection.in_flight)
    other = client_factory("other-client").execute_request("y")  # not ours
    run = kernel.ipykernel_run(request, 1)
    foreign = [kernel.status(other, "busy"), kernel.status(other, "idle")]
    messages = [*run[1:], *foreign] if lose_busy else [*run, *foreign]
    (result,) = results(feed(connection, messages)).values()
    assert result.output_dropped is lose_busy
    assert result.ok is not lose_busy
