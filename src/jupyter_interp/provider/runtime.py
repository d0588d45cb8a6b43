"""The provider's Client, held open by an owner task on the caller's event loop.

Strategy: the gateway calls provider methods from its asyncio loop, from many tasks,
with no ``async with`` around the provider; our ``Client`` needs a task group that
lives from the first call until ``close()``. A task group must be exited by the task
that entered it, so no request task can own it. On first use, ``ClientOwner`` starts
one detached *owner task* on the running loop; it enters the Client, reports it ready,
and waits for ``close()`` (or for the loop's shutdown, which cancels it) before leaving
the Client, which disconnects every session. Request tasks only borrow the Client; the
owner task also runs the provider's background work (idle culling) beside it.

anyio cannot start a task outside a task group, so ``_spawn`` is this package's one
use of backend APIs: ``loop.create_task`` on asyncio, ``trio.lowlevel.spawn_system_task``
on trio. Everything the owner and the request tasks do is plain anyio.

Invariants:

* One ``Runtime`` (Client + attached sessions) per provider at a time, bound to one
  loop. A runtime whose loop has ended (its owner task finished) is replaced on the
  next call: sessions then re-attach from the server, as after a restart. A call from
  another loop while the runtime's loop is alive is refused (``LocalProtocolError``).
* ``aclose`` detaches the runtime first (new calls get a fresh one), lets the calls in
  flight finish (bounded), runs the caller's last words, then ends the owner task and
  waits for it, shielded.
* ``Claims`` serialises work on one key (attach/start/stop of one session id), and
  forgets a key when nobody holds or waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs

from ..client import Client
from ..errors import LocalProtocolError, SessionClosed
from ..session import Session
from .directory import SessionDirectory, SessionMeta

__all__ = ["Claims", "ClientOwner", "Runtime", "SessionRecord"]

logger = logging.getLogger("jupyter_interp.provider")


@attrs.define(eq=False)
class SessionRecord:
    """A session attached in this runtime."""

    meta: SessionMeta
    session: Session
    #: the session's folder on the kernel's side (its file root and working directory)
    folder: str
    #: whether this process started the kernel (``stop_sessions_on_close`` stops only those)
    started_here: bool = False
    #: the kernel generation the working directory was last set up for
    setup_generation: int | None = None


class Claims:
    """Per-key locks that exist only while someone holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _current_loop() -> tuple[str, Any]:
    """The running event loop's kind and identity (asyncio loop or trio token)."""
    import asyncio

    try:
        return "asyncio", asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return "trio", trio.lowlevel.current_trio_token()


class Runtime:
    """One Client and the sessions attached through it, living on one event loop."""

    def __init__(self, kind: str, loop: Any) -> None:
        self.kind = kind
        self.loop = loop
        self.client: Client | None = None
        self.failure: Exception | None = None
        self.records: dict[str, SessionRecord] = {}
        self.claims = Claims()
        #: our records on the server, once the first call needed them
        self.directory: SessionDirectory | None = None
        self.ready = anyio.Event()
        self.closing = anyio.Event()
        self.finished = anyio.Event()
        self._calls = 0
        self._idle = anyio.Event()
        self._idle.set()

    def on_current_loop(self) -> bool:
        return _current_loop()[1] is self.loop

    def alive(self) -> bool:
        if self.finished.is_set():
            return False
        return not (self.kind == "asyncio" and self.loop.is_closed())

    @asynccontextmanager
    async def call(self) -> AsyncIterator[Client]:
        """Borrow the Client for one provider call (``aclose`` waits for these)."""
        await self.ready.wait()
        if self.client is None:
            raise SessionClosed(f"the provider's client is not running: {self.failure}")
        self._calls += 1
        if self._calls == 1:
            self._idle = anyio.Event()
        try:
            yield self.client
        finally:
            self._calls -= 1
            if self._calls == 0:
                self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def own(
        self,
        make_client: Callable[[], Client],
        background: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """The owner task: hold the Client open until ``closing`` (or cancellation),
        running ``background`` (if any) beside it meanwhile."""
        try:
            async with make_client() as client, anyio.create_task_group() as tg:
                self.client = client
                if background is not None:
                    tg.start_soon(background, self)
                self.ready.set()
                await self.closing.wait()
                tg.cancel_scope.cancel()
        except Exception as exc:
            self.failure = exc
            logger.error("the provider's client stopped: %s", exc)
        finally:
            self.client = None
            self.records.clear()
            self.ready.set()
            self.finished.set()


class ClientOwner:
    """Starts a Runtime on first use, replaces a dead one, closes the current one."""

    def __init__(
        self,
        make_client: Callable[[], Client],
        *,
        drain_timeout: float,
        background: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._make_client = make_client
        self._drain_timeout = drain_timeout
        self._background = background
        self._runtime: Runtime | None = None
        self._owner_tasks: set[Any] = set()  # asyncio keeps only weak references

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Runtime]:
        """The current Runtime, started if needed, for the length of one call."""
        runtime = self._runtime
        if runtime is None or not runtime.alive():
            runtime = self._runtime = self._start()
        elif not runtime.on_current_loop():
            raise LocalProtocolError(
                "this provider serves another event loop; create one provider per loop"
            )
        async with runtime.call():
            yield runtime

    def _start(self) -> Runtime:
        kind, loop = _current_loop()
        runtime = Runtime(kind, loop)
        if kind == "asyncio":
            task = loop.create_task(runtime.own(self._make_client, self._background))
            self._owner_tasks.add(task)
            task.add_done_callback(self._owner_tasks.discard)
        else:
            import trio

            trio.lowlevel.spawn_system_task(runtime.own, self._make_client, self._background)
        return runtime

    async def aclose(self, last_words: Callable[[Runtime], Awaitable[None]]) -> None:
        """Let calls in flight finish, run ``last_words``, stop the owner task."""
        runtime, self._runtime = self._runtime, None
        if runtime is None or not runtime.alive():
            return
        if not runtime.on_current_loop():
            logger.warning("close() on another event loop: the client closes with its loop")
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._drain_timeout):
                await runtime.wait_idle()
            try:
                await runtime.ready.wait()
                if runtime.client is not None:
                    await last_words(runtime)
            finally:
                runtime.closing.set()
                await runtime.finished.wait()
