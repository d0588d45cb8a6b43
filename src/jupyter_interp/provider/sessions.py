"""The provider's sessions: find, start, re-attach, prepare and stop them.

Strategy: a ``SessionKeeper`` turns a session id into a live ``SessionRecord`` in the
current ``Runtime``: one that this runtime holds, else one re-attached from the server
(the kernel id follows from the session id, see ``identity``), else
``SessionNotFound``. Process memory only caches: what a session is (``known``), its
bounded history and the rare alias of a server that ignored our kernel id.

Tenancy: only the calls on an existing session (execute, files, history, get, stop),
which the gateway guards by ownership, re-attach. A start never returns, attaches to or
replaces a kernel that exists: an id that is live here, whose derived kernel the server
runs, or that is itself the id of a running kernel is refused (``SessionInUse``), and so
is a start the server answered with a kernel someone is connected to (Jupyter Server and
Kernel Gateway answer a start with an existing id with that kernel).

Invariants:

* Work on one session id (attach, start, stop) runs under that id's claim, so two
  concurrent first calls attach once and two starts make one kernel.
* A kernel deleted behind our back is noticed where waiting on it could hang or mislead:
  before a file transfer or a stop (one ``GET`` of the kernel), and after an execution
  that timed out or lost its reply (the record is dropped, ``SessionNotFound`` raised).
* Before running user code in a Python kernel, its working directory is the session
  folder (set once per kernel generation, so again after a restart).
* ``stop`` always deletes the kernel (a 404 counts as deleted); removing the folder is
  best effort and bounded.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from typing import Any

import anyio
import attrs

from ..client import Client
from ..errors import (
    JupyterInterpError,
    KernelDied,
    KernelNotFound,
    RemoteFileNotFound,
    UnsupportedKernel,
)
from ..protocol import rest
from ..protocol.files.languages import snippets_for
from ..protocol.files.replies import Deleted
from ..protocol.rest_models import KERNEL_ID
from ..protocol.result import ExecutionResult, ExecutionStatus
from ..session import Session
from .config import ProviderSettings
from .directory import SessionDirectory, SessionMeta
from .errors import SessionInUse, SessionNotFound
from .identity import SessionIdentity
from .results import now_iso
from .runtime import Runtime, SessionRecord

__all__ = ["SessionKeeper"]

logger = logging.getLogger("jupyter_interp.provider")

_CLEANUP_TIMEOUT = 10.0
#: outcomes after which we ask the server whether the kernel still exists
_SUSPICIOUS = frozenset(
    {
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.NO_REPLY,
        ExecutionStatus.CONNECTION_LOST,
        ExecutionStatus.KERNEL_DIED,
    }
)


def _live(runtime: Runtime, session_id: str) -> SessionRecord | None:
    record = runtime.records.get(session_id)
    return record if record is not None and not record.session.closed else None


def _client(runtime: Runtime) -> Client:
    assert runtime.client is not None, "Runtime.call() hands out running clients only"
    return runtime.client


class SessionKeeper:
    """Session bookkeeping of one provider; methods take the Runtime of the call."""

    def __init__(self, settings: ProviderSettings, identity: SessionIdentity) -> None:
        self._settings = settings
        self._identity = identity
        #: sessions this process has seen alive: the fallback of ``list_sessions``
        self.known: dict[str, SessionMeta] = {}
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._aliases: dict[str, str] = {}

    # -- bookkeeping ------------------------------------------------------------------

    def kernel_id(self, session_id: str) -> str:
        return self._aliases.get(session_id) or self._identity.kernel_id(session_id)

    def folder(self, session_id: str) -> str:
        return self._identity.folder(self._settings.file_root, session_id)

    def history(self, session_id: str) -> deque[dict[str, Any]]:
        return self._history.setdefault(session_id, deque(maxlen=self._settings.history_limit))

    def forget(self, session_id: str) -> None:
        self.known.pop(session_id, None)
        self._history.pop(session_id, None)
        self._aliases.pop(session_id, None)

    def info(self, meta: SessionMeta) -> dict[str, Any]:
        """The gateway's session dict (``metadata`` says where the session lives)."""
        return {
            "session_id": meta.session_id,
            "status": "active",
            "language": meta.language or meta.kernel_name,
            "created_at": meta.created_at or None,
            "metadata": {
                "kernel_id": meta.kernel_id,
                "kernel_name": meta.kernel_name,
                "working_dir": self.folder(meta.session_id),
            },
        }

    def directory(self, runtime: Runtime) -> SessionDirectory:
        if runtime.directory is None:
            runtime.directory = SessionDirectory(_client(runtime).http)
        return runtime.directory

    async def listing(self, runtime: Runtime) -> list[SessionMeta]:
        """Live sessions as the server knows them, else as this process knows them.

        A kernel a gateway lists names no session (its meta's session id is its kernel
        id, which no derived kernel id equals): it is shown only if this process knows it.
        """
        listed = await self.directory(runtime).list()
        if listed is None:
            return list(self.known.values())
        by_kernel = {meta.kernel_id: meta for meta in self.known.values()}
        named = [
            (meta, state)
            for meta, state in listed
            if meta.kernel_id in by_kernel or meta.session_id != meta.kernel_id
        ]
        return [by_kernel.get(meta.kernel_id, meta) for meta, state in named if state != "dead"]

    # -- finding and starting ---------------------------------------------------------

    async def resolve(self, runtime: Runtime, session_id: str) -> SessionRecord:
        """The live record of ``session_id``, re-attached if needed.

        Raises:
            SessionNotFound: the server has no kernel for it.
        """
        if not isinstance(session_id, str) or not session_id:
            raise SessionNotFound(str(session_id))
        record = _live(runtime, session_id)
        if record is not None:
            return record
        async with runtime.claims.hold(session_id):
            record = _live(runtime, session_id) or await self.attach(runtime, session_id)
            if record is None:
                self.forget(session_id)
                raise SessionNotFound(session_id)
            runtime.records[session_id] = record
            return record

    async def attach(self, runtime: Runtime, session_id: str) -> SessionRecord | None:
        """Connect to the session's running kernel; None if the server has no such kernel
        (or it turns out dead while we connect)."""
        client = _client(runtime)
        kernel_id = self.kernel_id(session_id)
        folder = self.folder(session_id)
        try:
            session = await client.attach_session(kernel_id, file_root=folder)
        except (KernelNotFound, KernelDied):  # KernelDied: dropped while we connected
            return None
        meta = self.known.get(session_id) or SessionMeta(
            session_id=session_id,
            kernel_id=kernel_id,
            kernel_name=session.kernel_name,
            language=session.language,
            created_at=now_iso(),
        )
        recorded = await self.directory(runtime).register(meta)
        meta = attrs.evolve(meta, created_at=recorded.created_at)
        self.known[session_id] = meta
        return SessionRecord(meta=meta, session=session, folder=folder)

    async def refuse_if_in_use(self, runtime: Runtime, session_id: str) -> None:
        """Raise ``SessionInUse`` if ``session_id`` names a session or kernel that exists.

        Asks the server (a replica may hold the session) for the derived kernel and, when
        the id has a kernel id's shape, for a kernel of that very id. A record held here
        whose kernel is gone (deleted or culled behind our back) is dropped, not in use.
        """
        record = _live(runtime, session_id)
        if record is not None and await self.exists(runtime, record):
            raise SessionInUse(session_id)
        client = _client(runtime)
        candidates = [self.kernel_id(session_id)]
        if KERNEL_ID.fullmatch(session_id):
            candidates.append(session_id)
        for kernel_id in candidates:
            with contextlib.suppress(KernelNotFound):
                await client.get_kernel(kernel_id)
                raise SessionInUse(session_id)

    async def start(
        self,
        runtime: Runtime,
        session_id: str,
        *,
        chosen: bool,
        kernel_name: str | None,
        language: str | None,
        env: dict[str, str],
    ) -> SessionRecord:
        """Start a fresh kernel with the session's derived id and attach to it.

        Whatever this process remembered of the id (history, alias) is dropped first,
        and a ``chosen`` (caller-given) id's folder is emptied: nothing of an earlier
        session of that id reaches the new one. As in ``Client.start_session``, a start
        that fails for a passing reason (a kernel dead at birth, a 5xx) is deleted and
        tried again, with the same kernel id. A start the server answers with a kernel
        that already has connections, or that has a second connection once ours is
        open, is someone else's (two replicas racing for one id): ``SessionInUse``, and
        that kernel is left alone.
        """
        self.forget(session_id)
        client = _client(runtime)
        name = await self._kernel_for(client, kernel_name, language)
        wanted = self.kernel_id(session_id)
        folder = self.folder(session_id)
        request = rest.start_kernel(name, env=client.config.start_env(env), path="")

        def refuse_a_used_kernel(model: rest.KernelModel) -> None:
            if model.connections:
                raise SessionInUse(session_id)

        session = await client._start_and_open(
            request,
            name,
            kernel_id=wanted,
            file_root_for=lambda _kernel_id: folder,
            owned=False,
            cleanup_timeout=_CLEANUP_TIMEOUT,
            vet=refuse_a_used_kernel,
        )
        kernel_id = session.kernel_id
        try:
            await _refuse_if_shared(client, session, session_id)
            if chosen:  # a stopped session of this id may have left its folder behind
                await _remove_folder(session, folder, self._settings.file_root)
        except SessionInUse:
            raise
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                await session.shutdown()
            raise
        if kernel_id != wanted:
            logger.warning(
                "the server chose its own kernel id for session %r: only this process can "
                "re-attach it (Jupyter Server 2, Kernel Gateway 3 and Enterprise Gateway "
                "honour the requested id)",
                session_id,
            )
            self._aliases[session_id] = kernel_id
        meta = SessionMeta(
            session_id=session_id,
            kernel_id=kernel_id,
            kernel_name=session.kernel_name,
            language=session.language or (language or ""),
            created_at=now_iso(),
        )
        meta = await self.directory(runtime).register(meta)
        self.known[session_id] = meta
        logger.info(
            "session %s started on kernel %s (%s)", session_id, kernel_id, session.kernel_name
        )
        return SessionRecord(meta=meta, session=session, folder=folder, started_here=True)

    async def _kernel_for(
        self, client: Client, kernel_name: str | None, language: str | None
    ) -> str:
        """The kernelspec to start: the given or configured one, unless its language differs."""
        name = kernel_name or self._settings.kernel_name
        if kernel_name or not language:
            return name
        spec = (await client.kernelspecs()).specs.get(name)
        if spec is not None and spec.language.lower() == language.strip().lower():
            return name
        return await client.resolve_kernel_name(None, language) or name

    # -- health of a record -----------------------------------------------------------

    async def exists(self, runtime: Runtime, record: SessionRecord) -> bool:
        """Whether the server still has the record's kernel (drops the record if not)."""
        try:
            await _client(runtime).get_kernel(record.meta.kernel_id)
        except KernelNotFound:
            logger.warning("the kernel of session %s is gone", record.meta.session_id)
            if runtime.records.get(record.meta.session_id) is record:
                del runtime.records[record.meta.session_id]
            with anyio.CancelScope(shield=True):
                await record.session.detach()
            return False
        return True

    async def check_result(
        self, runtime: Runtime, record: SessionRecord, result: ExecutionResult
    ) -> None:
        """Raise ``SessionNotFound`` if ``result`` ended badly because the kernel is gone."""
        if result.status in _SUSPICIOUS and not await self.exists(runtime, record):
            self.forget(record.meta.session_id)
            raise SessionNotFound(record.meta.session_id)

    # -- using a record ---------------------------------------------------------------

    async def prepare(self, runtime: Runtime, record: SessionRecord) -> None:
        """Make the session folder the kernel's working directory (again after a restart)."""
        session = record.session
        if record.setup_generation == session.generation or session.language != "python":
            return
        record.setup_generation = session.generation
        code = (
            f"__import__('os').makedirs({record.folder!a}, exist_ok=True); "
            f"__import__('os').chdir({record.folder!a})"
        )
        result = await session.execute(
            code, timeout=self._settings.execution_timeout, store_history=False
        )
        await self.check_result(runtime, record, result)
        if not result.ok:
            logger.warning(
                "cannot use %s as the working directory of session %s: %s",
                record.folder, record.meta.session_id, result.describe(),
            )  # fmt: skip

    # -- stopping ---------------------------------------------------------------------

    async def stop(self, runtime: Runtime, session_id: str) -> None:
        """Delete the folder (bounded, best effort) and the kernel; forget the session."""
        client = _client(runtime)
        record = _live(runtime, session_id)
        runtime.records.pop(session_id, None)
        if record is not None and not await self.exists(runtime, record):
            record = None
        elif self._settings.cleanup_files:
            with anyio.move_on_after(_CLEANUP_TIMEOUT):
                try:
                    record = record or await self.attach(runtime, session_id)
                    if record is not None:
                        await _remove_folder(
                            record.session, record.folder, self._settings.file_root
                        )
                except JupyterInterpError as exc:
                    logger.warning("removing the folder of session %s failed: %s", session_id, exc)
        if record is not None:
            await record.session.shutdown()
        else:
            await _delete_kernel(client, self.kernel_id(session_id))
        self.forget(session_id)
        logger.info("session %s stopped", session_id)


async def _delete_kernel(client: Client, kernel_id: str) -> None:
    with contextlib.suppress(KernelNotFound):  # already gone counts as deleted
        await client.http.call(rest.delete_kernel(kernel_id), rest.parse_delete_kernel)


async def _refuse_if_shared(client: Client, session: Session, session_id: str) -> None:
    """Detach and raise ``SessionInUse`` if another client is connected to our new kernel."""
    model = await client.get_kernel(session.kernel_id)
    if model.connections > 1:
        with anyio.CancelScope(shield=True):
            await session.detach()
        raise SessionInUse(session_id)


async def _remove_folder(session: Session, folder: str, file_root: str) -> None:
    """Delete a session folder through the kernel (confined to the file root)."""
    name = folder.rsplit("/", 1)[-1]
    try:
        snippets = snippets_for(session.language, root=file_root)
    except UnsupportedKernel:
        return  # no file operations in this language: nothing was written through us
    code = snippets.delete(name, recursive=True)
    result = await session.execute(code, timeout=_CLEANUP_TIMEOUT, store_history=False)
    with contextlib.suppress(RemoteFileNotFound):  # nothing was ever written
        Deleted.from_reply(result)
