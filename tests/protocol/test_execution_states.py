"""ExecutionTracker state handling: local misuse poisons, remote garbage does not, and
the state machine holds under any interleaving of kernel messages (hypothesis).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol.events import (
    ClearOutput,
    ExecuteInput,
    ExecutionEvent,
    ExecutionFinished,
    InputRequested,
)
from jupyter_interp.protocol.execution import ExecutionTracker, TrackerState
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.result import (
    ErrorInfo,
    ExecutionFailed,
    ExecutionResult,
    ExecutionStatus,
    Recovery,
)
from tests.protocol.kernel_messages import FakeKernel, client_factory

from .test_execution import (
    FAILURES,
    feed,
    finished,
    start,
    state_of,
)

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
