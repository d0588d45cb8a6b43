"""Pipelined chunk executions: the next request goes out before the previous reply.

Strategy: a kernel runs execute_requests one at a time, in the order they arrive, so a
transfer may send chunk N+1 while chunk N is still running. Then the client's work
(encoding, sending, decoding, hashing), the server's relaying and the kernel's work
overlap instead of taking turns. ``run_pipelined`` keeps up to ``window`` executions in
flight, each in its own task of a task group it owns, and settles them strictly in
submission order.

Invariants:

* Requests reach the kernel in submission order: task start order is not guaranteed
  (trio randomizes it), so execution N+1 starts only once execution N signalled that
  the kernel took it (its ``accepted`` event: the first event the kernel sent for it),
  or ended.
* A request is never left unread for long: once every earlier one has ended (the
  kernel, serial, is free for it) and it still has no event ``_NUDGE_AFTER`` seconds
  later, ``nudge`` is called (the Session opens and closes a second WebSocket), again
  at a growing interval, until the request is taken (the nudger is stopped at its
  pause, or cancelled mid-nudge: see ``io.stop_signal``). ipykernel 7.0-7.3
  can leave a request that arrives while it sends a reply unread until a new
  connection reaches its shell socket (ipykernel issue 1554); without the nudge the
  transfer would wait for ever. A spurious nudge costs one WebSocket opening.
* Results are settled in order, one at a time, by the caller's ``settle`` callback.
* At most ``window`` requests are in flight, so memory stays bounded by ``window``
  chunks.
* A failure (of an execution or of ``settle``) never cancels an execution in flight:
  cancelling one would interrupt the kernel. No further request is sent, the ones in
  flight are drained, then the first failure is raised as itself (not in an exception
  group). Cancellation of the caller still cancels everything, as usual.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING

import anyio

from ..io.stop_signal import StopSignal

if TYPE_CHECKING:
    from ..protocol.result import ExecutionResult

__all__ = ["ChunkRequest", "run_pipelined"]

#: The code, the user expressions, the binary buffers, and what to do with the result
#: once it is settled.
ChunkRequest = tuple[
    str, Mapping[str, str], tuple[bytes, ...], Callable[["ExecutionResult"], Awaitable[None]]
]
#: Runs one execution; sets the event once the kernel is known to have taken it.
Execute = Callable[
    [str, Mapping[str, str], tuple[bytes, ...], anyio.Event], Awaitable["ExecutionResult"]
]


#: seconds a request may go without an event while the kernel is free, before a nudge
_NUDGE_AFTER = 0.25
_NUDGE_MAX = 4.0


class _InFlight:
    """One execution running in the pipeline's task group."""

    def __init__(self, settle: Callable[[ExecutionResult], Awaitable[None]]) -> None:
        self.settle = settle
        self._accepted = anyio.Event()
        self._done = anyio.Event()
        self._result: ExecutionResult | None = None
        self._error: Exception | None = None

    async def run(
        self,
        execute: Execute,
        code: str,
        expressions: Mapping[str, str],
        buffers: tuple[bytes, ...],
    ) -> None:
        try:
            self._result = await execute(code, expressions, buffers, self._accepted)
        except Exception as exc:  # kept for the settling task: siblings must not be cancelled
            self._error = exc
        finally:
            self._accepted.set()
            self._done.set()

    async def accepted(
        self, earlier: _InFlight | None, nudge: Callable[[], Awaitable[None]]
    ) -> None:
        """Wait until the kernel took this request; nudge it while it seems unread.

        ``earlier``: the execution submitted just before, which the kernel runs first.
        """
        nudger = StopSignal()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._nudge_while_unread, earlier, nudge, nudger)
            await self._accepted.wait()
            if not nudger.stop():  # a pausing nudger ends by itself (``io.stop_signal``)
                tg.cancel_scope.cancel()

    async def _nudge_while_unread(
        self,
        earlier: _InFlight | None,
        nudge: Callable[[], Awaitable[None]],
        signal: StopSignal,
    ) -> None:
        if earlier is not None:
            await earlier.finished()
        wait = _NUDGE_AFTER
        while await signal.pause(wait):
            await nudge()  # cancelled if the request is taken meanwhile
            wait = min(wait * 2, _NUDGE_MAX)

    @property
    def failed(self) -> bool:
        return self._error is not None

    async def outcome(self) -> ExecutionResult:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    async def finished(self) -> None:
        await self._done.wait()


async def run_pipelined(
    execute: Execute,
    requests: AsyncGenerator[ChunkRequest, None],
    *,
    window: int,
    nudge: Callable[[], Awaitable[None]],
) -> None:
    """Run every request with up to ``window`` in flight; settle results in order.

    Args:
        execute: runs one execution (the Session's execution lock is held by the caller)
            and sets the event it is given once the kernel took the request.
        requests: produced lazily, so a request is built only when there is room for it;
            closed before this returns.
        window: how many executions may be in flight (1 means one at a time).
        nudge: makes the kernel read its requests again (see the module docstring).

    Raises:
        Whatever the first failing execution or ``settle`` raised.
    """
    pending: deque[_InFlight] = deque()
    failure: Exception | None = None
    async with anyio.create_task_group() as tg, aclosing(requests):
        try:
            async for code, expressions, buffers, settle in requests:
                if len(pending) >= window:
                    oldest = pending.popleft()
                    await oldest.settle(await oldest.outcome())
                if any(flight.failed for flight in pending):
                    break  # send nothing after a known failure; it is raised below
                flight = _InFlight(settle)
                earlier = pending[-1] if pending else None
                pending.append(flight)
                tg.start_soon(flight.run, execute, code, expressions, buffers)
                await flight.accepted(earlier, nudge)  # keeps the requests in order
            while pending:
                oldest = pending.popleft()
                await oldest.settle(await oldest.outcome())
        except Exception as exc:
            failure = exc
            for flight in pending:  # drain, never cancel: the kernel would be interrupted
                await flight.finished()
    if failure is not None:  # raised here, outside the task group: not as an exception group
        raise failure
