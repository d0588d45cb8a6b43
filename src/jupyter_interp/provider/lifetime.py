"""Provider sessions that end by themselves: idle ones are stopped, and a cap bounds them.

Strategy:

* **Use.** ``Usage`` counts, per session id, the provider calls in flight and when the
  last one ended (anyio's clock).
* **Culling.** With ``idle_timeout`` set, a background task of the provider's runtime
  wakes every quarter of it (1 s to 60 s) and looks at the sessions this process holds
  and, on Jupyter Server, every replica's sessions in the server's registry (so sessions
  that another replica started and forgot, or a restarted gateway's, end too). A session
  is stopped when no call of this process is in flight on it or has used it within
  ``idle_timeout``, and the server says its kernel is not busy and has had no activity
  (``last_activity``) within ``idle_timeout``: a replica still using it keeps it alive.
  Each stop runs under the session id's claim and checks again under it, so a call that
  begins meanwhile wins. On the gateways, which keep no registry, sessions another
  process forgot are left to the gateway's own culling.
* **Cap.** With ``max_sessions`` set, a start first counts live sessions (the registry's,
  every replica's, where the server has one; else those this process knows) plus the
  starts this process has in flight, under a lock, and refuses at the cap
  (``SessionLimitReached``). Where the count comes from the registry, it is taken again
  after the start: a start that raced with another replica's and ended over the cap
  stops its own kernel and is refused, so the cap is never exceeded for long.

Invariants: culling never stops a session with a call in flight in this process; a
culled session's id answers "not found" afterwards, never a stale kernel.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio

from ..errors import JupyterInterpError, KernelNotFound
from ..protocol.contents import parse_rfc3339
from .errors import SessionLimitReached
from .runtime import Runtime
from .sessions import SessionKeeper

__all__ = ["SessionCap", "SessionCuller", "Usage"]

logger = logging.getLogger("jupyter_interp.provider")


class Usage:
    """Calls in flight and the time of the last call, per session id."""

    def __init__(self) -> None:
        self._busy: dict[str, int] = {}
        self._last: dict[str, float] = {}

    @contextmanager
    def using(self, session_id: str) -> Iterator[None]:
        self._busy[session_id] = self._busy.get(session_id, 0) + 1
        try:
            yield
        finally:
            self._busy[session_id] -= 1
            if not self._busy[session_id]:
                del self._busy[session_id]
            self._last[session_id] = anyio.current_time()

    def idle_for(self, session_id: str) -> float | None:
        """Seconds since this process last used the session; None while a call runs or
        if this process never used it."""
        if session_id in self._busy:
            return None
        last = self._last.get(session_id)
        return None if last is None else anyio.current_time() - last

    def busy(self, session_id: str) -> bool:
        return session_id in self._busy

    def forget(self, session_id: str) -> None:
        self._last.pop(session_id, None)


class SessionCuller:
    """Stops sessions nobody used for ``idle_timeout`` seconds (see the module doc)."""

    def __init__(self, keeper: SessionKeeper, usage: Usage, idle_timeout: float) -> None:
        self._keeper = keeper
        self._usage = usage
        self._timeout = idle_timeout

    @property
    def period(self) -> float:
        return min(max(self._timeout / 4, 1.0), 60.0)

    async def run(self, runtime: Runtime) -> None:
        """The runtime's background task: a culling pass every ``period`` seconds."""
        while True:
            await anyio.sleep(self.period)
            try:
                await self.cull(runtime)
            except JupyterInterpError as exc:
                logger.warning("culling idle sessions failed: %s", exc)

    async def cull(self, runtime: Runtime) -> list[str]:
        """One pass; the ids of the sessions it stopped."""
        candidates = {sid: None for sid in runtime.records}
        registered = await self._keeper.directory(runtime).registered()
        candidates.update({meta.session_id: None for meta in registered or ()})
        stopped = []
        for session_id in candidates:
            if not await self._idle(runtime, session_id):
                continue
            async with runtime.claims.hold(session_id):
                if not await self._idle(runtime, session_id):
                    continue
                logger.info(
                    "session %s was idle for over %g s: stopping it", session_id, self._timeout
                )
                await self._keeper.stop(runtime, session_id)
                self._usage.forget(session_id)
                stopped.append(session_id)
        return stopped

    async def _idle(self, runtime: Runtime, session_id: str) -> bool:
        if self._usage.busy(session_id):
            return False
        idle_here = self._usage.idle_for(session_id)
        if idle_here is not None and idle_here < self._timeout:
            return False
        assert runtime.client is not None
        try:
            model = await runtime.client.get_kernel(self._keeper.kernel_id(session_id))
        except KernelNotFound:
            return True  # gone already: stopping it only forgets it
        if model.execution_state == "busy" or model.last_activity is None:
            return False
        try:
            last = parse_rfc3339(model.last_activity)
        except ValueError:
            return False
        now = datetime.datetime.now(datetime.timezone.utc)
        return (now - last).total_seconds() >= self._timeout


class SessionCap:
    """Refuses starts beyond ``max_sessions`` (see the module doc)."""

    def __init__(self, keeper: SessionKeeper, limit: int) -> None:
        self._keeper = keeper
        self._limit = limit
        self._lock = anyio.Lock()
        self._starting = 0

    async def _count(self, runtime: Runtime) -> tuple[int, bool]:
        """Live sessions, and whether the count is every replica's (the registry's)."""
        registered = await self._keeper.directory(runtime).registered()
        if registered is not None:
            return len(registered), True
        return len(self._keeper.known), False

    @asynccontextmanager
    async def slot(self, runtime: Runtime) -> AsyncIterator[None]:
        """Hold a place for one start, or raise ``SessionLimitReached``."""
        async with self._lock:
            count, _ = await self._count(runtime)
            if count + self._starting >= self._limit:
                raise SessionLimitReached(self._limit)
            self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1

    async def confirm(self, runtime: Runtime, session_id: str) -> None:
        """After a start: stop it and refuse if, counted anew, the cap is exceeded."""
        count, everyone = await self._count(runtime)
        if everyone and count > self._limit:
            await self._keeper.stop(runtime, session_id)
            raise SessionLimitReached(self._limit)
