"""What ``Session.stream`` returns, and the gate that runs executions one at a time.

Strategy: ``ExecutionStream`` wraps the session's event generator; iterate it with
``async for``, or enter it with ``async with`` to close it on leaving the block. The
session keeps every stream that has begun and not ended. ``ExecutionGate`` is the
session's one-execution-at-a-time lock (a fair ``anyio.Semaphore(1)``: not bound to a
task, so a stream closed by the garbage collector elsewhere still releases it) and,
before waiting on it, closes the streams that the *calling* task abandoned.

Invariants:

* A stream is abandoned when the task that began it asks for another execution (or a
  file operation) while not inside the stream's iteration: one execution runs at a
  time, so that task would wait for itself forever (``break`` out of ``async for``
  without ``aclosing``). The stream is closed in that task, which interrupts its
  execution as a cancellation would (the result of that recovery is lost to nobody:
  the consumer had left). Other tasks' streams are waited for, as any execution is.
* A stream releases the session as soon as it has yielded ``ExecutionFinished``
  (its generator is closed before the event is handed over).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from types import TracebackType

import anyio

from ..protocol.events import ExecutionEvent, ExecutionFinished

__all__ = ["ExecutionGate", "ExecutionStream"]

logger = logging.getLogger("jupyter_interp.session")


class ExecutionStream:
    """Typed events of one execution as they arrive, ``ExecutionFinished`` last.

    ``async for event in session.stream(code)`` or, closing it whatever happens,
    ``async with session.stream(code) as events: async for event in events: ...``.
    """

    def __init__(
        self, events: AsyncGenerator[ExecutionEvent, None], open_streams: set[ExecutionStream]
    ) -> None:
        self._events = events
        self._open = open_streams
        self._owner: object | None = None
        self._iterating = False

    def __aiter__(self) -> ExecutionStream:
        return self

    async def __anext__(self) -> ExecutionEvent:
        if self._owner is None:
            self._owner = anyio.get_current_task().id
            self._open.add(self)
        self._iterating = True
        try:
            event = await self._events.__anext__()
        except BaseException:
            self._open.discard(self)  # ended: exhausted, failed or cancelled
            raise
        finally:
            self._iterating = False
        if isinstance(event, ExecutionFinished):
            await self.aclose()  # the session is free before the consumer sees the end
        return event

    async def aclose(self) -> None:
        """Stop the stream; an execution still running is interrupted. Idempotent."""
        self._open.discard(self)
        await self._events.aclose()

    @property
    def abandoned(self) -> bool:
        """Begun by the current task, which is not inside its iteration now."""
        return not self._iterating and self._owner == anyio.get_current_task().id

    async def __aenter__(self) -> ExecutionStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class ExecutionGate:
    """``async with gate:`` runs one execution (or file operation) at a time, in call
    order; first it closes the streams the calling task abandoned."""

    def __init__(self) -> None:
        self._turn = anyio.Semaphore(1, fast_acquire=True)
        #: streams that have begun and not ended
        self.open_streams: set[ExecutionStream] = set()

    async def __aenter__(self) -> None:
        for stream in [s for s in self.open_streams if s.abandoned]:
            logger.warning(
                "closing a stream its task left without closing it (use 'async with "
                "session.stream(...)'); its execution is interrupted"
            )
            await stream.aclose()
        await self._turn.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._turn.release()
