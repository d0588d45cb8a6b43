"""One execution's life on a Session: waiting, deadlines, grace periods and recovery.

Strategy: the reader task puts this execution's events into its ``Mailbox`` (a FIFO
that never makes the reader yield unless a stream's consumer lags ``STREAM_BACKLOG``
events behind); this object drains it while keeping three clocks:

* the total deadline (``timeout``): on expiry, recover with status ``TIMED_OUT``;
* the completion grace: once the tracker has seen only one of execute_reply and
  ``idle`` for ``completion_grace`` seconds, finish with what it has (kernels exist
  that skip one of them);
* the late-output window: a tracker of a kernel that publishes after idle (Deno)
  settles once both are in; the reader pokes the mailbox then, and the execution
  finishes ``LATE_OUTPUT_WINDOW`` later with whatever arrived meanwhile;
* the interrupt grace: after a REST interrupt the kernel has ``interrupt_grace``
  seconds to finish the request, else it is restarted;
* the unread-request nudge: a request the kernel has sent nothing for
  ``UNREAD_NUDGE_AFTER`` seconds gets the Session's nudge (a second WebSocket opened
  and closed), again at a doubling interval up to ``_UNREAD_NUDGE_MAX``, until the
  kernel speaks. ipykernel 7.0-7.3 can leave a request that arrives while it sends a
  reply unread for good (ipykernel issue 1554): the kernel_info replies of a fresh
  connection are enough to cause it. A spurious nudge (a kernel busy with another
  client's cell, a loaded machine) costs one WebSocket opening. Pipelined transfer
  chunks opt out: ``files.pipeline`` nudges them more precisely.

Recovery (deadline, refused ``input()``, cancellation, an abandoned stream) never
raises over the partial result: it interrupts, waits, restarts if needed, and reports
what it did in ``result.recovery``. Cancellation runs the same recovery shielded and
re-raises. If the interrupt finds the kernel gone from the server (deleted by another
client, culled: Jupyter Server keeps the WebSocket open and says nothing), the session
gives up: the execution ends ``CONNECTION_LOST`` and later calls raise
``KernelUnavailable``. The same check runs when the completion grace ends with half an
answer (idle without a reply is what a kernel deleted mid-execution sends).

Latency: ``Session.execute`` awaits ``finished()`` (no generator chain) and only the
final event (or an input request) is delivered to it, so one execution costs one
hand-off from the reader and one timed wait; an event already in the mailbox is taken
without yielding to the event loop, the clocks being checked first all the same.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Protocol

import anyio
import attrs

from ..errors import JupyterInterpError, KernelNotFound, KernelUnavailable
from ..protocol.events import ExecutionEvent, ExecutionFinished, InputRequested
from ..protocol.execution_states import TrackerState
from ..protocol.result import ExecutionStatus, Recovery

if TYPE_CHECKING:
    from ..config import ClientConfig
    from ..protocol.connection import KernelConnection
    from ..protocol.execution import ExecutionTracker
    from ..protocol.messages import Message
    from .kernel_link import KernelLink
    from .reconnect import PendingLossCheck

__all__ = ["STREAM_BACKLOG", "UNREAD_NUDGE_AFTER", "ExecutionRun", "Mailbox", "RunHost"]

logger = logging.getLogger("jupyter_interp.session")

#: how many undelivered events a stream's consumer may lag before the reader waits
STREAM_BACKLOG = 256
#: how long a settling execution (reply and idle in, the kernel publishes late) still
#: takes output: Deno's late messages come well under a millisecond after idle here
LATE_OUTPUT_WINDOW = 0.05
#: how long the check that the kernel still exists may delay an incomplete ending
_GONE_CHECK_TIMEOUT = 5.0
#: seconds a sent request may go without any message from the kernel before a nudge:
#: long enough that a loaded kernel's first status rarely takes longer
UNREAD_NUDGE_AFTER = 1.0
_UNREAD_NUDGE_MAX = 8.0


class Mailbox:
    """The reader's hand-off to one execution: a FIFO with one consumer.

    ``put`` never blocks or yields (final events must always get through); the reader
    calls ``wait_for_room`` after it to stop reading while a bounded mailbox is ``full``.
    After ``close`` everything put is dropped and a waiting reader is released.
    """

    def __init__(self, *, everything: bool, capacity: float) -> None:
        #: whether every event is wanted (a stream), or only the final one and input
        #: requests (``execute``)
        self.everything = everything
        self._capacity = capacity
        self._items: deque[ExecutionEvent] = deque()
        self._arrived: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._closed = False

    def put(self, event: ExecutionEvent) -> None:
        if self._closed:
            return
        self._items.append(event)
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    @property
    def full(self) -> bool:
        return len(self._items) >= self._capacity

    async def wait_for_room(self) -> None:
        """Return once the mailbox is below capacity (or closed)."""
        while len(self._items) >= self._capacity and not self._closed:
            self._drained = drained = anyio.Event()
            await drained.wait()

    def get_nowait(self) -> ExecutionEvent | None:
        if not self._items:
            return None
        event = self._items.popleft()
        if self._drained is not None and len(self._items) < self._capacity:
            self._drained.set()
            self._drained = None
        return event

    def poke(self) -> None:
        """Wake a waiting ``get`` without an event (it returns None)."""
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    async def get(self) -> ExecutionEvent | None:
        """The next event, waiting for one if none is there; None after a ``poke``."""
        if not self._items:
            self._arrived = arrived = anyio.Event()
            await arrived.wait()
        return self.get_nowait()

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        if self._drained is not None:
            self._drained.set()


class RunHost(Protocol):
    """What a run needs of its Session (which satisfies this structurally): settings,
    the connection, the kernel's link and identity, and the Session's own ways to send,
    restart and give up. ``run`` never imports ``session``, which imports it."""

    kernel_id: str
    _config: ClientConfig
    _conn: KernelConnection
    _link: KernelLink
    _loss_check: PendingLossCheck | None

    @property
    def generation(self) -> int: ...

    async def _send(self, message: Message, *, for_execution: str | None = None) -> None: ...

    async def _give_up(self, error: JupyterInterpError) -> None: ...

    async def _restart_kernel(self, reason: str) -> list[ExecutionFinished]: ...

    async def _nudge(self) -> None: ...


class ExecutionRun:
    """Drives one registered execution to its ``ExecutionFinished``."""

    def __init__(
        self,
        session: RunHost,
        tracker: ExecutionTracker,
        request: Message,
        *,
        timeout: float | None,
        everything: bool,
        nudges_unread: bool = True,
    ) -> None:
        self._session = session
        self._tracker = tracker
        #: the execute_request to send
        self.request = request
        self.msg_id = tracker.msg_id
        self.mailbox = Mailbox(
            everything=everything, capacity=STREAM_BACKLOG if everything else math.inf
        )
        self._timeout = timeout
        self._config = session._config
        self._input_prompt: str | None = None
        self._deadline = math.inf
        self._grace_until: float | None = None
        self._grace_settles = False  # whether ``_grace_until`` is the late-output window
        self._nudge_wait = UNREAD_NUDGE_AFTER if nudges_unread else math.inf
        self._nudge_at = math.inf
        #: how the execution ended, once it has (also when recovery ended it)
        self.outcome: ExecutionFinished | None = None

    async def finished(self) -> ExecutionFinished:
        """Wait for the end of the execution, passing over the events in between."""
        self._start_clock()
        try:
            while True:
                event = await self._next()
                if isinstance(event, ExecutionFinished):
                    self.outcome = event
                    return event
        except BaseException:
            await self._recover_if_running()
            raise

    async def events(self) -> AsyncGenerator[ExecutionEvent, None]:
        """Yield the execution's events; the last one is always ``ExecutionFinished``."""
        self._start_clock()
        try:
            while True:
                # never yield inside a scope of ours: the consumer's code would run
                # under our deadline
                event = await self._next()
                if isinstance(event, ExecutionFinished):
                    self.outcome = event
                yield event
                if self.outcome is not None:
                    return
        except BaseException:
            await self._recover_if_running()
            raise

    def _start_clock(self) -> None:
        now = anyio.current_time()
        if self._timeout is not None:
            self._deadline = now + self._timeout
        self._nudge_at = now + self._nudge_wait

    async def _recover_if_running(self) -> None:
        if not self._tracker.done:
            with anyio.CancelScope(shield=True):
                self.outcome = await self._recover(
                    ExecutionStatus.CANCELLED, "the caller cancelled the execution"
                )

    async def _next(self) -> ExecutionEvent:
        """The next event to hand out; ``ExecutionFinished`` is the last one."""
        mailbox = self.mailbox
        while True:
            now = anyio.current_time()
            if self._tracker.awaiting_grace:
                settling = self._tracker.settling
                if self._grace_until is None or (settling and not self._grace_settles):
                    self._grace_settles = settling
                    window = LATE_OUTPUT_WINDOW if settling else self._config.completion_grace
                    self._grace_until = now + window
                if now >= self._grace_until:
                    if not settling and (gone := await self._kernel_missing()) is not None:
                        return await self._kernel_gone("the kernel stopped mid-execution", gone)
                    if self._tracker.done:  # the missing half came while we asked: mailed
                        continue
                    return self._finalize(self._finish_incomplete())
            if now >= self._deadline:
                return await self._recover(ExecutionStatus.TIMED_OUT, self._deadline_detail())
            if now >= self._nudge_at:
                await self._nudge_if_unread()
                continue  # the nudge took time: the clocks are read again
            event = mailbox.get_nowait()
            if event is None:
                # woken at least every completion_grace to look at the clocks above
                wake = min(self._deadline, now + self._config.completion_grace, self._nudge_at)
                if self._grace_until is not None:
                    wake = min(wake, self._grace_until)
                with anyio.move_on_after(wake - now):
                    event = await mailbox.get()
                if event is None:
                    continue
            if isinstance(event, ExecutionFinished):
                return self._finalize(event)
            if isinstance(event, InputRequested):
                finished = await self._on_input(event)
                if finished is not None:
                    return finished
            return event

    async def _nudge_if_unread(self) -> None:
        """Nudge the kernel if it has sent nothing for this request yet (within the
        deadline); the next nudge is due twice as late."""
        if self._tracker.state is not TrackerState.PENDING:
            self._nudge_at = math.inf  # the kernel took the request
            return
        check = self._session._loss_check
        if check is not None and self.msg_id in check.msg_ids:
            # sent on a socket that dropped since: the reconnect's check decides its end
            self._nudge_at = anyio.current_time() + self._nudge_wait
            return
        logger.info(
            "kernel %s: request %s unanswered, nudging", self._session.kernel_id, self.msg_id
        )
        with anyio.move_on_after(self._deadline - anyio.current_time()):
            await self._session._nudge()
        self._nudge_wait = min(self._nudge_wait * 2, _UNREAD_NUDGE_MAX)
        self._nudge_at = anyio.current_time() + self._nudge_wait

    def _deadline_detail(self) -> str:
        return f"the execution exceeded its {self._timeout:g} s deadline"

    def _finish_incomplete(self) -> ExecutionFinished:
        for event in self._session._conn.finish_incomplete(self._tracker.msg_id):
            if isinstance(event, ExecutionFinished):
                return event
        raise AssertionError("finish_incomplete produced no ExecutionFinished")

    def _finalize(self, finished: ExecutionFinished) -> ExecutionFinished:
        """Add what only the session knows: generation, refused input."""
        result = finished.result
        refused = result.error is not None and result.error.ename == "StdinNotImplementedError"
        if self._input_prompt is not None or refused:
            prompt = f" ({self._input_prompt!r})" if self._input_prompt else ""
            result = attrs.evolve(
                result,
                status=ExecutionStatus.INPUT_REQUIRED,
                detail=f"the code asked for input{prompt} and the stdin policy does not answer it",
            )
        elif result.generation == self._session.generation:
            return finished  # the usual case: nothing to add
        return ExecutionFinished(
            msg_id=finished.msg_id,
            result=attrs.evolve(result, generation=self._session.generation),
        )

    async def _on_input(self, event: InputRequested) -> ExecutionFinished | None:
        answer = self._config.stdin.answer
        session = self._session
        if answer is not None:
            reply = session._link.factory.input_reply(answer, parent=event.request)
            await session._send(reply, for_execution=self.msg_id)
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

    async def _kernel_missing(self) -> KernelNotFound | None:
        """Whether the server has dropped the kernel (asked when half an answer came).

        Why: a kernel deleted from outside goes idle without its execute_reply while
        Jupyter Server keeps our WebSocket open and silent; without asking, the
        execution would end as a kernel quirk (``NO_REPLY``) and the next one would
        wait for the keep-alive's check.
        """
        with anyio.move_on_after(_GONE_CHECK_TIMEOUT):
            try:
                await self._session._link.model()
            except KernelNotFound as exc:
                return exc
            except JupyterInterpError:
                pass  # unreachable server: the reader's reconnect decides
        return None

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
            event = await self.mailbox.get()
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
