"""Session: one kernel, one execution at a time, with deadlines and recovery.

Strategy: the sans-I/O ``KernelConnection`` does all the protocol work; the WebSocket,
the reader task, readiness and reconnects live in the base class ``SessionChannel``
(``channel``); an execution's wait, deadline and recovery in
``ExecutionRun``. A Session runs inside its own task group, nested in its Client's.

Invariants:

* Executions run one at a time in call order (``ExecutionGate``, see
  ``stream``); concurrent callers queue, none fails, none sees another's
  output. A stream its own task abandoned is closed (interrupted) when that task asks
  for the next execution, instead of blocking it forever.
* Deadlines are total per execution. On expiry (or cancellation of the caller, or an
  abandoned stream): interrupt over REST, wait ``interrupt_grace`` for the kernel to
  stop, else restart it. The result keeps the partial output and says which happened.
* Kernel restart or death ends the in-flight execution at once (typed status) and bumps
  ``generation``; the channel then reopens the WebSocket (see ``channel``).
* A session whose kernel is gone raises ``KernelUnavailable``/``KernelDied`` on use.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio

from .. import telemetry
from ..errors import InvalidArgument, JupyterInterpError, SessionClosed
from ..files.sources import UploadSource
from ..files.transfer import FileTransfer
from ..notebook import ExecutionHistory, save_notebook, to_notebook
from ..protocol.events import ExecutionEvent, ExecutionFinished
from ..protocol.files.replies import FileStat, UploadCommitted
from ..protocol.result import ExecutionResult
from .channel import SessionChannel
from .reconnect import request_reconnect
from .run import ExecutionRun
from .stream import ExecutionGate, ExecutionStream

if TYPE_CHECKING:
    import nbformat

    from ..config import ClientConfig
    from .keepalive import KeepAlive
    from .kernel_link import KernelLink

__all__ = ["Session"]


class Session(SessionChannel):
    """A live kernel. Create with ``Client.start_session`` / ``attach_session``.

    Attributes:
        kernel_id: the server's kernel id (stable across restarts).
        kernel_name: the kernelspec name.
        session_id: our client session id (WebSocket URL and message headers).
    """

    def __init__(
        self,
        link: KernelLink,
        config: ClientConfig,
        *,
        file_root: str = "",
        keep_alive: KeepAlive | None = None,
    ) -> None:
        super().__init__(link, config, keep_alive)
        self.file_root = file_root
        self._exec_lock = ExecutionGate()
        self._delete_pending = True  # until shutdown deleted the kernel, or detach
        #: every file operation (stat, list, delete, ...) confined to ``file_root``
        self.files = FileTransfer(self)
        #: the last ``config.history_size`` user executions, for ``to_notebook``
        self.history = ExecutionHistory(config.history_size)

    def __repr__(self) -> str:
        return f"<Session kernel_id={self.kernel_id!r} generation={self.generation}>"

    # -- public surface -------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped on every kernel restart or death: state before it is lost."""
        return self._conn.generation

    @property
    def language(self) -> str:
        """The kernel's language, from its kernel_info_reply (e.g. ``"python"``)."""
        info = self.kernel_info.get("language_info")
        name = info.get("name") if isinstance(info, Mapping) else None
        return str(name).lower() if name else ""

    @property
    def closed(self) -> bool:
        return self._stopped.is_set()

    async def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
    ) -> ExecutionResult:
        """Run ``code`` and return the aggregated result.

        Args:
            code: source for the kernel.
            timeout: total seconds for this execution (None: no deadline). On expiry
                the kernel is interrupted, then restarted if it does not stop.
            store_history: whether the kernel counts this execution.
            user_expressions: expressions evaluated after the code; values in
                ``result.user_expressions``.

        Raises:
            SessionClosed, KernelUnavailable, KernelDied: the session cannot run code.
            InvalidArgument: ``timeout`` is not a positive number (0, negative, NaN).
            LocalProtocolError: ``code`` is not valid UTF-8 text, or the request would
                exceed the server's WebSocket message cap (``max_send_message_size``,
                10 MiB): upload large data as a file instead.
        """
        async with self._exec_lock:
            with telemetry.execution(self, code) as observe:
                return await self._execute_locked(
                    code,
                    timeout=timeout,
                    store_history=store_history,
                    user_expressions=user_expressions,
                    on_end=self._recorder(code, observe),
                )

    def stream(
        self, code: str, *, timeout: float | None = None, store_history: bool = True
    ) -> ExecutionStream:
        """Run ``code`` and yield typed events as they arrive, ``ExecutionFinished`` last.

        The execution starts at the first iteration; iterate with ``async for``, or
        ``async with session.stream(code) as events:`` to close the stream on leaving the
        block. Closing it before ``ExecutionFinished`` counts as cancellation: the kernel
        is interrupted. A stream left early without closing is closed (interrupted) when
        its task asks this session for anything else. Raises, when iterated, what
        ``execute`` raises.
        """
        return ExecutionStream(
            self._stream_events(code, timeout=timeout, store_history=store_history),
            self._exec_lock.open_streams,
        )

    async def _stream_events(
        self, code: str, *, timeout: float | None, store_history: bool
    ) -> AsyncGenerator[ExecutionEvent, None]:
        async with self._exec_lock:
            with telemetry.execution(self, code, current=False) as observe:
                execution = self._run_execution(
                    code,
                    timeout=timeout,
                    everything=True,
                    store_history=store_history,
                    on_end=self._recorder(code, observe),
                )
                async with aclosing(execution) as events:
                    async for event in events:
                        yield event

    async def upload(self, path: str, data: UploadSource) -> UploadCommitted:
        """Write ``data`` (bytes or an async iterable of bytes) to ``path`` under the file
        root: chunked, sha256-verified by the kernel, atomically replaced."""
        with telemetry.transfer(self, "upload") as done:
            committed = await self.files.upload(path, data)
            done(committed.size, self.files.route)
        return committed

    async def download(self, path: str) -> bytes:
        """Read ``path`` under the file root, verified against its sha256."""
        with telemetry.transfer(self, "download") as done:
            data = await self.files.download(path)
            done(len(data), self.files.route)
        return data

    async def download_to(
        self, path: str, sink: Callable[[bytes], Awaitable[object]] | str | os.PathLike[str]
    ) -> FileStat:
        """Stream ``path`` into an async ``sink(chunk)`` or a local file path (atomic)."""
        with telemetry.transfer(self, "download") as done:
            if isinstance(sink, (str, os.PathLike)):
                stat = await self.files.download_file(path, sink)
            else:
                stat = await self.files.download_to(path, sink)
            done(stat.size, self.files.route)
        return stat

    async def interrupt(self) -> None:
        """Interrupt the kernel (REST; works for every kernel and gateway)."""
        self._check_open()
        await self._link.interrupt()

    async def restart(self) -> None:
        """Restart the kernel; an in-flight execution ends with ``KERNEL_RESTARTED``."""
        self._check_open()
        await self._restart_kernel("restarted on request")

    async def shutdown(self) -> None:
        """Delete the kernel on the server and close the connection. Idempotent; after
        a failed delete (the error is raised), calling it again retries the delete."""
        if self._stopped.is_set() and not self._delete_pending:
            return
        try:
            with anyio.CancelScope(shield=True):
                await self._link.delete()
            self._delete_pending = False
        finally:
            await self._stop(SessionClosed("the session was shut down"))

    async def detach(self) -> None:
        """Close our connection but leave the kernel running (re-attach by kernel_id)."""
        self._delete_pending = False
        await self._stop(SessionClosed("the session was detached from its kernel"))

    def to_notebook(self, *, display_name: str | None = None) -> nbformat.NotebookNode:
        """The recorded executions (``history``) as an nbformat v4 notebook.

        Only the user's ``execute``/``stream`` calls appear, never file transfers.
        ``display_name``: the kernelspec's display name (default: its name).

        Raises:
            MissingDependency: nbformat is not installed (the ``notebook`` extra).
        """
        return to_notebook(
            self.history,
            kernel_name=self.kernel_name,
            kernel_info=self.kernel_info,
            display_name=display_name,
        )

    def save_notebook(
        self, path: str | os.PathLike[str], *, display_name: str | None = None
    ) -> None:
        """Write ``to_notebook()`` to ``path`` (validated ``.ipynb``)."""
        save_notebook(self.to_notebook(display_name=display_name), path)

    async def _restart_kernel(self, reason: str) -> list[ExecutionFinished]:
        """REST restart, then a fresh WebSocket; returns the executions it ended.

        The connection is told *before* the request goes out, so output of the new
        kernel that overtakes the REST answer is not mistaken for a second restart.
        """
        with telemetry.kernel_event(self, "restart", reason):
            ended = [
                e for e in self._conn.notice_restart(reason) if isinstance(e, ExecutionFinished)
            ]
            for event in ended:
                await self._dispatch(event)
            await self._link.restart()
            await request_reconnect(self, reason)
        return ended

    # -- executions -----------------------------------------------------------------

    def _recorder(
        self, code: str, observe: Callable[[ExecutionResult], None]
    ) -> Callable[[ExecutionResult], None]:
        """How a user execution's end is recorded: telemetry, then the history."""

        def record(result: ExecutionResult) -> None:
            observe(result)
            self.history.record(code, result)

        return record

    async def _execute_locked(
        self, code: str, *, on_end: Callable[[ExecutionResult], None] | None = None, **options: Any
    ) -> ExecutionResult:
        run = self._start_execution(code, everything=False, **options)
        try:
            await self._send(run.request, for_execution=run.msg_id)
            finished = await run.finished()
        finally:
            self._end_execution(run, on_end)
        return finished.result

    async def _run_execution(
        self,
        code: str,
        *,
        everything: bool,
        on_end: Callable[[ExecutionResult], None] | None = None,
        **options: Any,
    ) -> AsyncGenerator[ExecutionEvent, None]:
        """The execution's events; ``on_end(result)`` once it ended, however it ended
        (an abandoned stream's recovered result too)."""
        run = self._start_execution(code, everything=everything, **options)
        try:
            await self._send(run.request, for_execution=run.msg_id)
            # closed here, in this task, when our consumer leaves early: that runs
            # the run's recovery (interrupt) before the lock is released
            async with aclosing(run.events()) as events:
                async for event in events:
                    yield event
        finally:
            self._end_execution(run, on_end)

    async def _nudge(self) -> None:
        """Open a second WebSocket to the kernel and close it again.

        Why: ipykernel 7.0-7.3 can leave a request unread until a new ZMQ connection
        reaches its shell socket (ipykernel issue 1554); more messages on our own
        connection do not wake it. The server connects new ZMQ streams for every new
        WebSocket, which does. Failures are ignored: this only speeds a recovery up.
        Skipped while our own WebSocket is down: closing the last connection to a kernel
        makes Jupyter Server buffer its output for that connection's session, and our
        reconnect (another session) would have it discarded.
        """
        if not self._ready.is_set():
            return
        with (
            contextlib.suppress(JupyterInterpError),
            anyio.move_on_after(self._config.request_timeout),
        ):
            ws = await self._link.open_websocket(uuid.uuid4().hex)
            await ws.aclose()

    def _start_execution(
        self,
        code: str,
        *,
        timeout: float | None,
        everything: bool,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
        buffers: tuple[bytes, ...] = (),
        nudges_unread: bool = True,
    ) -> ExecutionRun:
        """Register an execution with the connection and route its events to a new run
        (``nudges_unread``: see ``run``).

        Raises:
            SessionClosed: the session is closed.
            InvalidArgument: ``timeout`` is not a positive number (a ``ValueError``).
            LocalProtocolError: the request is not valid text, or it would exceed the
                server's WebSocket message cap (``max_send_message_size``).
        """
        if timeout is not None and not timeout > 0:  # NaN included
            raise InvalidArgument(f"timeout must be a positive number of seconds, got {timeout}")
        self._check_open()
        self._config.check_execute_size(code, user_expressions, buffers)
        tracker, request = self._conn.execute(
            code,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=self._config.stdin.allows_input,
            buffers=buffers,
        )
        run = ExecutionRun(
            self,
            tracker,
            request,
            timeout=timeout,
            everything=everything,
            nudges_unread=nudges_unread,
        )
        self._routes[run.msg_id] = run.mailbox
        return run

    def _end_execution(
        self, run: ExecutionRun, on_end: Callable[[ExecutionResult], None] | None = None
    ) -> None:
        self._routes.pop(run.msg_id, None)
        run.mailbox.close()
        if on_end is not None and run.outcome is not None:
            on_end(run.outcome.result)
