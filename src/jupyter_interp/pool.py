"""KernelPool: warm kernels per kernelspec, so a session starts in milliseconds.

Strategy: a ``KernelPool`` keeps, for each kernelspec it is given, up to ``size`` fully
started Sessions (kernel started over REST, WebSocket open, ``kernel_info`` answered)
that nobody has used. ``start_session`` hands one out at once and wakes that
kernelspec's replenisher, which starts a replacement in the background; when none is
idle (or the request asks for what a warm kernel cannot have: an ``env`` or a ``path``),
it falls back to ``Client.start_session``. A kernel is never handed out twice, so no
state leaks from one user to the next.

Structured concurrency: the pool is an async context manager that owns a task group
with one replenisher task per kernelspec; it must be used inside its Client's
``async with`` (the Client owns the sessions' reader tasks and shuts down what it
started on exit). Sessions handed out belong to the caller (and, as usual, to the
Client's cleanup); the idle ones belong to the pool.

Invariants:

* Bounded: per kernelspec at most ``size`` idle sessions plus one start in flight.
* Never leaking: a start in flight is shielded (bounded by the Client's start and
  handshake timeouts) so its kernel is always known and recorded before cancellation can
  land; leaving the pool stops the replenishers, then shuts down every idle session,
  shielded, whether the block ended normally, raised or was cancelled.
* A warm session is handed out only after ``GET api/kernels/<id>`` found its kernel
  (servers cull idle kernels; a Session does not notice a kernel deleted behind its
  back); one that is gone is discarded.
* A failed warm start is logged and retried with a capped exponential back-off; it
  never fails the pool (callers then get cold starts, which raise the real error).
* Enter the pool inside its Client's block and leave it before the Client's.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from . import telemetry
from .client import shutdown_on_exit
from .errors import JupyterInterpError, KernelNotFound, LocalProtocolError

if TYPE_CHECKING:
    from .client import Client
    from .session.session import Session

__all__ = ["KernelPool"]

logger = logging.getLogger("jupyter_interp.pool")

_FIRST_RETRY_DELAY = 0.5
_MAX_RETRY_DELAY = 30.0
_SHUTDOWN_TIMEOUT = 30.0


async def _shut_down(session: Session) -> None:
    try:
        await session.shutdown()
    except JupyterInterpError as exc:  # leaving the pool must not fail over one kernel
        logger.warning("shutting down warm kernel %s failed: %s", session.kernel_id, exc)


class _Spec:
    """The warm sessions of one kernelspec and the replenisher's wake-up signal."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: deque[Session] = deque()
        self.wanted = anyio.Event()
        self.changed = anyio.Event()

    def notify(self) -> None:
        changed, self.changed = self.changed, anyio.Event()
        changed.set()

    def take(self) -> Session | None:
        """The oldest idle session not known to be closed; wakes the replenisher."""
        self.wanted.set()
        while self.idle:
            session = self.idle.popleft()
            if not session.closed:
                self.notify()
                return session
        return None


class KernelPool:
    """Pre-started kernels per kernelspec for one ``Client``.

    Args:
        client: the Client the kernels are started with (enter it first).
        sizes: kernelspec name -> how many idle warm sessions to keep (at least 1). The
            name ``None`` pools the server's default kernelspec without asking the
            server which it is: a start that names neither a kernel nor a language
            takes those sessions, and warming begins with no request beforehand.

    Example::

        async with Client(url, token=token) as client:
            async with KernelPool(client, {"python3": 2}) as pool:
                async with pool.session("python3") as session:
                    await session.execute("1 + 1")

    Raises:
        LocalProtocolError: an empty ``sizes`` or a size below 1.
    """

    def __init__(self, client: Client, sizes: Mapping[str | None, int]) -> None:
        if not sizes:
            raise LocalProtocolError("a KernelPool needs at least one kernelspec")
        for name, size in sizes.items():
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise LocalProtocolError(f"pool size for {name!r} must be an int >= 1")
        self._client = client
        self._sizes = dict(sizes)
        self._specs: dict[str | None, _Spec] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<KernelPool {self._sizes!r}>"

    async def __aenter__(self) -> KernelPool:
        if self._tg is not None or self._closed:
            raise LocalProtocolError("a KernelPool can be entered only once")
        self._client.http  # noqa: B018 -- raises LocalProtocolError outside the Client's block
        self._specs = {name: _Spec(size) for name, size in self._sizes.items()}
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        for name, spec in self._specs.items():
            spec.wanted.set()
            self._tg.start_soon(self._replenish, name, spec, name=f"KernelPool[{name}]")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._closed = True
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_SHUTDOWN_TIMEOUT):
                async with anyio.create_task_group() as cleanup:
                    for spec in self._specs.values():
                        while spec.idle:
                            cleanup.start_soon(_shut_down, spec.idle.popleft())
        return None

    # -- public surface ---------------------------------------------------------------

    def idle(self, kernel_name: str | None) -> int:
        """How many warm sessions of ``kernel_name`` (``None``: the default) are ready."""
        spec = self._specs.get(kernel_name)
        return 0 if spec is None else sum(not s.closed for s in spec.idle)

    async def wait_ready(self) -> None:
        """Wait until every kernelspec has its full number of warm sessions.

        Bound it with ``anyio.fail_after``: it waits for as long as starts keep failing.
        """
        self._check_open()
        for name, spec in self._specs.items():
            while self.idle(name) < spec.size:
                spec.wanted.set()  # an idle session may have died since it was started
                await spec.changed.wait()

    async def start_session(
        self,
        kernel_name: str | None = None,
        *,
        language: str | None = None,
        env: Mapping[str, str] | None = None,
        path: str | None = "",
        file_root: str = "",
    ) -> Session:
        """Like ``Client.start_session``, served from the pool when possible.

        A warm session is used when the resolved kernelspec is pooled, one is idle, no
        ``env`` is given and ``path`` is the default ``""`` (warm kernels run in the
        server's root; a running kernel cannot take another env or directory);
        otherwise a kernel is started now.

        Raises:
            LocalProtocolError: the pool is not entered or already closed.
            Everything ``Client.start_session`` raises (cold starts).
        """
        self._check_open()
        name: str | None = None  # the server's default, when pooled under None
        if kernel_name is not None or language is not None or None not in self._specs:
            name = await self._client.resolve_kernel_name(kernel_name, language)
            if name is None:
                name = (await self._client.kernelspecs()).default
        spec = self._specs.get(name)
        if spec is not None and not env and path == "":
            while (session := spec.take()) is not None:
                if await self._alive(session):
                    session.file_root = file_root
                    telemetry.pool_request(session.kernel_name, hit=True)
                    return session
        telemetry.pool_request(name or "", hit=False)
        return await self._client.start_session(name, env=env, path=path, file_root=file_root)

    @asynccontextmanager
    async def session(
        self,
        kernel_name: str | None = None,
        *,
        language: str | None = None,
        env: Mapping[str, str] | None = None,
        file_root: str = "",
    ) -> AsyncIterator[Session]:
        """A session from the pool whose kernel is shut down when the block exits."""
        started = self.start_session(kernel_name, language=language, env=env, file_root=file_root)
        async with shutdown_on_exit(started) as session:
            yield session

    async def _alive(self, session: Session) -> bool:
        """Whether the server still has the kernel (it may have been culled while idle)."""
        try:
            await self._client.get_kernel(session.kernel_id)
        except KernelNotFound:
            logger.info("warm kernel %s is gone; discarding it", session.kernel_id)
            with anyio.CancelScope(shield=True):
                await session.shutdown()
            return False
        return True

    # -- replenishing -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._tg is None or self._closed:
            raise LocalProtocolError("use the KernelPool inside 'async with'")

    async def _replenish(self, name: str | None, spec: _Spec) -> None:
        delay = _FIRST_RETRY_DELAY
        while True:
            await spec.wanted.wait()
            spec.wanted = anyio.Event()
            while self.idle(name) < spec.size:
                if await self._start_one(name, spec):
                    delay = _FIRST_RETRY_DELAY
                else:
                    await anyio.sleep(delay)
                    delay = min(delay * 2, _MAX_RETRY_DELAY)

    async def _start_one(self, name: str | None, spec: _Spec) -> bool:
        """Start one warm session, shielded so its kernel is recorded before any cancel."""
        config = self._client.config
        bound = config.start_timeout + config.handshake_timeout
        with anyio.CancelScope(shield=True), anyio.move_on_after(bound):
            try:
                session = await self._client.start_session(name)
            except Exception as exc:  # a background start must never fail the pool
                logger.warning("warm start of a %r kernel failed: %s", name or "default", exc)
                return False
            spec.idle.append(session)
            spec.notify()
            return True
        logger.warning("warm start of a %r kernel took longer than %g s", name or "default", bound)
        return False
