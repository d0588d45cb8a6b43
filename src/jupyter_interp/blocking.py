"""The blocking API: ``Client``, ``Session``, ``KernelPool`` and ``local_server`` for
plain functions, threads and notebooks.

Strategy: one implementation. Each blocking object wraps the async one, which runs on
an anyio blocking portal (``anyio.from_thread.start_blocking_portal``): an event loop
in a background thread, owned by the outermost ``with`` (a ``Client`` or
``local_server``) and shared by everything opened from it. Methods have the async
ones' names, arguments, results and exceptions; ``stream`` is a blocking iterator.

Invariants:

* The caller's thread never runs an event loop of ours, so calls work from a thread
  whose own loop is running (a notebook, an asyncio app calling a sync tool).
* Thread-safe: any thread may call; the portal runs each call as a task, and a
  Session's executions still run one at a time in call order.
* Ctrl-C (``KeyboardInterrupt``) while a call waits cancels that call's task: an
  execution is then interrupted (restarted if it does not stop) by the async Session's
  own cancellation recovery, which completes before ``KeyboardInterrupt`` is re-raised.
* Leaving a ``stream`` early (``break``, an exception, ``close()``) closes the async
  stream, which interrupts the kernel, before the iterator is released.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, cast

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import client as _client
from . import local as _local
from . import pool as _pool
from .protocol.events import ExecutionEvent
from .protocol.files.replies import FileStat, UploadCommitted
from .protocol.result import ExecutionResult

if TYPE_CHECKING:
    import nbformat

    from . import session as _session
    from .files.transfer import FileTransfer
    from .notebook import ExecutionHistory
    from .protocol import rest

__all__ = ["Backend", "Client", "KernelPool", "Session", "local_server"]

P = ParamSpec("P")
T = TypeVar("T")

Backend = Literal["asyncio", "trio"]
#: blocking uploads take bytes or any iterable of bytes chunks
BlockingUploadSource = bytes | bytearray | memoryview | Iterable[bytes]


class _Runner:
    """A blocking portal plus the Ctrl-C-aware way to call into it."""

    def __init__(self, portal: BlockingPortal) -> None:
        self.portal = portal

    def call(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func`` on the portal and wait; on Ctrl-C, cancel it, wait, re-raise."""
        scopes: list[anyio.CancelScope] = []

        async def run() -> tuple[T] | None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                return (await func(*args, **kwargs),)
            return None  # cancelled after a KeyboardInterrupt below

        future = self.portal.start_task_soon(run)
        try:
            outcome = future.result()
        except KeyboardInterrupt:
            if scopes:
                self.portal.call(scopes[0].cancel)
                future.exception()  # waits for the task's shielded recovery to finish
            else:
                future.cancel()
            raise
        assert outcome is not None  # only a KeyboardInterrupt cancels the scope
        return outcome[0]

    def enter(self, manager: Any) -> AbstractContextManager[Any]:
        return self.portal.wrap_async_context_manager(manager)


class _Mirrored(Generic[T]):
    """A read-only attribute of the async object underneath (``self.aio``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: Session, owner: type | None = None) -> T:
        return cast(T, getattr(instance.aio, self._name))


class Session:
    """A live kernel; the blocking twin of ``jupyter_interp.Session``.

    Get one from ``Client.session``/``start_session`` or ``KernelPool.session``.
    """

    def __init__(self, runner: _Runner, session: _session.Session) -> None:
        self._runner = runner
        #: the async Session underneath
        self.aio = session
        #: file operations confined to ``file_root`` (``stat``, ``list_dir``, ``delete``, ...)
        self.files = _Files(runner, session.files)

    def __repr__(self) -> str:
        return f"<blocking {self.aio!r}>"

    kernel_id: _Mirrored[str] = _Mirrored()
    kernel_name: _Mirrored[str] = _Mirrored()
    session_id: _Mirrored[str] = _Mirrored()
    generation: _Mirrored[int] = _Mirrored()
    language: _Mirrored[str] = _Mirrored()
    closed: _Mirrored[bool] = _Mirrored()
    kernel_info: _Mirrored[Mapping[str, Any]] = _Mirrored()
    history: _Mirrored[ExecutionHistory] = _Mirrored()
    file_root: _Mirrored[str] = _Mirrored()

    def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
    ) -> ExecutionResult:
        """Run ``code`` and return the aggregated result (see ``Session.execute``)."""
        return self._runner.call(
            self.aio.execute,
            code,
            timeout=timeout,
            store_history=store_history,
            user_expressions=user_expressions,
        )

    def stream(
        self, code: str, *, timeout: float | None = None, store_history: bool = True
    ) -> Iterator[ExecutionEvent]:
        """Run ``code`` and yield typed events as they arrive, ``ExecutionFinished`` last.

        Leaving the loop early interrupts the kernel before the iterator is released.
        """
        events = self.aio.stream(code, timeout=timeout, store_history=store_history)
        try:
            while True:
                try:
                    event = self._runner.call(_anext, events)
                except StopAsyncIteration:
                    return
                yield event
        finally:
            self._runner.call(events.aclose)

    def upload(self, path: str, data: BlockingUploadSource) -> UploadCommitted:
        """Write ``data`` (bytes, or an iterable of bytes chunks) to ``path`` atomically."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._runner.call(self.aio.upload, path, data)
        return self._runner.call(self.aio.upload, path, _in_thread(iter(data)))

    def download(self, path: str) -> bytes:
        """Read ``path`` under the file root, verified against its sha256."""
        return self._runner.call(self.aio.download, path)

    def download_to(
        self, path: str, sink: Callable[[bytes], object] | str | os.PathLike[str]
    ) -> FileStat:
        """Stream ``path`` into ``sink(chunk)`` (called in a worker thread) or a local file."""
        if isinstance(sink, (str, os.PathLike)):
            return self._runner.call(self.aio.download_to, path, sink)
        write = sink

        async def to_sink(chunk: bytes) -> None:
            await anyio.to_thread.run_sync(write, chunk)

        return self._runner.call(self.aio.download_to, path, to_sink)

    def interrupt(self) -> None:
        self._runner.call(self.aio.interrupt)

    def restart(self) -> None:
        self._runner.call(self.aio.restart)

    def shutdown(self) -> None:
        self._runner.call(self.aio.shutdown)

    def detach(self) -> None:
        self._runner.call(self.aio.detach)

    def to_notebook(self, *, display_name: str | None = None) -> nbformat.NotebookNode:
        """This session's executions as an nbformat v4 notebook (see ``Session``)."""
        return self.aio.to_notebook(display_name=display_name)

    def save_notebook(
        self, path: str | os.PathLike[str], *, display_name: str | None = None
    ) -> None:
        self.aio.save_notebook(path, display_name=display_name)


async def _anext(events: AsyncIterator[ExecutionEvent]) -> ExecutionEvent:
    """``await events.__anext__()`` as a coroutine function (what a portal calls)."""
    return await events.__anext__()


async def _in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """An async iterable over a blocking iterator, each ``next`` in a worker thread."""
    while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
        yield chunk


class _Files:
    """``Session.files`` made blocking: each coroutine method becomes a blocking call."""

    def __init__(self, runner: _Runner, files: FileTransfer) -> None:
        self._runner = runner
        self._files = files

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._files, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._runner.call(method, *args, **kwargs)

        return call


class _SessionOpener:
    """What ``Client`` and ``KernelPool`` share: starting sessions, blocking."""

    _runner: _Runner
    _opener: _client.Client | _pool.KernelPool

    def start_session(
        self,
        kernel_name: str | None = None,
        *,
        language: str | None = None,
        env: Mapping[str, str] | None = None,
        path: str | None = "",
        file_root: str = "",
    ) -> Session:
        """Start a kernel (see the async ``start_session``); shut it down when done."""
        started = self._runner.call(
            self._opener.start_session,
            kernel_name,
            language=language,
            env=env,
            path=path,
            file_root=file_root,
        )
        return Session(self._runner, started)

    @contextmanager
    def session(
        self,
        kernel_name: str | None = None,
        *,
        language: str | None = None,
        env: Mapping[str, str] | None = None,
        file_root: str = "",
    ) -> Iterator[Session]:
        """A started Session whose kernel is shut down when the block exits."""
        manager = self._opener.session(kernel_name, language=language, env=env, file_root=file_root)
        with self._runner.enter(manager) as started:
            yield Session(self._runner, started)


class Client(_SessionOpener):
    """A connection to one Jupyter server; the blocking twin of ``jupyter_interp.Client``.

    Takes the async Client's arguments, plus ``backend`` (``"asyncio"`` or ``"trio"``)
    and ``backend_options`` for the portal's event loop. Use it in a ``with`` block.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        backend: Backend = "asyncio",
        backend_options: dict[str, Any] | None = None,
        **arguments: Any,
    ) -> None:
        self.aio = _client.Client(base_url, **arguments)
        self._opener = self.aio
        self._backend = backend
        self._backend_options = backend_options
        self._exit: list[AbstractContextManager[Any]] = []

    @classmethod
    def _on(cls, runner: _Runner, client: _client.Client) -> Client:
        """A blocking Client over an async one already entered on ``runner``."""
        self = cls.__new__(cls)
        self.aio = self._opener = client
        self._runner = runner
        self._exit = []
        return self

    def __repr__(self) -> str:
        return f"<blocking {self.aio!r}>"

    @property
    def config(self) -> Any:
        return self.aio.config

    def __enter__(self) -> Client:
        portal = start_blocking_portal(self._backend, self._backend_options)
        runner = _Runner(portal.__enter__())
        try:
            client = runner.enter(self.aio)
            client.__enter__()
        except BaseException:
            portal.__exit__(None, None, None)
            raise
        self._runner = runner
        self._exit = [portal, client]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        portal, client = self._exit
        try:
            client.__exit__(exc_type, exc, tb)
        finally:
            # a call abandoned half-way (Ctrl-C while a session was opening) leaves a
            # task behind: cancel it rather than wait for it
            self._runner.portal.call(self._runner.portal.stop, True)
            portal.__exit__(None, None, None)

    def api_status(self) -> rest.ApiStatus:
        return self._runner.call(self.aio.api_status)

    def kernelspecs(self) -> rest.KernelSpecs:
        return self._runner.call(self.aio.kernelspecs)

    def list_kernels(self) -> tuple[rest.KernelModel, ...]:
        return self._runner.call(self.aio.list_kernels)

    def get_kernel(self, kernel_id: str) -> rest.KernelModel:
        return self._runner.call(self.aio.get_kernel, kernel_id)

    def attach_session(self, kernel_id: str, *, file_root: str = "") -> Session:
        """Connect to a running kernel; leaving the Client disconnects without deleting."""
        attached = self._runner.call(self.aio.attach_session, kernel_id, file_root=file_root)
        return Session(self._runner, attached)


class KernelPool(_SessionOpener):
    """Warm kernels per kernelspec; the blocking twin of ``jupyter_interp.KernelPool``.

    Use it in a ``with`` block inside its Client's.
    """

    def __init__(self, client: Client, sizes: Mapping[str | None, int]) -> None:
        self._runner = client._runner
        self.aio = _pool.KernelPool(client.aio, sizes)
        self._opener = self.aio
        self._manager = self._runner.enter(self.aio)

    def __enter__(self) -> KernelPool:
        self._manager.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._manager.__exit__(exc_type, exc, tb)

    def idle(self, kernel_name: str) -> int:
        return self.aio.idle(kernel_name)

    def wait_ready(self) -> None:
        self._runner.call(self.aio.wait_ready)


@contextmanager
def local_server(
    *, backend: Backend = "asyncio", backend_options: dict[str, Any] | None = None, **arguments: Any
) -> Iterator[Client]:
    """A private Jupyter Server and a blocking ``Client`` for it (see ``local_server``)."""
    with start_blocking_portal(backend, backend_options) as portal:
        runner = _Runner(portal)
        with runner.enter(_local.local_server(**arguments)) as client:
            yield Client._on(runner, client)
