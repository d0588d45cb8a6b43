"""ExecutionTracker: the completion rule on ipykernel's messages, and how statuses and
errors aggregate (outputs: ``test_execution_outputs``; states: ``test_execution_states``)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.protocol.budget import OutputBudget
from jupyter_interp.protocol.events import (
    ExecuteInput,
    ExecuteResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionFinished,
    InputRequested,
    StreamText,
)
from jupyter_interp.protocol.execution import ExecutionTracker, TrackerState
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.result import (
    ExecutionResult,
    ExecutionStatus,
)
from tests.protocol.kernel_messages import ANSI_TRACEBACK, FakeKernel, client_factory

FAILURES = [status for status in ExecutionStatus if status is not ExecutionStatus.OK]


def start(
    code: str = "print('hi'); 1+1", budget: OutputBudget | None = None
) -> tuple[ExecutionTracker, Message, FakeKernel]:
    request = client_factory().execute_request(code)
    tracker = ExecutionTracker(request, budget=budget or OutputBudget())
    return tracker, request, FakeKernel()


def feed(tracker: ExecutionTracker, messages: Iterable[Message]) -> list[ExecutionEvent]:
    events: list[ExecutionEvent] = []
    for message in messages:
        events.extend(tracker.receive(message))
    return events


def state_of(tracker: ExecutionTracker) -> TrackerState:
    """Read the state without letting mypy narrow it across calls that change it."""
    return tracker.state


def finished(events: list[ExecutionEvent]) -> ExecutionResult:
    assert isinstance(events[-1], ExecutionFinished)
    assert sum(isinstance(e, ExecutionFinished) for e in events) == 1
    return events[-1].result


# -- ipykernel happy path and the completion rule ------------------------------------------


def test_ipykernel_print_and_value() -> None:
    tracker, request, kernel = start()
    assert (tracker.msg_id, tracker.state) == (request.msg_id, TrackerState.PENDING)
    events = feed(tracker, kernel.ipykernel_run(request, 5, stdout="hi\n", result="2"))
    assert [type(e) for e in events] == [ExecuteInput, StreamText, ExecuteResult, ExecutionFinished]
    assert all(e.msg_id == request.msg_id for e in events)
    result = finished(events)
    assert result is tracker.result
    assert (result.status, result.ok, result.stdout, result.result) == (
        ExecutionStatus.OK,
        True,
        "hi\n",
        "2",
    )
    assert (result.execution_count, result.stdout_size, result.stderr, result.detail) == (
        5,
        3,
        "",
        "",
    )
    assert [(o.kind, dict(o.data)) for o in result.outputs] == [
        ("execute_result", {"text/plain": "2"})
    ]
    assert tracker.done
    assert state_of(tracker) is TrackerState.DONE
    assert not tracker.awaiting_grace


def test_states_along_the_way() -> None:
    tracker, request, kernel = start()
    tracker.receive(kernel.status(request, "busy"))
    assert (state_of(tracker), tracker.awaiting_grace) == (TrackerState.RUNNING, False)
    tracker.receive(kernel.execute_reply(request, execution_count=1))
    assert (state_of(tracker), tracker.awaiting_grace) == (TrackerState.REPLY_SEEN, True)
    with pytest.raises(LocalProtocolError, match="not finished"):
        _ = tracker.result
    assert state_of(tracker) is TrackerState.REPLY_SEEN  # reading result early does not poison


def test_output_alone_means_running() -> None:
    tracker, request, kernel = start()
    tracker.receive(kernel.stream(request, "x"))
    assert state_of(tracker) is TrackerState.RUNNING


@pytest.mark.parametrize("reply_first", [True, False])
def test_reply_and_idle_in_either_order(reply_first: bool) -> None:
    tracker, request, kernel = start()
    reply = kernel.execute_reply(request, execution_count=2)
    idle = kernel.status(request, "idle")
    first, second = (reply, idle) if reply_first else (idle, reply)
    assert feed(tracker, [kernel.status(request, "busy"), first]) == []
    expected = TrackerState.REPLY_SEEN if reply_first else TrackerState.IDLE_SEEN
    assert state_of(tracker) is expected
    assert tracker.awaiting_grace
    assert finished(tracker.receive(second)).status is ExecutionStatus.OK


def test_output_after_idle_before_reply_is_kept() -> None:
    tracker, request, kernel = start()
    feed(tracker, [kernel.status(request, "idle"), kernel.stream(request, "late\n")])
    assert state_of(tracker) is TrackerState.IDLE_SEEN
    result = finished(tracker.receive(kernel.execute_reply(request)))
    assert result.stdout == "late\n"


def test_output_after_reply_before_idle_is_kept() -> None:
    tracker, request, kernel = start()
    feed(tracker, [kernel.execute_reply(request), kernel.stream(request, "tail\n")])
    assert state_of(tracker) is TrackerState.REPLY_SEEN
    assert finished(tracker.receive(kernel.status(request, "idle"))).stdout == "tail\n"


def test_messages_after_done_are_ignored() -> None:
    tracker, request, kernel = start()
    result = finished(feed(tracker, kernel.ipykernel_run(request, 1)))
    late = [kernel.stream(request, "background\n"), *kernel.ipykernel_run(request, 9)]
    assert feed(tracker, late) == []
    assert tracker.result is result
    assert result.stdout == ""


def test_duplicates_and_stray_statuses_are_tolerated() -> None:
    tracker, request, kernel = start()
    events = feed(
        tracker,
        [
            kernel.status(request, "busy"),
            kernel.status(request, "idle"),
            kernel.status(request, "busy"),
            kernel.status(request, "idle"),
            kernel.status(request, "starting"),
        ],
    )
    assert events == []
    assert state_of(tracker) is TrackerState.IDLE_SEEN
    tracker2, request2, _ = start()
    feed(
        tracker2,
        [
            kernel.execute_reply(request2, execution_count=1),
            kernel.status(request2, "busy"),
            kernel.execute_reply(request2, "error", execution_count=2),
        ],
    )
    result = finished(tracker2.receive(kernel.status(request2, "idle")))
    assert (result.status, result.execution_count) == (ExecutionStatus.OK, 1)  # first wins


def test_other_parents_and_unknown_types_are_ignored() -> None:
    tracker, request, kernel = start()
    other = client_factory(prefix="other").execute_request("x")
    noise = [
        *kernel.ipykernel_run(other, 3, stdout="OTHER\n", result="'OTHER'"),
        kernel.status(None, "starting"),
        kernel.message("iopub", "comm_msg", {"comm_id": "c", "data": {}}, request),
        kernel.message("iopub", "debug_event", {}, request),
        kernel.message("iopub", "shutdown_reply", {"status": "ok"}, request),
    ]
    assert feed(tracker, noise) == []
    assert state_of(tracker) is TrackerState.PENDING
    result = finished(feed(tracker, kernel.ipykernel_run(request, 4, stdout="mine\n")))
    assert "OTHER" not in result.stdout
    assert result.outputs == ()


# -- status and error aggregation -----------------------------------------------------------


def test_ipykernel_error_strips_ansi_and_keeps_raw() -> None:
    tracker, request, kernel = start("1/0")
    events = feed(tracker, kernel.ipykernel_error(request, 3))
    errors = [e for e in events if isinstance(e, ExecutionError)]
    assert len(errors) == 1
    result = finished(events)
    assert result.status is ExecutionStatus.ERROR
    assert not result.ok
    assert result.error is not None
    assert result.error == errors[0].error
    assert result.error.summary() == "ZeroDivisionError: division by zero"
    assert result.error.raw_traceback == tuple(ANSI_TRACEBACK)
    assert not any("\x1b" in line for line in result.error.traceback)
    assert result.execution_count == 3


def test_the_first_of_two_errors_is_the_result_s_error() -> None:
    # a kernel may publish an error and then another while handling it
    tracker, request, kernel = start("1/0")
    busy, executing, error, reply, idle = kernel.ipykernel_error(request, 3)
    later = kernel.error(request, ename="OSError", evalue="later")
    result = finished(feed(tracker, [busy, executing, error, later, reply, idle]))
    assert result.error is not None
    assert result.error.ename == "ZeroDivisionError"


def test_error_from_reply_when_iopub_error_was_dropped() -> None:
    tracker, request, kernel = start("1/0")
    reply = kernel.execute_reply(
        request, "error", ename="ValueError", evalue="bad", traceback=["\x1b[31mline\x1b[0m"]
    )
    result = finished(feed(tracker, [reply, kernel.status(request, "idle")]))
    assert result.error is not None
    assert (result.error.ename, result.error.traceback) == ("ValueError", ("line",))


def test_keyboard_interrupt_is_interrupted() -> None:
    tracker, request, kernel = start("while True: pass")
    result = finished(feed(tracker, kernel.ipykernel_interrupted(request, 7)))
    assert result.status is ExecutionStatus.INTERRUPTED
    assert result.error is not None
    assert result.error.ename == "KeyboardInterrupt"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("abort", ExecutionStatus.INTERRUPTED), ("aborted", ExecutionStatus.ABORTED)],
)
def test_abort_statuses(status: str, expected: ExecutionStatus) -> None:
    tracker, request, kernel = start()
    messages = [kernel.status(request, "busy"), kernel.execute_reply(request, status)]
    result = finished(feed(tracker, [*messages, kernel.status(request, "idle")]))
    assert (result.status, result.error, result.execution_count) == (expected, None, None)


def test_irkernel_aborted_without_busy_idle_takes_the_grace_path() -> None:
    tracker, request, kernel = start()
    assert feed(tracker, kernel.irkernel_aborted(request)) == []
    assert tracker.awaiting_grace
    result = finished(tracker.finish_incomplete())
    assert result.status is ExecutionStatus.ABORTED


def test_xeus_bare_error_reply() -> None:
    tracker, request, kernel = start()
    feed(tracker, kernel.xeus_aborted(request))
    result = finished(tracker.finish_incomplete())
    assert (result.status, result.error) == (ExecutionStatus.ERROR, None)
    assert "without details" in result.detail
    assert "without details" in result.describe()


def test_bash_kernel_error_with_empty_ename() -> None:
    tracker, request, kernel = start("ls x")
    result = finished(feed(tracker, kernel.bash_error(request, 4, exit_code=2)))
    assert result.status is ExecutionStatus.ERROR
    assert result.error is not None
    assert (result.error.ename, result.error.evalue, result.error.traceback) == ("", "2", ())
    assert result.error.summary() == "2"
    assert result.stdout.startswith("ls: cannot access")
    assert result.stderr == ""


def test_unknown_reply_status_is_an_error_with_detail() -> None:
    tracker, request, kernel = start()
    result = finished(
        feed(tracker, [kernel.execute_reply(request, "weird"), kernel.status(request, "idle")])
    )
    assert result.status is ExecutionStatus.ERROR
    assert "'weird'" in result.detail


def test_missing_idle_finishes_from_the_reply() -> None:
    tracker, request, kernel = start()
    messages = kernel.ipykernel_run(request, 6, stdout="out\n", result="1")[:-1]
    assert not [e for e in feed(tracker, messages) if isinstance(e, ExecutionFinished)]
    result = finished(tracker.finish_incomplete())
    assert (result.status, result.stdout, result.result, result.execution_count) == (
        ExecutionStatus.OK,
        "out\n",
        "1",
        6,
    )
    assert tracker.receive(kernel.status(request, "idle")) == []


def test_missing_reply_is_no_reply_with_partial_output() -> None:
    tracker, request, kernel = start()
    feed(
        tracker,
        [
            kernel.status(request, "busy"),
            kernel.stream(request, "part\n"),
            kernel.error(request, "E", "v"),
            kernel.status(request, "idle"),
        ],
    )
    result = finished(tracker.finish_incomplete())
    assert (result.status, result.stdout) == (ExecutionStatus.NO_REPLY, "part\n")
    assert result.error is not None
    assert result.error.ename == "E"
    assert "no execute_reply" in result.detail


def test_execution_count_sources() -> None:
    tracker, request, kernel = start()
    feed(tracker, [kernel.execute_input(request, 7), kernel.execute_reply(request)])
    assert finished(tracker.finish_incomplete()).execution_count == 7
    tracker, request, _ = start()
    feed(tracker, [kernel.execute_result(request, 8, "x"), kernel.execute_reply(request)])
    assert finished(tracker.finish_incomplete()).execution_count == 8


def test_user_expressions_from_reply() -> None:
    tracker, request, kernel = start()
    expressions = {"a": {"status": "ok", "data": {"text/plain": "1"}, "metadata": {}}}
    feed(tracker, [kernel.execute_reply(request, user_expressions=expressions)])
    assert finished(tracker.finish_incomplete()).user_expressions == expressions


def test_input_request_event() -> None:
    tracker, request, kernel = start("input('Name: ')")
    message = kernel.input_request(request, "Name: ", password=True)
    assert tracker.receive(message) == [
        InputRequested(
            msg_id=request.msg_id, prompt="Name: ", password=True, request=message.header
        )
    ]
    result = finished(tracker.fail(ExecutionStatus.INPUT_REQUIRED, detail="stdin disabled"))
    assert (result.status, result.detail) == (ExecutionStatus.INPUT_REQUIRED, "stdin disabled")


def test_unknown_stream_name_goes_to_stdout_but_keeps_its_name() -> None:
    tracker, request, kernel = start()
    events = tracker.receive(kernel.stream(request, "x", name="debug"))
    assert events == [StreamText(msg_id=request.msg_id, name="debug", text="x")]
    feed(tracker, [kernel.stream(request, "e", name="stderr"), kernel.execute_reply(request)])
    result = finished(tracker.finish_incomplete())
    assert (result.stdout, result.stderr) == ("x", "e")
