"""The keep-alive of a Client's sessions: pings, and while code runs, a kernel check.

Strategy: one task per ``Client`` (not one per session: a task and a timer per session
cost nearly as much CPU again as each ping, 248 against 138 us per ping at 1,000
sessions) keeps its sessions in a queue ordered by when each is next due, every
``interval`` after the last visit, and wakes every tenth of the interval. On a visit it
pings the session's WebSocket unless the server was heard from since the previous visit
(any message or ping from it: traffic already keeps intermediaries and the socket
alive), so a session pings after at most two intervals of silence and an active one
never does. A dead socket is left to the session's reader to notice. While executions
are in flight the visit also asks the server for the kernel, in a task of its own, and
gives the session up (``KernelUnavailable``) when the server no longer knows it.

Invariants: the pings are written inline, one after the other, and never wait for a
session's send lock (a session that is sending is skipped: its traffic flows), so one
session's slow write delays the others' pings by at most its write timeout; the queue
holds sessions weakly, so a closed session is freed at once; at most one kernel check
per session at a time.
"""

from __future__ import annotations

import contextlib
import weakref
from collections import deque
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from ..errors import JupyterInterpError, KernelNotFound, KernelUnavailable

if TYPE_CHECKING:
    from ..io.websocket import WebSocket
    from ..protocol.connection import KernelConnection
    from .kernel_link import KernelLink

__all__ = ["KeepAlive", "KeepAliveHost"]

_TICKS_PER_INTERVAL = 10


class KeepAliveHost(Protocol):
    """What the keep-alive needs of a session's channel."""

    kernel_id: str
    _ws: WebSocket | None
    _ready: anyio.Event
    _stopped: anyio.Event
    _conn: KernelConnection
    _link: KernelLink

    async def _give_up(self, error: JupyterInterpError) -> None: ...


class KeepAlive:
    """Pings and kernel checks for every session of one Client; ``run`` is its task."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        #: (due time, the session, its WebSocket's activity count at the last visit)
        self._due: deque[tuple[float, weakref.ref[KeepAliveHost], int]] = deque()
        self._members: weakref.WeakSet[KeepAliveHost] = weakref.WeakSet()
        self._checking: weakref.WeakSet[KeepAliveHost] = weakref.WeakSet()
        self._tg: anyio.abc.TaskGroup | None = None

    def add(self, host: KeepAliveHost) -> None:
        """Visit ``host`` every interval from now on (a no-op if it is already in)."""
        if host not in self._members:
            self._members.add(host)
            seen = -1 if host._ws is None else host._ws.activity
            self._due.append((anyio.current_time() + self._interval, weakref.ref(host), seen))

    def discard(self, host: KeepAliveHost) -> None:
        """Stop visiting ``host`` (its queue entry is dropped when it comes due)."""
        self._members.discard(host)

    async def run(self) -> None:
        """Visit the sessions that are due, every tenth of the interval, until cancelled."""
        async with anyio.create_task_group() as self._tg:
            while True:
                await anyio.sleep(self._interval / _TICKS_PER_INTERVAL)
                await self._visit_due(anyio.current_time())

    async def _visit_due(self, now: float) -> None:
        due = self._due
        while due and due[0][0] <= now:
            _, ref, seen = due.popleft()
            host = ref()
            if host is None or host not in self._members:
                continue
            seen = await self._visit(host, seen)
            due.append((now + self._interval, ref, seen))

    async def _visit(self, host: KeepAliveHost, seen: int) -> int:
        """Ping ``host`` if the server was silent since the last visit; start a kernel
        check if code runs. Returns the activity count to compare with next time."""
        ws = host._ws
        activity = -1 if ws is None else ws.activity
        if ws is not None and host._ready.is_set() and activity == seen and not ws.sending:
            with contextlib.suppress(JupyterInterpError):
                await ws.ping()  # a dead socket is the reader's to notice
        if host._conn.in_flight and not host._stopped.is_set() and host not in self._checking:
            assert self._tg is not None
            self._checking.add(host)
            self._tg.start_soon(self._check_kernel, host)
        return activity

    async def _check_kernel(self, host: KeepAliveHost) -> None:
        """Give ``host`` up if the server no longer knows its kernel.

        Jupyter Server keeps our WebSocket open and silent when the kernel is deleted
        or culled elsewhere, so without this an execution with no deadline would wait
        forever.
        """
        try:
            await host._link.model()
        except KernelNotFound as exc:
            await host._give_up(KernelUnavailable(f"kernel {host.kernel_id} is gone: {exc}"))
        except JupyterInterpError:
            pass  # unreachable server: the reader's reconnect decides
        finally:
            self._checking.discard(host)
