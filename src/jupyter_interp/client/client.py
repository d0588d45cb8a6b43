"""Client: one Jupyter server (Jupyter Server, Kernel Gateway or Enterprise Gateway).

Strategy: the Client owns (or borrows) the HTTP transport and a task group in which
every Session it opens runs its own nested task group (reader, keep-alive). Kernel
lifecycle goes through ``protocol.rest`` requests run by ``io.http``; code runs over
each Session's WebSocket.

Invariants:

* Constructing a Client does no I/O and starts no task; ``async with`` does.
* Leaving the Client shuts down the kernels it started (unless a session was
  detached) and disconnects sessions it attached to, even when the body raised or was
  cancelled; an injected ``httpx.AsyncClient`` is never closed. When the body raised,
  its error propagates and a failed shutdown (a server that is down) is only logged.
* A Session's tasks (reader, keep-alive) are the Client's, not the caller's: once
  connected they run in a shielded scope, so cancelling the scope around the Client
  (a request timeout in a web server, say) cannot kill a reader that the shielded
  recovery of a cancelled execution still needs. Leaving the Client cancels them.
* Nothing depends on kernel listing or the Contents API, which gateways refuse.
"""

from __future__ import annotations

import getpass
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import httpx
from anyio.abc import TaskStatus

from .. import telemetry
from ..config import ClientConfig
from ..errors import (
    JupyterInterpError,
    KernelLaunchError,
    KernelLaunchTimeout,
    LocalProtocolError,
)
from ..io.http import HttpTransport
from ..protocol import rest
from ..session.keepalive import KeepAlive
from ..session.kernel_link import KernelLink
from ..session.session import Session
from .server import ServerQueries
from .start_retry import may_have_started, start_with_retries, with_kernel_id

__all__ = ["Client", "shutdown_on_exit"]

logger = logging.getLogger("jupyter_interp.client")
#: sessions held before the first sweep of finished ones (see ``Client._hold``)
_FIRST_PRUNE = 64

#: Sessions closed at once when a Client exits: unbounded, thousands of DELETEs queue
#: in httpx's pool (100 connections, 20 kept alive) and the tail of them outlives the
#: exit's 30 s bound, leaking their kernels (``bench/sim_scale.py``, 1,000 sessions).
CLOSE_CONCURRENCY = 16


def _default_username() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@asynccontextmanager
async def shutdown_on_exit(started: Awaitable[Session]) -> AsyncIterator[Session]:
    """Await a session start; shut its kernel down when the block exits, whatever happens."""
    session = await started
    try:
        yield session
    finally:
        with anyio.CancelScope(shield=True):
            await session.shutdown()


class Client(ServerQueries):
    """A connection to one Jupyter server; opens kernel Sessions.

    Args:
        base_url: server URL; may carry a path prefix (``http://host:8888/user/x/``).
            None: ``JUPYTER_URL`` if set, else ``http://localhost:8888`` (as the CLI
            and the provider do).
        token: the server's token (sent as ``Authorization: token <T>`` only). None:
            ``JUPYTER_TOKEN`` if set.
        headers: extra headers for every request and WebSocket handshake.
        verify: TLS verification (True, False, or a CA bundle path).
        http_client: an ``httpx.AsyncClient`` to use; it is never closed by us.
        config: full settings; keyword arguments above override its fields.
        **settings: any other ``ClientConfig`` field (timeouts, budgets, stdin policy).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | None = None,
        http_client: httpx.AsyncClient | None = None,
        config: ClientConfig | None = None,
        **settings: Any,
    ) -> None:
        overrides: dict[str, Any] = dict(settings)
        for name, value in (
            ("base_url", base_url),
            ("token", token),
            ("headers", headers),
            ("verify", verify),
        ):
            if value is not None:
                overrides[name] = value
        if config is None:
            overrides.setdefault("kernel_username", _default_username())
            config = ClientConfig.from_env(**overrides)
        elif overrides:
            import attrs

            config = attrs.evolve(config, **overrides)
        self.config = config
        self._http_client = http_client
        self._http: HttpTransport | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._keep_alive: KeepAlive | None = None  # one for all sessions (see its module)
        self._serving: set[anyio.CancelScope] = set()
        self._owned: list[Session] = []
        self._attached: list[Session] = []
        self._prune_at = _FIRST_PRUNE  # len(self._owned) + len(self._attached)
        self._kernelspecs: rest.KernelSpecs | None = None
        self._server_kind: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Client {self.config.base_url!r}>"

    async def __aenter__(self) -> Client:
        self._http = HttpTransport(
            self.config.base_url,
            token=self.config.token,
            headers=self.config.headers,
            verify=self.config.verify,
            client=self._http_client,
            timeout=self.config.request_timeout,
        )
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        if self.config.ping_interval is not None:
            self._keep_alive = KeepAlive(self.config.ping_interval)
            self._tg.start_soon(self._keep_alive.run, name="Client keep-alive")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(30):
                    async with anyio.create_task_group() as cleanup:
                        limiter = anyio.CapacityLimiter(CLOSE_CONCURRENCY)
                        for session in self._owned:
                            cleanup.start_soon(_limited, limiter, session.shutdown)
                        for session in self._attached:
                            cleanup.start_soon(_limited, limiter, session.detach)
        except Exception as failed:
            if exc is None:
                raise
            # the body's error says what went wrong (the task group's would replace it,
            # context suppressed): a server that is down fails the deletes as well
            logger.warning("closing the client after an error, also: %s", _describe(failed))
        finally:
            assert self._tg is not None
            for scope in self._serving:
                scope.cancel()  # shielded: the task group's cancel would not reach them
            self._tg.cancel_scope.cancel()
            if not isinstance(exc, anyio.get_cancelled_exc_class()):
                # the body's error is not the task group's: handed over, it would come
                # back wrapped in an ExceptionGroup; kept out, it propagates unchanged
                exc_type, exc, tb = None, None, None
            try:
                await self._tg.__aexit__(exc_type, exc, tb)
            finally:
                self._tg = None
                self._closed = True
                if self._http is not None:
                    with anyio.CancelScope(shield=True):
                        await self._http.aclose()
        return None

    @property
    def http(self) -> HttpTransport:
        if self._closed:
            raise LocalProtocolError(f"{self!r} is closed: its 'async with' block has exited")
        if self._http is None:
            raise LocalProtocolError("use the Client inside 'async with'")
        return self._http

    # -- sessions -------------------------------------------------------------------

    async def start_session(
        self,
        kernel_name: str | None = None,
        *,
        language: str | None = None,
        env: Mapping[str, str] | None = None,
        path: str | None = "",
        file_root: str = "",
    ) -> Session:
        """Start a kernel and connect a Session to it.

        Args:
            kernel_name: kernelspec name (server default when None and no language).
            language: pick a kernelspec by language when ``kernel_name`` is None.
            env: ``KERNEL_*`` variables for Kernel/Enterprise Gateway (Jupyter Server
                ignores a client env).
            path: the kernel's working directory, an API path relative to the server's
                root (``""``: the root itself). ``None`` sends none, and Jupyter Server
                then starts the kernel in its own process's working directory, which
                the Contents API cannot map (files then move through the kernel only).
            file_root: kernel-side directory that file transfers are confined to.

        A start that fails for a passing reason (a kernel that dies before it first
        answers, as when another socket took one of the ports picked for it; a 5xx on
        the start; a WebSocket closed before the first reply) is deleted and tried
        again with a fresh kernel id, up to ``config.start_attempts`` attempts in all,
        after a short jittered pause (see ``start_retry``).

        Raises:
            KernelSpecNotFound, ResourceLimitError, KernelLaunchError, KernelDied,
            AuthenticationError, ConnectError, TransportTimeout.
        """
        name = await self.resolve_kernel_name(kernel_name, language)
        request = rest.start_kernel(name, env=self.config.start_env(env), path=path)
        return await self._start_and_open(request, name, file_root_for=lambda _: file_root)

    async def _start_and_open(
        self,
        request: rest.HttpRequest,
        name: str | None,
        *,
        kernel_id: str | None = None,
        file_root_for: Callable[[str], str],
        owned: bool = True,
        cleanup_timeout: float = 30.0,
        vet: Callable[[rest.KernelModel], None] | None = None,
    ) -> Session:
        """Send the start ``request`` and open a Session on the kernel it started (the
        provider's start too, with a request of its own and ``owned=False``).

        Each attempt asks for a kernel id of ours (``kernel_id``, else a fresh one per
        attempt) and deletes that kernel when it fails; transient failures are retried
        (``start_retry``, ``config.start_attempts``). ``name``: the kernelspec to check
        when the launch fails (None: no check). ``owned``: deleted when the Client
        closes (else kept, as an attached session is). ``vet`` sees the start's answer
        first: what it raises propagates and the kernel is left untouched.
        """
        kind = await self.server_kind() if telemetry.recording() else ""
        spec = str((request.json or {}).get("name") or "")

        async def attempt(wanted: str) -> Session:
            try:
                model = await self._start_kernel(with_kernel_id(request, wanted), name)
            except BaseException as exc:
                if may_have_started(exc):
                    await self._discard(wanted, name or "", cleanup_timeout)
                raise
            if vet is not None:
                vet(model)
            try:
                return await self._open(model.id, model.name, file_root=file_root_for(model.id))
            except BaseException:
                await self._discard(model.id, model.name, cleanup_timeout)
                raise

        with telemetry.session_start(spec, self.config.base_url, server_kind=kind):
            session = await start_with_retries(
                attempt,
                attempts=self.config.start_attempts,
                kernel_ids=(lambda: kernel_id) if kernel_id else lambda: str(uuid.uuid4()),
            )
        self._hold(session, owned=owned)
        return session

    def _hold(self, session: Session, *, owned: bool) -> None:
        """Keep ``session`` for the exit's cleanup; drop those shut down or detached.

        Why: a long-lived Client (the provider's) would otherwise keep every session it
        ever opened, history and all (the soak's RSS grew 7 MiB a minute). One that
        gave up with its kernel maybe alive is kept: leaving deletes it. The lists are
        swept when they have doubled since the last sweep, not on every start (with
        10,000 sessions open, a sweep per start made the starts quadratic), so at most
        about as many finished sessions as live ones are held.
        """
        (self._owned if owned else self._attached).append(session)
        if len(self._owned) + len(self._attached) < self._prune_at:
            return
        for held in (self._owned, self._attached):
            held[:] = [s for s in held if not (s.closed and not s._delete_pending)]
        self._prune_at = max(_FIRST_PRUNE, 2 * (len(self._owned) + len(self._attached)))

    async def _discard(self, kernel_id: str, kernel_name: str, timeout: float) -> None:
        """Delete what a failed start attempt left (bounded, shielded, best effort)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(timeout):
            try:
                await self._link(kernel_id, kernel_name).delete()
            except JupyterInterpError as exc:
                logger.warning("deleting kernel %s of a failed start: %s", kernel_id, exc)

    async def _start_kernel(self, request: rest.HttpRequest, name: str | None) -> rest.KernelModel:
        try:
            return await self.http.call(
                request, rest.parse_start_kernel, timeout=self.config.start_timeout
            )
        except KernelLaunchError as exc:
            if name is not None and not isinstance(exc, KernelLaunchTimeout):
                await self._check_kernel_name(name, exc)
            raise

    async def attach_session(self, kernel_id: str, *, file_root: str = "") -> Session:
        """Connect a Session to a running kernel (started by anyone, e.g. another replica).

        Leaving the Client disconnects it without deleting the kernel.
        """
        model = await self.get_kernel(kernel_id)
        session = await self._open(model.id, model.name, file_root=file_root)
        self._hold(session, owned=False)
        return session

    @asynccontextmanager
    async def session(
        self,
        kernel_name: str | None = None,
        *,
        language: str | None = None,
        env: Mapping[str, str] | None = None,
        file_root: str = "",
    ) -> AsyncIterator[Session]:
        """A started Session whose kernel is shut down when the block exits."""
        started = self.start_session(kernel_name, language=language, env=env, file_root=file_root)
        async with shutdown_on_exit(started) as session:
            yield session

    def _link(self, kernel_id: str, kernel_name: str) -> KernelLink:
        return KernelLink.to_kernel(self.http, self.config, kernel_id, kernel_name)

    async def _open(self, kernel_id: str, kernel_name: str, *, file_root: str) -> Session:
        if self._tg is None:
            raise LocalProtocolError("use the Client inside 'async with'")
        link = self._link(kernel_id, kernel_name)
        session = Session(link, self.config, file_root=file_root, keep_alive=self._keep_alive)
        await self._tg.start(self._serve, session)
        return session

    async def _serve(
        self, session: Session, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run ``session``; shielded from the caller's cancellation once it is connected."""
        scope = anyio.CancelScope()
        self._serving.add(scope)
        try:
            with scope, telemetry.live_session(session.kernel_name):
                await session._run(task_status=_ShieldWhenStarted(scope, task_status))
        finally:
            self._serving.discard(scope)


async def _limited(limiter: anyio.CapacityLimiter, close: Callable[[], Awaitable[None]]) -> None:
    async with limiter:
        await close()


def _describe(error: BaseException) -> str:
    """An error's message; for an exception group, its leaves' messages."""
    group: tuple[BaseException, ...] | None = getattr(error, "exceptions", None)
    return "; ".join(map(_describe, group)) if group else str(error)


class _ShieldWhenStarted:
    """Passes ``started()`` on after shielding ``scope``: no checkpoint lies between."""

    def __init__(self, scope: anyio.CancelScope, inner: TaskStatus[None]) -> None:
        self._scope = scope
        self._inner = inner

    def started(self, value: None = None) -> None:
        self._scope.shield = True
        self._inner.started(value)
