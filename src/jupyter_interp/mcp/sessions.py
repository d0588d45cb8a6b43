"""The kernels of one MCP connection: named Sessions, started lazily from a warm pool.

Strategy: a ``ConnectionSessions`` maps session names (``"default"`` unless the caller
names another) to ``Session`` objects. A name's kernel is started on first use, from the
``KernelPool`` when one is given (a warm kernel is handed over in milliseconds; a warm
start in flight is awaited rather than raced), else cold through the ``Client``; a
session whose kernel is gone for good is replaced on its next use. ``prestart`` starts
the default session ahead of the first call (the stdio command does, for its one
connection). Nothing here imports the MCP SDK, so the command can do that while the SDK
loads. ``aclose`` shuts
every kernel down; the server calls it when the connection ends (stdio EOF, HTTP session
deleted or expired, server shutdown).

Files: each connection gets a folder of its own, ``jupyter-interp-mcp-<32 hex digits>``
under the configured file root, to which its file tools are confined, so one MCP client
cannot read or overwrite another's files through the tools. In Python kernels it is also
the working directory (set again after a restart), so code finds uploaded files by name
and files it writes are readable by the tools; ``aclose`` deletes it.

Invariants: at most ``limit`` live sessions per connection; one start per name at a
time (a lock per connection); after ``aclose`` no new session is started; shutting down
is shielded and bounded so a dead server cannot hang the connection's teardown.
"""

from __future__ import annotations

import ast
import logging
import secrets

import anyio

from ..client import Client
from ..errors import JupyterInterpError, LocalProtocolError
from ..pool import KernelPool
from ..session import Session
from .outputs import OutputStore

__all__ = ["DEFAULT_SESSION", "ConnectionSessions"]

#: the session a call uses when it names none
DEFAULT_SESSION = "default"

logger = logging.getLogger("jupyter_interp.mcp")

_SHUTDOWN_TIMEOUT = 30.0


class ConnectionSessions:
    """Named kernel sessions and kept outputs of one MCP connection."""

    def __init__(
        self,
        client: Client,
        pool: KernelPool | None,
        *,
        kernel: str | None,
        language: str | None,
        file_root: str,
        limit: int = 8,
    ) -> None:
        self._client = client
        self._pool = pool
        self._kernel = kernel
        self._language = language
        folder = f"jupyter-interp-mcp-{secrets.token_hex(16)}"
        self._file_root = f"{file_root.rstrip('/')}/{folder}" if file_root else folder
        self._limit = limit
        self._sessions: dict[str, Session] = {}
        #: per session name, the kernel generation whose working directory was set
        self._entered: dict[str, int] = {}
        self._lock = anyio.Lock()
        self._closed = False
        self.outputs = OutputStore()

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` has begun: no session is started or kept after it."""
        return self._closed

    def existing(self, name: str) -> Session | None:
        """The live session called ``name``, without starting one."""
        session = self._sessions.get(name)
        return None if session is None or session.closed else session

    async def get(
        self, name: str, *, kernel: str | None = None, language: str | None = None
    ) -> Session:
        """The session called ``name``, started now if it has no live kernel.

        ``kernel``/``language`` choose the kernel of a session that starts now (the
        server's choice by default); they are ignored for a running one.
        """
        async with self._lock:
            if self._closed:
                raise LocalProtocolError("this MCP connection is closing")
            session = self.existing(name)
            if session is not None:
                await self._enter_folder(name, session)
                return session
            live = sum(not s.closed for s in self._sessions.values())
            if live >= self._limit:
                raise LocalProtocolError(
                    f"this connection already has {live} sessions (the limit); reuse one "
                    f"of: {', '.join(sorted(self._sessions))}"
                )
            if kernel is None and language is None:
                kernel, language = self._kernel, self._language
                await self._await_warm_kernel()
            if self._pool is not None:
                session = await self._pool.start_session(
                    kernel, language=language, file_root=self._file_root
                )
            else:
                session = await self._client.start_session(
                    kernel, language=language, file_root=self._file_root
                )
            if self.closed:  # closed while the kernel started: not kept, not leaked
                await _shut_down(session)
                raise LocalProtocolError("this MCP connection is closing")
            self._sessions[name] = session
            await self._enter_folder(name, session)
            return session

    async def prestart(self) -> None:
        """Start the default session now, before a call asks for it (stdio's one
        connection: its first call then finds the kernel started and in its folder). A
        failure is logged and left to that call, which starts again and reports it."""
        try:
            await self.get(DEFAULT_SESSION)
        except JupyterInterpError as exc:
            logger.warning("starting the connection's kernel failed: %s", exc)

    async def _enter_folder(self, name: str, session: Session) -> None:
        """Make the connection's folder a Python kernel's working directory (again after
        a restart) and the session's file root, as an absolute path."""
        if session.language != "python" or self._entered.get(name) == session.generation:
            return
        folder = session.file_root if session.file_root.startswith("/") else self._file_root
        code = (
            f"__import__('os').makedirs({folder!a}, exist_ok=True); "
            f"__import__('os').chdir({folder!a}); __import__('os').getcwd()"
        )
        result = await session.execute(code, store_history=False)
        if not result.ok or not result.result:
            logger.warning("cannot enter the connection's folder: %s", result.describe())
            return
        session.file_root = str(ast.literal_eval(result.result))
        self._entered[name] = session.generation

    async def _await_warm_kernel(self) -> None:
        """Let a warm start already in flight finish rather than race it with a cold one
        (bounded by one start: a failing warm start falls back to a cold one)."""
        if self._pool is None:
            return
        config = self._client.config
        with anyio.move_on_after(config.start_timeout + config.handshake_timeout):
            await self._pool.wait_ready()

    async def aclose(self) -> None:
        """Shut down every kernel of this connection (shielded, bounded). Idempotent."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        with anyio.CancelScope(shield=True), anyio.move_on_after(_SHUTDOWN_TIMEOUT):
            async with anyio.create_task_group() as tg:
                for session in sessions:
                    tg.start_soon(_shut_down, session)


async def _shut_down(session: Session) -> None:
    try:
        if session.language == "python" and session.file_root.startswith("/"):
            code = f"__import__('shutil').rmtree({session.file_root!a}, ignore_errors=True)"
            await session.execute(code, timeout=_SHUTDOWN_TIMEOUT / 3, store_history=False)
        await session.shutdown()
    except JupyterInterpError as exc:  # the connection's teardown must not fail
        logger.warning("shutting down kernel %s failed: %s", session.kernel_id, exc)
