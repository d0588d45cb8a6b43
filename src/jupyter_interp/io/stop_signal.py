"""Ending a periodic background task by asking it, not by cancelling it.

Why: under anyio on asyncio, a task group's task that ends by cancellation leaves a
reference cycle behind (the task-done callback's frame and the ``CancelledError`` whose
traceback holds it), and with it everything the task's frames refer to: a whole
Session, its WebSocket and buffers. Such garbage waits for a full collection, and
between two of those a long-running process's memory grows with every closed session.

Strategy: the task waits between its actions in ``pause``, which returns early when
asked to stop; its owner calls ``stop``, which tells whether the task will end by
itself. Only a task caught in the middle of an action (a request, a write) needs its
scope cancelled, so a stop is never delayed by an action.
"""

from __future__ import annotations

import anyio

__all__ = ["StopSignal"]


class StopSignal:
    """Asks one periodic task to end at its next pause."""

    def __init__(self) -> None:
        self._stop = anyio.Event()
        self._pausing = False

    @property
    def stopped(self) -> bool:
        """Whether ``stop`` was called."""
        return self._stop.is_set()

    async def pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if asked to stop; whether the task should go on."""
        if self._stop.is_set():
            return False
        self._pausing = True
        try:
            with anyio.move_on_after(seconds):
                await self._stop.wait()
        finally:
            self._pausing = False
        return not self._stop.is_set()

    def stop(self) -> bool:
        """Ask the task to end; whether it is pausing, so returns at once by itself."""
        self._stop.set()
        return self._pausing
