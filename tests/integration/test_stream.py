"""Session.stream against a real ipykernel: typed events, in order, as they happen.

The tests share one kernel per backend (``shared_session``); each uses names of its own.
"""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from jupyter_interp.protocol.events import (
    ClearOutput,
    DisplayData,
    DisplayUpdate,
    ExecuteInput,
    ExecuteResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionFinished,
    StreamText,
)
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, Recovery
from jupyter_interp.session import Session

from .shared_kernel import module_backend, shared_kernel  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 30


async def _collect(session: Session, code: str, **options: float) -> list[ExecutionEvent]:
    events: list[ExecutionEvent] = []
    async with aclosing(session.stream(code, **options)) as stream:  # type: ignore[arg-type]
        async for event in stream:
            events.append(event)
    return events


def _finished(events: list[ExecutionEvent]) -> ExecutionResult:
    assert isinstance(events[-1], ExecutionFinished)
    assert sum(isinstance(e, ExecutionFinished) for e in events) == 1
    return events[-1].result


async def test_events_arrive_in_order_and_finished_is_last(session: Session) -> None:
    code = (
        "import sys\n"
        "from IPython.display import HTML, display\n"
        "print('one', flush=True)\n"
        "display(HTML('<i>two</i>'))\n"
        "print('three', file=sys.stderr, flush=True)\n"
        "'four'"
    )
    with anyio.fail_after(_TIMEOUT):
        events = await _collect(session, code)

    assert [type(e) for e in events] == [
        ExecuteInput,
        StreamText,
        DisplayData,
        StreamText,
        ExecuteResult,
        ExecutionFinished,
    ]
    echo, out, display, err, value, _ = events
    assert isinstance(echo, ExecuteInput)
    assert echo.code == code
    assert isinstance(out, StreamText)
    assert (out.name, out.text) == ("stdout", "one\n")
    assert isinstance(display, DisplayData)
    assert display.data["text/html"] == "<i>two</i>"
    assert isinstance(err, StreamText)
    assert (err.name, err.text) == ("stderr", "three\n")
    assert isinstance(value, ExecuteResult)
    assert value.data["text/plain"] == "'four'"
    result = _finished(events)
    assert result.ok
    assert result.stdout == "one\n"
    assert result.stderr == "three\n"
    assert result.result == "'four'"
    assert value.execution_count == echo.execution_count == result.execution_count
    assert {e.msg_id for e in events} == {result.msg_id}


async def test_stdout_chunks_arrive_before_the_end(session: Session) -> None:
    code = (
        "import time\nfor i in range(4):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.3)"
    )
    arrivals: list[tuple[float, ExecutionEvent]] = []
    with anyio.fail_after(_TIMEOUT):
        async with aclosing(session.stream(code)) as stream:
            async for event in stream:
                arrivals.append((anyio.current_time(), event))

    ticks = [(at, e) for at, e in arrivals if isinstance(e, StreamText)]
    finished_at, finished = arrivals[-1]
    assert isinstance(finished, ExecutionFinished)
    assert "".join(e.text for _, e in ticks) == "".join(f"tick {i}\n" for i in range(4))
    assert finished.result.stdout == "tick 0\ntick 1\ntick 2\n" + "tick 3\n"
    assert len(ticks) >= 3  # one chunk per flush, not one blob at the end
    first_at = ticks[0][0]
    assert finished_at - first_at >= 0.6, "the first chunk arrived only at the end"


async def test_an_error_arrives_as_an_event(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        events = await _collect(session, "print('partial', flush=True)\nraise KeyError('k')")

    errors = [e for e in events if isinstance(e, ExecutionError)]
    assert len(errors) == 1
    assert errors[0].error.ename == "KeyError"
    assert "\x1b" not in "".join(errors[0].error.traceback)
    result = _finished(events)
    assert result.status is ExecutionStatus.ERROR
    assert result.error == errors[0].error
    assert result.stdout == "partial\n"


async def test_clear_output_events_carry_wait(session: Session) -> None:
    code = (
        "from IPython.display import clear_output\n"
        "print('x', flush=True)\n"
        "clear_output(wait=True)\n"
        "clear_output()\n"
    )
    with anyio.fail_after(_TIMEOUT):
        events = await _collect(session, code)

    clears = [e for e in events if isinstance(e, ClearOutput)]
    assert [c.wait for c in clears] == [True, False]
    assert _finished(events).stdout == "x\n"  # clearing never drops the stream log


async def test_update_of_an_earlier_display_is_streamed(session: Session) -> None:
    with anyio.fail_after(_TIMEOUT):
        shown = await session.execute(
            "from IPython.display import HTML, display\n"
            "stream_handle = display(HTML('v1'), display_id='stream-progress')\n"
        )
        events = await _collect(session, "stream_handle.update(HTML('v2'))")

    (output,) = shown.outputs
    assert output.display_id == "stream-progress"
    updates = [e for e in events if isinstance(e, DisplayUpdate)]
    assert len(updates) == 1
    assert updates[0].display_id == "stream-progress"
    assert updates[0].data["text/html"] == "v2"
    # the updated output belongs to the earlier execution: this one shows nothing new
    assert _finished(events).outputs == ()


async def test_a_stream_deadline_ends_with_a_timed_out_finish(session: Session) -> None:
    code = "import time\nprint('started', flush=True)\ntime.sleep(30)\nstream_slept = True"
    with anyio.fail_after(_TIMEOUT):
        events = await _collect(session, code, timeout=1.5)
        after = await session.execute("'stream_slept' in globals()")

    # streamed before the deadline (ipykernel may send ``print``'s end as its own message)
    texts = [e.text for e in events if isinstance(e, StreamText) and e.name == "stdout"]
    assert "".join(texts) == "started\n"
    result = _finished(events)
    assert result.status is ExecutionStatus.TIMED_OUT
    assert result.recovery is Recovery.INTERRUPTED
    assert result.stdout.startswith("started\n")
    assert after.result == "False"


async def test_leaving_a_stream_early_interrupts_the_kernel(session: Session) -> None:
    code = (
        "import time\n"
        "for i in range(100):\n"
        "    print(i, flush=True)\n"
        "    time.sleep(0.1)\n"
        "left_early_finished = True"
    )
    seen: list[StreamText] = []
    with anyio.fail_after(_TIMEOUT):
        async with aclosing(session.stream(code)) as stream:
            async for event in stream:
                if isinstance(event, StreamText):
                    seen.append(event)
                    break
        start = anyio.current_time()
        after = await session.execute("'left_early_finished' in globals()")
        waited = anyio.current_time() - start

    assert seen[0].text.startswith("0")
    assert after.ok
    assert after.result == "False"  # the loop was interrupted, not left to run 10 s
    assert waited < 5


async def test_a_slow_consumer_is_not_cut_short(session: Session) -> None:
    # the consumer's work between events must not run under the stream's internal
    # timers (completion_grace is 1 s in the test settings)
    code = "print('a', flush=True)\nprint('b', flush=True)"
    texts: list[str] = []
    with anyio.fail_after(_TIMEOUT):
        async with aclosing(session.stream(code)) as stream:
            async for event in stream:
                if isinstance(event, StreamText):
                    texts.append(event.text)
                    start = anyio.current_time()
                    await anyio.sleep(1.5)
                    assert anyio.current_time() - start >= 1.5
                elif isinstance(event, ExecutionFinished):
                    assert event.result.ok

    assert "".join(texts) == "a\nb\n"


# trio warns when the garbage collector has to close an abandoned async generator:
# that is precisely the path under test
@pytest.mark.filterwarnings("ignore:Async generator .* was garbage collected:ResourceWarning")
async def test_breaking_out_without_aclosing_still_frees_the_session(session: Session) -> None:
    code = (
        "import time\n"
        "for i in range(100):\n"
        "    print(i, flush=True)\n"
        "    time.sleep(0.1)\n"
        "abandoned_finished = True"
    )
    with anyio.fail_after(_TIMEOUT):
        async for event in session.stream(code):
            if isinstance(event, StreamText):
                break  # the generator is left for the garbage collector to close
        after = await session.execute("print('after'); 'abandoned_finished' in globals()")

    assert after.ok
    assert after.stdout == "after\n"
    assert after.result == "False"  # the collector's close interrupted the kernel
