"""ExecutionTracker: the per-request state machine, aggregation, quirks and budgets."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol.budget import OutputBudget
from jupyter_interp.protocol.events import (
    ClearOutput,
    DisplayData,
    DisplayUpdate,
    ExecuteInput,
    ExecuteResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionFinished,
    InputRequested,
    OutputDropped,
    StreamText,
)
from jupyter_interp.protocol.execution import ExecutionTracker, TrackerState
from jupyter_interp.protocol.kernel_output import publishes_after_idle
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.result import (
    ErrorInfo,
    ExecutionFailed,
    ExecutionResult,
    ExecutionStatus,
    Recovery,
)
from tests.protocol.kernel_messages import ANSI_TRACEBACK, RATE_NOTICES, FakeKernel, client_factory

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


def test_irkernel_value_is_a_display_not_a_result() -> None:
    tracker, request, kernel = start("1+1")
    kernel.copies_parent_session = True
    result = finished(feed(tracker, kernel.irkernel_run(request, 1, "[1] 2")))
    assert result.result is None
    assert [(o.kind, o.data["text/plain"]) for o in result.outputs] == [("display_data", "[1] 2")]


def test_unknown_stream_name_goes_to_stdout_but_keeps_its_name() -> None:
    tracker, request, kernel = start()
    events = tracker.receive(kernel.stream(request, "x", name="debug"))
    assert events == [StreamText(msg_id=request.msg_id, name="debug", text="x")]
    feed(tracker, [kernel.stream(request, "e", name="stderr"), kernel.execute_reply(request)])
    result = finished(tracker.finish_incomplete())
    assert (result.stdout, result.stderr) == ("x", "e")


# -- rich outputs: clear_output and update_display_data ------------------------------------


def displays(result: ExecutionResult) -> list[Any]:
    return [o.data["text/plain"] for o in result.outputs]


def test_clear_output_now_clears_rich_outputs_but_keeps_streams() -> None:
    tracker, request, kernel = start()
    events = feed(
        tracker,
        [
            kernel.stream(request, "log\n"),
            kernel.display_data(request, {"text/plain": "a"}),
            kernel.clear_output(request),
            kernel.display_data(request, {"text/plain": "b"}),
            kernel.execute_reply(request),
        ],
    )
    assert ClearOutput(msg_id=request.msg_id, wait=False) in events
    result = finished(tracker.finish_incomplete())
    assert (displays(result), result.stdout) == (["b"], "log\n")


@pytest.mark.parametrize(
    ("trigger", "cleared"),
    [("stream", True), ("display", True), ("result", True), ("error", True), ("update", False)],
)
def test_clear_output_wait_applies_at_the_next_output(trigger: str, cleared: bool) -> None:
    tracker, request, kernel = start()
    first = kernel.display_data(request, {"text/plain": "a"}, display_id="d")
    next_message = {
        "stream": kernel.stream(request, "s"),
        "display": kernel.display_data(request, {"text/plain": "n"}),
        "result": kernel.execute_result(request, 1, "r"),
        "error": kernel.error(request, "E", "v"),
        "update": kernel.display_data(request, {"text/plain": "u"}, display_id="d", update=True),
    }[trigger]
    feed(
        tracker, [first, kernel.clear_output(request, wait=True), kernel.execute_input(request, 1)]
    )
    feed(tracker, [kernel.input_request(request, "?"), next_message, kernel.execute_reply(request)])
    result = finished(tracker.finish_incomplete())
    assert ("a" in displays(result) or "u" in displays(result)) is not cleared


def test_pending_clear_without_more_output_keeps_outputs() -> None:
    tracker, request, kernel = start()
    feed(
        tracker,
        [
            kernel.display_data(request, {"text/plain": "a"}),
            kernel.clear_output(request, wait=True),
            kernel.execute_reply(request),
        ],
    )
    assert displays(finished(tracker.finish_incomplete())) == ["a"]


def test_clear_now_after_a_pending_clear() -> None:
    tracker, request, kernel = start()
    feed(
        tracker,
        [
            kernel.display_data(request, {"text/plain": "a"}),
            kernel.clear_output(request, wait=True),
            kernel.clear_output(request, wait=False),
            kernel.stream(request, "s"),
            kernel.display_data(request, {"text/plain": "b"}),
            kernel.execute_reply(request),
        ],
    )
    assert displays(finished(tracker.finish_incomplete())) == ["b"]


def test_update_display_data_replaces_every_output_with_that_id() -> None:
    tracker, request, kernel = start()
    events = feed(
        tracker,
        [
            kernel.display_data(request, {"text/plain": "p0"}, display_id="bar"),
            kernel.display_data(request, {"text/plain": "other"}, display_id="x"),
            kernel.display_data(request, {"text/plain": "p0"}, display_id="bar"),
            kernel.display_data(
                request, {"text/plain": "p1"}, display_id="bar", update=True, metadata={"m": 1}
            ),
            kernel.display_data(request, {"text/plain": "zz"}, display_id="nobody", update=True),
            kernel.execute_reply(request),
        ],
    )
    assert [type(e) for e in events] == [DisplayData] * 3 + [DisplayUpdate] * 2
    result = finished(tracker.finish_incomplete())
    assert displays(result) == ["p1", "other", "p1"]
    assert [o.display_id for o in result.outputs] == ["bar", "x", "bar"]
    assert result.outputs[0].metadata == {"m": 1}
    assert result.outputs[1].metadata == {}


# -- the server's rate-limit notice --------------------------------------------------------


@pytest.mark.parametrize("kind", ["data", "message"])
def test_rate_limit_notice_is_output_dropped_not_stderr(kind: str) -> None:
    tracker, request, kernel = start()
    notice = kernel.rate_limit_notice(request, kind)
    events = feed(
        tracker,
        [kernel.stream(request, "x" * 10), notice, kernel.rate_limit_notice(request, "data")],
    )
    assert events[1] == OutputDropped(msg_id=request.msg_id, text=RATE_NOTICES[kind])
    result = finished(
        feed(tracker, [kernel.execute_reply(request), kernel.status(request, "idle")])
    )
    assert result.status is ExecutionStatus.OK
    assert result.output_dropped
    assert not result.ok
    assert (result.stderr, result.stdout_size) == ("", 10)
    assert result.detail == RATE_NOTICES[kind].splitlines()[0]


def test_rate_limit_detail_joins_the_fail_detail() -> None:
    tracker, request, kernel = start()
    tracker.receive(kernel.rate_limit_notice(request))
    result = finished(tracker.fail(ExecutionStatus.TIMED_OUT, detail="deadline 5s"))
    assert result.detail == "deadline 5s; IOPub data rate exceeded."


def test_user_text_on_stdout_that_looks_like_a_notice_is_output() -> None:
    tracker, request, kernel = start()
    events = tracker.receive(kernel.stream(request, RATE_NOTICES["data"], name="stdout"))
    assert isinstance(events[0], StreamText)


# -- local calls: fail, finish_incomplete, poisoning ---------------------------------------


@pytest.mark.parametrize("setup", ["pending", "running", "reply", "idle"])
def test_fail_from_any_live_state_keeps_partial_output(setup: str) -> None:
    tracker, request, kernel = start()
    tracker.receive(kernel.stream(request, "partial\n"))
    tracker.receive(kernel.display_data(request, {"text/plain": "d"}))
    if setup == "pending":
        tracker, request, kernel = start()
    elif setup == "reply":
        tracker.receive(kernel.execute_reply(request, execution_count=3))
    elif setup == "idle":
        tracker.receive(kernel.status(request, "idle"))
    result = finished(
        tracker.fail(ExecutionStatus.TIMED_OUT, detail="deadline", recovery=Recovery.RESTARTED)
    )
    assert (result.status, result.recovery, result.detail) == (
        ExecutionStatus.TIMED_OUT,
        Recovery.RESTARTED,
        "deadline",
    )
    assert result.stdout == ("" if setup == "pending" else "partial\n")
    assert result.execution_count == (3 if setup == "reply" else None)
    assert tracker.done


def assert_poisoned(tracker: ExecutionTracker, request: Message) -> None:
    assert state_of(tracker) is TrackerState.ERROR
    assert not tracker.done
    kernel = FakeKernel()
    with pytest.raises(LocalProtocolError):
        tracker.receive(kernel.status(request, "idle"))
    with pytest.raises(LocalProtocolError):
        tracker.fail(ExecutionStatus.CANCELLED)
    with pytest.raises(LocalProtocolError):
        tracker.finish_incomplete()
    with pytest.raises(LocalProtocolError):
        _ = tracker.result


@pytest.mark.parametrize("busy", [False, True])
def test_finish_incomplete_too_early_poisons(busy: bool) -> None:
    tracker, request, kernel = start()
    if busy:
        tracker.receive(kernel.status(request, "busy"))
    with pytest.raises(LocalProtocolError, match="finish_incomplete"):
        tracker.finish_incomplete()
    assert_poisoned(tracker, request)


def test_local_calls_after_done_poison() -> None:
    tracker, request, kernel = start()
    feed(tracker, kernel.ipykernel_run(request, 1))
    with pytest.raises(LocalProtocolError):
        tracker.fail(ExecutionStatus.CANCELLED)
    assert_poisoned(tracker, request)
    tracker, request, kernel = start()
    feed(tracker, kernel.ipykernel_run(request, 1))
    with pytest.raises(LocalProtocolError):
        tracker.finish_incomplete()
    assert_poisoned(tracker, request)


def test_fail_with_ok_poisons() -> None:
    tracker, request, _ = start()
    with pytest.raises(LocalProtocolError, match="failure status"):
        tracker.fail(ExecutionStatus.OK)
    assert_poisoned(tracker, request)


def test_only_execute_requests_can_be_tracked() -> None:
    with pytest.raises(LocalProtocolError, match="kernel_info_request"):
        ExecutionTracker(client_factory().kernel_info_request())


# -- remote garbage: RemoteProtocolError, tracker unchanged -------------------------------

GARBAGE = [
    ("iopub", "stream", {"name": "stdout", "text": 5}),
    ("iopub", "stream", {"name": None, "text": "x"}),
    ("iopub", "stream", {"name": "stdout"}),
    ("iopub", "display_data", {"data": "png"}),
    ("iopub", "display_data", {"data": {}, "metadata": []}),
    ("iopub", "display_data", {"data": {}, "transient": "x"}),
    ("iopub", "display_data", {"data": {}, "transient": {"display_id": 3}}),
    ("iopub", "update_display_data", {"data": {}, "transient": {}}),
    ("iopub", "execute_result", {"data": {}, "execution_count": "3"}),
    ("iopub", "execute_result", {"data": {}, "execution_count": True}),
    ("iopub", "execute_input", {"code": ["x"], "execution_count": 1}),
    ("iopub", "clear_output", {"wait": "yes"}),
    ("stdin", "input_request", {"prompt": "?", "password": 1}),
    ("stdin", "input_request", {"prompt": 3, "password": False}),
    ("iopub", "status", {"execution_state": 1}),
    ("shell", "execute_reply", {"status": "ok", "execution_count": 1.5}),
    ("shell", "execute_reply", {"status": "ok", "user_expressions": []}),
]


@pytest.mark.parametrize(("channel", "msg_type", "content"), GARBAGE)
def test_remote_garbage_raises_and_leaves_the_tracker_usable(
    channel: str, msg_type: str, content: dict[str, Any]
) -> None:
    tracker, request, kernel = start()
    tracker.receive(kernel.stream(request, "before\n"))
    with pytest.raises(RemoteProtocolError, match=msg_type):
        tracker.receive(kernel.message(channel, msg_type, content, request))
    assert state_of(tracker) is TrackerState.RUNNING
    result = finished(
        feed(tracker, [kernel.execute_reply(request), kernel.status(request, "idle")])
    )
    assert result.status is ExecutionStatus.OK
    assert result.stdout == "before\n"


def test_lenient_defaults_for_optional_fields() -> None:
    tracker, request, kernel = start()
    events = feed(
        tracker,
        [
            kernel.message("iopub", "execute_input", {}, request),
            kernel.message("iopub", "display_data", {"data": {"text/plain": "d"}}, request),
            kernel.message("iopub", "execute_result", {"data": {"image/png": "iVBOR"}}, request),
            kernel.message("iopub", "clear_output", {}, request),
            kernel.message("stdin", "input_request", {}, request),
        ],
    )
    assert events[0] == ExecuteInput(msg_id=request.msg_id, code="", execution_count=None)
    assert events[3] == ClearOutput(msg_id=request.msg_id, wait=False)
    assert isinstance(events[4], InputRequested)
    assert events[4].prompt == ""
    result = finished(
        feed(tracker, [kernel.execute_reply(request, "ok"), kernel.status(request, "idle")])
    )
    assert result.result is None
    assert result.outputs == ()


# -- output budget ------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [-1, True, 1.5, "10"])
def test_budget_rejects_bad_caps(cap: Any) -> None:
    with pytest.raises(LocalProtocolError):
        OutputBudget(max_stream_bytes=cap)


def run_streams(chunks: list[str], cap: int | None, name: str = "stdout") -> ExecutionResult:
    tracker, request, kernel = start(budget=OutputBudget(max_stream_bytes=cap))
    feed(tracker, [kernel.stream(request, chunk, name=name) for chunk in chunks])
    tracker.receive(kernel.execute_reply(request))
    return finished(tracker.finish_incomplete())


def test_budget_keeps_head_and_tail_of_consecutive_chunks() -> None:
    chunks = [f"line {i:03d}\n" for i in range(100)]  # 9 bytes each
    result = run_streams(chunks, 36, name="stderr")
    assert (
        result.stderr
        == "line 000\nline 001\n\n[... 864 bytes of output omitted ...]\nline 098\nline 099\n"
    )
    assert (result.stderr_size, result.stderr_truncated, result.truncated) == (900, True, True)
    assert (result.stdout_size, result.stdout_truncated) == (0, False)


def test_budget_not_exceeded_keeps_everything() -> None:
    result = run_streams(["a" * 10, "b" * 10], 20)
    assert (result.stdout, result.stdout_truncated, result.stdout_size) == (
        "a" * 10 + "b" * 10,
        False,
        20,
    )


def test_budget_one_huge_chunk_and_zero_cap() -> None:
    result = run_streams(["x" * 50 + "y" * 50], 10)
    assert result.stdout == "xxxxx\n[... 90 bytes of output omitted ...]\nyyyyy"
    zero = run_streams(["abc"], 0)
    assert (zero.stdout, zero.stdout_truncated, zero.stdout_size) == (
        "\n[... 3 bytes of output omitted ...]\n",
        True,
        3,
    )


def test_budget_cuts_on_character_boundaries() -> None:
    result = run_streams(["é€😀" * 20, "\ud800"], 14)  # 9 bytes per group; a lone surrogate
    head, _, tail = result.stdout.partition("\n[... ")
    assert head == "é€"  # 2 + 3 bytes fit in the 7-byte head; the emoji does not
    assert tail.endswith("\n😀\ud800")
    assert result.stdout_size == 9 * 20 + 3


def test_unlimited_budget_keeps_everything() -> None:
    chunks = ["ab" * 1000] * 50
    result = run_streams(chunks, None)
    assert (result.stdout, result.stdout_truncated) == ("".join(chunks), False)


def test_ten_megabytes_keep_memory_bounded_by_the_cap() -> None:
    cap = 64 * 1024
    tracker, request, kernel = start(budget=OutputBudget(max_stream_bytes=cap))
    chunk = "0123456789abcdef" * 64  # 1 KiB
    tracemalloc.start()
    try:
        for _ in range(10 * 1024):
            tracker.receive(kernel.stream(request, chunk))
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * cap
    tracker.receive(kernel.execute_reply(request))
    result = finished(tracker.finish_incomplete())
    assert result.stdout_size == 10 * 1024 * 1024
    assert result.stdout_truncated
    kept = result.stdout.encode().replace(b"\n[... 10420224 bytes of output omitted ...]\n", b"")
    assert len(kept) == cap
    assert current < 4 * cap


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.text(st.characters(codec="utf-8"), max_size=40), max_size=20),
    cap=st.integers(min_value=0, max_value=120),
)
def test_budget_head_is_a_prefix_and_tail_a_suffix(chunks: list[str], cap: int) -> None:
    full = "".join(chunks)
    size = len(full.encode())
    result = run_streams(chunks, cap)
    assert result.stdout_size == size
    if size <= cap:
        assert (result.stdout, result.stdout_truncated) == (full, False)
        return
    assert result.stdout_truncated
    head, marker, tail = result.stdout.partition("\n[... ")
    assert marker
    assert full.startswith(head)
    tail = tail.split(" bytes of output omitted ...]\n", 1)[1]
    assert full.endswith(tail)
    assert len(head.encode()) <= cap - cap // 2
    assert len(tail.encode()) <= cap // 2
    assert len(head.encode()) + len(tail.encode()) >= cap - 6  # at most 3 bytes lost per cut


# -- kernels that publish after idle (settle) ----------------------------------------------


@pytest.mark.parametrize("reply_first", [True, False])
def test_a_settling_tracker_takes_output_after_reply_and_idle(reply_first: bool) -> None:
    request = client_factory().execute_request("Deno.jupyter.html`<b>x</b>`")
    tracker, kernel = ExecutionTracker(request, settle=True), FakeKernel()
    reply, idle = kernel.execute_reply(request), kernel.status(request, "idle")
    events = feed(tracker, [kernel.status(request, "busy"), kernel.execute_input(request, 1)])
    events += feed(tracker, [reply, idle] if reply_first else [idle, reply])
    assert not any(isinstance(event, ExecutionFinished) for event in events)
    assert (state_of(tracker), tracker.settling, tracker.awaiting_grace) == (
        TrackerState.SETTLING,
        True,
        True,
    )
    late = feed(tracker, [kernel.execute_result(request, 1, "x"), kernel.stream(request, "o\n")])
    assert [type(event) for event in late] == [ExecuteResult, StreamText]
    assert feed(tracker, [reply, idle]) == []  # duplicates change nothing
    result = finished(tracker.finish_incomplete())
    assert (result.status, result.result, result.stdout) == (ExecutionStatus.OK, "x", "o\n")
    assert tracker.done


def test_a_settling_tracker_can_still_fail_and_refuses_a_second_finish() -> None:
    request = client_factory().execute_request("x")
    tracker, kernel = ExecutionTracker(request, settle=True), FakeKernel()
    feed(tracker, [kernel.execute_reply(request), kernel.status(request, "idle")])
    result = finished(tracker.fail(ExecutionStatus.TIMED_OUT, detail="late"))
    assert result.status is ExecutionStatus.TIMED_OUT
    with pytest.raises(LocalProtocolError):
        tracker.finish_incomplete()


def test_without_settle_reply_and_idle_finish_at_once() -> None:
    tracker, request, kernel = start()
    events = feed(tracker, [kernel.execute_reply(request), kernel.status(request, "idle")])
    assert finished(events).ok
    assert not tracker.settling


@pytest.mark.parametrize(
    ("implementation", "late"),
    [("Deno kernel", True), ("ipython", False), ("xeus-python", False), (None, False), (7, False)],
)
def test_publishes_after_idle_names_deno(implementation: object, late: bool) -> None:
    assert publishes_after_idle({"implementation": implementation}) is late
    assert publishes_after_idle({}) is False


# -- the state machine under any interleaving -----------------------------------------------


class TrackerMachine(RuleBasedStateMachine):
    """Kernel inputs and local calls in any order; the invariants of the tracker hold."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker, self.request, self.kernel = start()
        self.other = client_factory(prefix="other").execute_request("x")
        self.log: list[ExecutionEvent] = []
        self.reply_seen = self.idle_seen = self.done = self.poisoned = False

    def deliver(self, message: Message) -> None:
        if self.poisoned:
            with pytest.raises(LocalProtocolError):
                self.tracker.receive(message)
            return
        events = self.tracker.receive(message)
        if self.done:
            assert events == []
        self.log.extend(events)

    def local(self, call: str, legal: bool, *args: Any) -> None:
        if self.poisoned or not legal:
            with pytest.raises(LocalProtocolError):
                getattr(self.tracker, call)(*args)
            self.poisoned = True
            return
        events = getattr(self.tracker, call)(*args)
        assert len(events) == 1
        assert isinstance(events[0], ExecutionFinished)
        self.log.extend(events)
        self.done = True

    @rule(state=st.sampled_from(["busy", "starting"]))
    def status(self, state: str) -> None:
        self.deliver(self.kernel.status(self.request, state))

    @rule()
    def idle(self) -> None:
        self.deliver(self.kernel.status(self.request, "idle"))
        if not self.poisoned:
            self.done = self.done or self.reply_seen
            self.idle_seen = True

    @rule(status=st.sampled_from(["ok", "error", "abort", "aborted", "?"]))
    def reply(self, status: str) -> None:
        self.deliver(self.kernel.execute_reply(self.request, status))
        if not self.poisoned:
            self.done = self.done or self.idle_seen
            self.reply_seen = True

    @rule(text=st.text(max_size=5), name=st.sampled_from(["stdout", "stderr"]))
    def stream(self, text: str, name: str) -> None:
        self.deliver(self.kernel.stream(self.request, text, name))

    @rule(kind=st.sampled_from(["display", "clear", "error", "notice", "input"]))
    def output(self, kind: str) -> None:
        k, r = self.kernel, self.request
        message = {
            "display": k.display_data(r, {"text/plain": "d"}, display_id="i"),
            "clear": k.clear_output(r, wait=True),
            "error": k.error(r, "E", "v"),
            "notice": k.rate_limit_notice(r),
            "input": k.input_request(r, "?"),
        }[kind]
        self.deliver(message)

    @rule(kind=st.sampled_from(["stream", "display", "reply", "idle", "result"]))
    def other_parent(self, kind: str) -> None:
        k, o = self.kernel, self.other
        message = {
            "stream": k.stream(o, "OTHER"),
            "display": k.display_data(o, {"text/plain": "OTHER"}),
            "reply": k.execute_reply(o, "error", ename="OTHER"),
            "idle": k.status(o, "idle"),
            "result": k.execute_result(o, 1, "OTHER"),
        }[kind]
        self.deliver(message)

    @rule(status=st.sampled_from(FAILURES))
    def fail(self, status: ExecutionStatus) -> None:
        self.local("fail", not self.done, status)

    @rule()
    def fail_ok(self) -> None:
        self.local("fail", False, ExecutionStatus.OK)

    @rule()
    def finish_incomplete(self) -> None:
        legal = not self.done and self.reply_seen != self.idle_seen
        self.local("finish_incomplete", legal)

    @precondition(lambda self: self.done and not self.poisoned)
    @rule()
    def late_output(self) -> None:
        self.deliver(self.kernel.stream(self.request, "late"))

    @invariant()
    def finished_exactly_once_and_last(self) -> None:
        finishes = [i for i, e in enumerate(self.log) if isinstance(e, ExecutionFinished)]
        assert len(finishes) == (1 if self.done else 0)
        if finishes:
            assert finishes[0] == len(self.log) - 1

    @invariant()
    def state_matches_the_model(self) -> None:
        if self.poisoned:
            assert state_of(self.tracker) is TrackerState.ERROR
            return
        assert self.tracker.done is self.done
        assert self.tracker.awaiting_grace is (not self.done and self.reply_seen != self.idle_seen)

    @invariant()
    def other_parents_never_leak(self) -> None:
        assert all(e.msg_id == self.request.msg_id for e in self.log)
        if self.done and not self.poisoned:
            result = self.tracker.result
            assert "OTHER" not in result.stdout + result.stderr
            assert all("OTHER" not in str(o.data) for o in result.outputs)
            assert result.error is None or result.error.ename != "OTHER"


@pytest.mark.parametrize(
    ("result", "described"),
    [
        (ExecutionResult(msg_id="m", status=ExecutionStatus.OK), "ok"),
        (
            ExecutionResult(
                msg_id="m", status=ExecutionStatus.ERROR, error=ErrorInfo(ename="E", evalue="v")
            ),
            "E: v",
        ),
        (
            ExecutionResult(msg_id="m", status=ExecutionStatus.TIMED_OUT, detail="after 5 s"),
            "timed out: after 5 s",
        ),
        (
            ExecutionResult(msg_id="m", status=ExecutionStatus.OK, output_dropped=True),
            "ok (the server dropped some output: rate limit exceeded)",
        ),
    ],
    ids=["ok", "error", "timed-out", "dropped"],
)
def test_results_describe_themselves_and_raise_unless_ok(
    result: ExecutionResult, described: str
) -> None:
    assert result.describe() == described
    if result.ok:
        assert result.raise_for_error() is result
    else:
        with pytest.raises(ExecutionFailed, match=re.escape(described)) as caught:
            result.raise_for_error()
        assert caught.value.result is result


TestTrackerMachine = TrackerMachine.TestCase
TestTrackerMachine.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)


def test_note_lost_messages_flags_only_a_finished_result() -> None:
    kernel = FakeKernel()
    request = client_factory().execute_request("print(1)")
    tracker = ExecutionTracker(request)
    with pytest.raises(LocalProtocolError, match="not finished"):
        tracker.note_lost_messages(2)
    for message in kernel.ipykernel_run(request, 1, stdout="1\n"):
        tracker.receive(message)
    assert tracker.result.ok
    flagged = tracker.note_lost_messages(2)
    assert flagged is tracker.result
    assert (flagged.status, flagged.output_dropped, flagged.ok) == (ExecutionStatus.OK, True, False)
    assert flagged.detail == "2 kernel messages were lost while reconnecting"
    assert flagged.describe() == "ok: 2 kernel messages were lost while reconnecting"
