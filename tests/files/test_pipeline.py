"""run_pipelined: bounded executions in flight, settled in order, failures never cancel."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import anyio
import anyio.lowlevel
import pytest

from jupyter_interp.errors import FileTransferError
from jupyter_interp.files.pipeline import ChunkRequest, run_pipelined
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus

pytestmark = pytest.mark.anyio


class FakeKernel:
    """Runs "executions" that take ``delays[code]`` seconds, recording what happens."""

    def __init__(self, delays: Mapping[str, float], failing: str | None = None) -> None:
        self.delays = delays
        self.failing = failing
        self.started: list[str] = []
        self.buffers: list[tuple[bytes, ...]] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def execute(
        self,
        code: str,
        expressions: Mapping[str, str],
        buffers: tuple[bytes, ...],
        accepted: anyio.Event,
    ) -> ExecutionResult:
        await (
            anyio.lowlevel.checkpoint()
        )  # the task that runs this may be scheduled after later ones
        self.started.append(code)
        self.buffers.append(buffers)
        accepted.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.sleep(self.delays[code])
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(code)
            raise
        finally:
            self.in_flight -= 1
        self.finished.append(code)
        if code == self.failing:
            raise FileTransferError(f"{code} failed")
        return ExecutionResult(msg_id=code, status=ExecutionStatus.OK, user_expressions=expressions)


async def _no_nudge() -> None:
    raise AssertionError("a request the fake kernel takes at once was nudged")


async def _requests(
    codes: list[str], settled: list[str], closed: list[bool]
) -> AsyncGenerator[ChunkRequest, None]:
    async def settle(result: ExecutionResult) -> None:
        settled.append(result.msg_id)

    try:
        for code in codes:
            yield code, {"n": code}, (code.encode(),), settle
    finally:
        closed.append(True)


async def test_results_settle_in_order_with_at_most_window_in_flight() -> None:
    codes = [f"c{i}" for i in range(8)]
    kernel = FakeKernel({code: 0.01 * ((i * 7) % 5) for i, code in enumerate(codes)})
    settled: list[str] = []
    closed: list[bool] = []
    with anyio.fail_after(10):
        await run_pipelined(
            kernel.execute, _requests(codes, settled, closed), window=3, nudge=_no_nudge
        )
    assert kernel.started == codes  # reached the kernel in order, whatever the scheduler did
    assert kernel.buffers == [(code.encode(),) for code in codes]  # each with its own data
    assert settled == codes
    assert kernel.most_in_flight == 3
    assert closed == [True]


async def test_a_failure_stops_sending_drains_the_rest_and_is_raised_alone() -> None:
    codes = [f"c{i}" for i in range(6)]
    delays = dict.fromkeys(codes, 0.01)
    delays["c0"] = 0.05  # c1 fails while c0 runs: nothing may be sent after that
    delays["c2"] = 0.2  # still running when c1 fails: it must finish, not be cancelled
    kernel = FakeKernel(delays, failing="c1")
    settled: list[str] = []
    closed: list[bool] = []
    with anyio.fail_after(10), pytest.raises(FileTransferError, match="c1 failed"):
        await run_pipelined(
            kernel.execute, _requests(codes, settled, closed), window=3, nudge=_no_nudge
        )
    assert settled == ["c0"]
    assert kernel.started == ["c0", "c1", "c2"]
    assert sorted(kernel.finished) == ["c0", "c1", "c2"]  # drained, not cancelled
    assert kernel.cancelled == []
    assert closed == [True]


async def test_a_failing_settle_is_raised_after_the_flights_land() -> None:
    kernel = FakeKernel({"a": 0.01, "b": 0.05, "c": 0.01})

    async def requests() -> AsyncGenerator[ChunkRequest, None]:
        async def refuse(result: ExecutionResult) -> None:
            raise FileTransferError(f"bad reply to {result.msg_id}")

        async def accept(result: ExecutionResult) -> None:
            pass

        yield "a", {}, (), refuse
        yield "b", {}, (), accept
        yield "c", {}, (), accept

    with anyio.fail_after(10), pytest.raises(FileTransferError, match="bad reply to a"):
        await run_pipelined(kernel.execute, requests(), window=2, nudge=_no_nudge)
    assert kernel.started == ["a", "b"]
    assert kernel.finished == ["a", "b"]


async def test_cancelling_the_caller_cancels_the_flights() -> None:
    kernel = FakeKernel({"a": 5.0, "b": 5.0})
    settled: list[str] = []
    closed: list[bool] = []
    with anyio.fail_after(10):
        with anyio.move_on_after(0.1) as scope:
            await run_pipelined(
                kernel.execute, _requests(["a", "b"], settled, closed), window=2, nudge=_no_nudge
            )
    assert scope.cancelled_caught
    assert sorted(kernel.cancelled) == ["a", "b"]
    assert settled == []
    assert closed == [True]


async def test_a_request_left_unread_while_the_kernel_is_free_is_nudged() -> None:
    # "b" reaches a kernel that leaves it unread (ipykernel 7.0-7.3) until a nudge
    nudged = anyio.Event()
    kernel = FakeKernel({"a": 0.01, "b": 0.01})
    plain = kernel.execute

    async def execute(
        code: str, expressions: Mapping[str, str], buffers: tuple[bytes, ...], accepted: anyio.Event
    ) -> ExecutionResult:
        if code == "b":
            await nudged.wait()
        return await plain(code, expressions, buffers, accepted)

    async def nudge() -> None:
        nudged.set()

    settled: list[str] = []
    closed: list[bool] = []
    with anyio.fail_after(10):
        await run_pipelined(execute, _requests(["a", "b"], settled, closed), window=2, nudge=nudge)
    assert nudged.is_set()
    assert settled == ["a", "b"]
