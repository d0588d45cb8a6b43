"""One execution's life on a Session: waiting, deadlines, grace periods and recovery.

Strategy: the reader task routes this execution's events into a memory stream; this
object drains it while keeping three clocks:

* the total deadline (``timeout``): on expiry, recover with status ``TIMED_OUT``;
* the completion grace: once the tracker has seen only one of execute_reply and
  ``idle`` for ``completion_grace`` seconds, finish with what it has (kernels exist
  that skip one of them);
* the interrupt grace: after a REST interrupt the kernel has ``interrupt_grace``
  seconds to finish the request, else it is restarted.

Recovery (deadline, refused ``input()``, cancellation, an abandoned stream) never
raises over the partial result: it interrupts, waits, restarts if needed, and reports
what it did in ``result.recovery``. Cancellation runs the same recovery shielded and
re-raises. If the interrupt finds the kernel gone from the server (deleted by another
client, culled: Jupyter Server keeps the WebSocket open and says nothing), the session
gives up: the execution ends ``CONNECTION_LOST`` and later calls raise
``KernelUnavailable``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import anyio
import attrs

from .errors import JupyterInterpError, KernelNotFound, KernelUnavailable
from .protocol.events import ExecutionEvent, ExecutionFinished, InputRequested
from .protocol.result import ExecutionStatus, Recovery

if TYPE_CHECKING:
    from anyio.abc import ObjectReceiveStream

    from .protocol.execution import ExecutionTracker
    from .session import Session

__all__ = ["ExecutionRun"]

logger = logging.getLogger("jupyter_interp.session")


class ExecutionRun:
    """Drives one registered execution to its ``ExecutionFinished``."""

    def __init__(
        self,
        session: Session,
        tracker: ExecutionTracker,
        receive: ObjectReceiveStream[ExecutionEvent],
        *,
        timeout: float | None,
    ) -> None:
        self._session = session
        self._tracker = tracker
        self._receive = receive
        self._timeout = timeout
        self._config = session._config
        self._input_prompt: str | None = None

    async def events(self) -> AsyncGenerator[ExecutionEvent, None]:
        """Yield the execution's events; the last one is always ``ExecutionFinished``."""
        start = anyio.current_time()
        deadline = math.inf if self._timeout is None else start + self._timeout
        grace_until: float | None = None
        try:
            while True:
                now = anyio.current_time()
                if self._tracker.awaiting_grace:
                    grace_until = grace_until or now + self._config.completion_grace
                    if now >= grace_until:
                        yield self._finalize(self._finish_incomplete())
                        return
                if now >= deadline:
                    yield await self._recover(ExecutionStatus.TIMED_OUT, self._deadline_detail())
                    return
                wake = min(deadline, now + self._config.completion_grace)
                event: ExecutionEvent | None = None
                # only the receive is timed: never yield (or recover) inside the scope,
                # or the consumer's code would run under our deadline
                with anyio.move_on_after(max(wake - now, 0)):
                    event = await self._receive.receive()
                if event is None:
                    continue
                if isinstance(event, ExecutionFinished):
                    yield self._finalize(event)
                    return
                if isinstance(event, InputRequested):
                    finished = await self._on_input(event)
                    if finished is not None:
                        yield finished
                        return
                yield event
        except BaseException:
            if not self._tracker.done:
                with anyio.CancelScope(shield=True):
                    await self._recover(
                        ExecutionStatus.CANCELLED, "the caller cancelled the execution"
                    )
            raise

    def _deadline_detail(self) -> str:
        return f"the execution exceeded its {self._timeout:g} s deadline"

    def _finish_incomplete(self) -> ExecutionFinished:
        for event in self._session._conn.finish_incomplete(self._tracker.msg_id):
            if isinstance(event, ExecutionFinished):
                return event
        raise AssertionError("finish_incomplete produced no ExecutionFinished")

    def _finalize(self, finished: ExecutionFinished) -> ExecutionFinished:
        """Add what only the session knows: generation, refused input."""
        result = attrs.evolve(finished.result, generation=self._session.generation)
        refused = result.error is not None and result.error.ename == "StdinNotImplementedError"
        if self._input_prompt is not None or refused:
            prompt = f" ({self._input_prompt!r})" if self._input_prompt else ""
            result = attrs.evolve(
                result,
                status=ExecutionStatus.INPUT_REQUIRED,
                detail=f"the code asked for input{prompt} and the stdin policy does not answer it",
            )
        return ExecutionFinished(msg_id=finished.msg_id, result=result)

    async def _on_input(self, event: InputRequested) -> ExecutionFinished | None:
        answer = self._config.stdin.answer
        session = self._session
        if answer is not None:
            reply = session._link.factory.input_reply(answer, parent=event.request)
            await session._send(reply)
            return None
        self._input_prompt = event.prompt or ""
        finished = await self._recover(ExecutionStatus.INPUT_REQUIRED, "")
        return self._finalize(finished)

    async def _recover(self, status: ExecutionStatus, detail: str) -> ExecutionFinished:
        """Interrupt; wait ``interrupt_grace``; restart if the kernel is still busy."""
        session = self._session
        try:
            await session._link.interrupt()
        except KernelNotFound as exc:
            return await self._kernel_gone(detail or status.value, exc)
        except JupyterInterpError as exc:
            logger.warning("interrupting kernel %s failed: %s", session.kernel_id, exc)
        finished: ExecutionFinished | None = None
        with anyio.move_on_after(self._config.interrupt_grace):
            finished = await self._drain_until_finished()
        if finished is None and self._tracker.awaiting_grace:
            finished = self._finish_incomplete()
        recovery = Recovery.INTERRUPTED
        if finished is None:
            recovery = Recovery.RESTARTED
            finished = await self._restart(detail or status.value)
        result = finished.result
        if status is not ExecutionStatus.INPUT_REQUIRED:
            result = attrs.evolve(
                result,
                status=status,
                recovery=recovery,
                detail=f"{detail}; the kernel was {recovery.value}",
                generation=session.generation,
            )
        else:
            result = attrs.evolve(result, recovery=recovery)
        return ExecutionFinished(msg_id=finished.msg_id, result=result)

    async def _kernel_gone(self, detail: str, exc: KernelNotFound) -> ExecutionFinished:
        """The server no longer knows the kernel: end the session, then this execution."""
        session = self._session
        gone = KernelUnavailable(f"kernel {session.kernel_id} is gone from the server: {exc}")
        await session._give_up(gone)  # fails this execution with CONNECTION_LOST
        finished = await self._drain_until_finished()
        result = attrs.evolve(
            finished.result, detail=f"{detail}; {gone}", generation=session.generation
        )
        return ExecutionFinished(msg_id=finished.msg_id, result=result)

    async def _drain_until_finished(self) -> ExecutionFinished:
        while True:
            event = await self._receive.receive()
            if isinstance(event, ExecutionFinished):
                return event

    async def _restart(self, reason: str) -> ExecutionFinished:
        """Restart the kernel; this execution ends as failed by the restart."""
        session = self._session
        finished: list[ExecutionFinished] = []
        try:
            finished = await session._restart_kernel(f"restarted after: {reason}")
        except JupyterInterpError as exc:
            logger.warning("restarting kernel %s failed: %s", session.kernel_id, exc)
        mine = [e for e in finished if e.msg_id == self._tracker.msg_id]
        if mine:
            return mine[0]
        # it finished on its own just before the restart: its event is in our stream
        return await self._drain_until_finished()
