"""ExecutionTracker output handling: rich outputs and display updates, the server's
rate-limit notice, the output budget, and kernels that publish after idle.

Messages are built by ``kernel_messages.FakeKernel`` as ipykernel sends them; the
helpers (``start``, ``feed``, ``finished``) are ``test_execution``'s.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.protocol.budget import OutputBudget
from jupyter_interp.protocol.events import (
    ClearOutput,
    DisplayData,
    DisplayUpdate,
    ExecuteResult,
    ExecutionFinished,
    OutputDropped,
    StreamText,
)
from jupyter_interp.protocol.execution import ExecutionTracker, TrackerState
from jupyter_interp.protocol.kernel_output import publishes_after_idle
from jupyter_interp.protocol.result import (
    ExecutionResult,
    ExecutionStatus,
)
from tests.protocol.kernel_messages import RATE_NOTICES, FakeKernel, client_factory

from .test_execution import (
    feed,
    finished,
    start,
    state_of,
)

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
