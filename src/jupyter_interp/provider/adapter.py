"""A drop-in code-interpreter provider for the agentic-primitives-gateway registry.

Configure it in the gateway's YAML with ``backend:
"jupyter_interp.provider.JupyterCodeInterpreterProvider"`` and the seed's ``config``
keys (see ``docs/gateway.md``). It keeps the contract of the gateway's own Jupyter
provider and fixes its defects: total deadlines with interrupt/restart, kernel death
noticed at once, rich outputs kept (saved as files the gateway's file route can fetch),
per-session serialisation, token only in headers, chunked verified confined file
transfer, bounded output and history, sessions that any replica can re-attach, and a
health check gateways accept.

Theory of operation:

* **Runtime.** Construction parses the settings and does nothing else. The first call
  starts an owner task on the running event loop that holds a ``Client`` open until
  ``close()`` (``runtime``); calls borrow it. ``healthcheck()`` uses its own
  short-lived Client, because the gateway runs health checks on a fresh event loop in
  a worker thread.
* **Sessions.** A session id and the ``session_secret`` determine its kernel id and its
  folder (``identity``); its record lives on the server
  (``directory``). Any provider instance with the same secret re-attaches a
  session on first use of a call on it; ``start_session`` only ever starts a fresh
  kernel and refuses an id in use (see *Tenancy* in ``docs/gateway.md``). Per-id claims
  make concurrent start/attach/stop of one id do the work once; the Session serialises
  executions and file transfers.
* **Files.** Each session has a folder ``<file_root>/jupyter-interp-<32 hex digits>`` on
  the kernel's side, named by a keyed hash that reveals neither the session id nor the
  kernel id: file names are relative to it, and it is the kernel's working
  directory (set on first use and again after a kernel restart, Python kernels), so
  code opens uploaded files by name and writes files that ``download_file`` can fetch.
  ``stop_session`` deletes it (``cleanup_files``).
* **History** is per session, bounded, and kept in this process only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from typing import Any, TypeVar

from ..client import Client
from ..errors import (
    JupyterInterpError,
    KernelError,
    LocalProtocolError,
    RemoteFileNotFound,
    SessionClosed,
)
from .config import ProviderSettings
from .errors import (
    InvalidSessionId,
    SessionFileNotFound,
    SessionInUse,
    SessionLimitReached,
    SessionNotFound,
    SessionRefused,
)
from .health import HealthProblem, check_health
from .identity import (
    SessionIdentity,
    check_session_id,
    generated_secret,
    new_session_id,
)
from .lifetime import SessionCap, SessionCuller, Usage
from .outputs import save_outputs
from .results import execution_dict, history_entry, language_refusal, refused_dict
from .runtime import ClientOwner, Runtime, SessionRecord
from .sessions import SessionKeeper

__all__ = [
    "HealthProblem",
    "InvalidSessionId",
    "JupyterCodeInterpreterProvider",
    "SessionFileNotFound",
    "SessionInUse",
    "SessionLimitReached",
    "SessionNotFound",
    "SessionRefused",
]

logger = logging.getLogger("jupyter_interp.provider")

T = TypeVar("T")

_GATEWAY_BASE = "agentic_primitives_gateway.primitives.code_interpreter.base"


def _register_with_gateway() -> None:
    """Make instances pass the gateway's ``isinstance`` check when it is installed."""
    import importlib

    try:
        base = importlib.import_module(_GATEWAY_BASE).CodeInterpreterProvider
    except Exception:  # not installed (the usual case here) or broken: work without it
        return
    if not issubclass(JupyterCodeInterpreterProvider, base):
        base.register(JupyterCodeInterpreterProvider)


def _option(options: dict[str, Any], key: str) -> str | None:
    value = options.pop(key, None)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SessionRefused(f"the session option {key!r} must be a string")
    return value


class JupyterCodeInterpreterProvider:
    """Code interpreter sessions on a Jupyter Server, Kernel Gateway or Enterprise Gateway.

    The seed's keywords fall back to ``JUPYTER_URL``, ``JUPYTER_TOKEN``,
    ``JUPYTER_KERNEL`` and ``JUPYTER_FILE_ROOT`` when missing or blank, then to the
    seed's defaults (``http://localhost:8888``, no token, ``python3``, 30 s, ``/tmp``);
    every value may be given as a string. Unknown keywords are logged and ignored. Our
    other keywords are listed in ``docs/gateway.md`` (see ``ProviderSettings``).

    Raises:
        LocalProtocolError: a value has the wrong type or is out of range.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        kernel_name: str | None = None,
        execution_timeout: float | str | None = None,
        file_root: str | None = None,
        **config: Any,
    ) -> None:
        keywords = {
            "base_url": base_url,
            "token": token,
            "kernel_name": kernel_name,
            "execution_timeout": execution_timeout,
            "file_root": file_root,
            **config,
        }
        self.settings, unknown = ProviderSettings.from_keywords(keywords)
        if unknown:
            logger.warning("ignoring unknown configuration keys: %s", ", ".join(unknown))
        self._client_config = self.settings.client_config()
        identity = SessionIdentity(self.settings.session_secret or generated_secret())
        self._keeper = SessionKeeper(self.settings, identity)
        self._usage = Usage()
        idle, cap = self.settings.idle_timeout, self.settings.max_sessions
        self._culler = SessionCuller(self._keeper, self._usage, idle) if idle else None
        self._cap = SessionCap(self._keeper, cap) if cap else None
        self._owner = ClientOwner(
            lambda: Client(config=self._client_config),
            drain_timeout=self.settings.execution_timeout + self._client_config.interrupt_grace,
            background=self._culler.run if self._culler else None,
        )
        _register_with_gateway()

    def __repr__(self) -> str:
        return f"<JupyterCodeInterpreterProvider {self.settings.base_url!r}>"

    # -- sessions ---------------------------------------------------------------------

    async def start_session(
        self, session_id: str | None = None, config: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start a session on a fresh kernel; never hand out one that exists.

        ``session_id`` (optional) must be one routes can address; one in use, by a
        session here or on any replica or as the id of a running kernel, is refused.
        ``config`` may carry ``language`` (a kernelspec of that language is used when
        the configured one differs), ``kernel_name`` and ``env`` (``KERNEL_*``
        variables for Kernel/Enterprise Gateway); other keys are ignored.

        Raises:
            InvalidSessionId, SessionInUse, SessionRefused (a bad option): all
                ``ValueError`` (the gateway's HTTP 400), raised before any kernel starts.
        """
        options = dict(config or {})
        language = _option(options, "language")
        kernel_name = _option(options, "kernel_name")
        env = options.pop("env", None) or {}
        if not isinstance(env, Mapping):
            raise SessionRefused("the session option 'env' must be a mapping")
        if options:
            logger.debug("ignoring session options: %s", ", ".join(sorted(options)))
        chosen = session_id is not None and session_id != ""
        sid = check_session_id(session_id) if chosen else new_session_id()
        keeper = self._keeper
        async with self._owner.use() as runtime, runtime.claims.hold(sid):
            with self._usage.using(sid):
                if chosen:
                    await keeper.refuse_if_in_use(runtime, sid)
                async with self._cap.slot(runtime) if self._cap else nullcontext():
                    record = await keeper.start(
                        runtime, sid, chosen=chosen, kernel_name=kernel_name,
                        language=language, env=dict(env),
                    )  # fmt: skip
                runtime.records[sid] = record
                if self._cap:
                    await self._cap.confirm(runtime, sid)
        return keeper.info(record.meta)

    async def stop_session(self, session_id: str) -> None:
        """Shut the session's kernel down and delete its folder. Idempotent."""
        if not session_id:
            return
        async with self._owner.use() as runtime, runtime.claims.hold(session_id):
            await self._keeper.stop(runtime, session_id)
        self._usage.forget(session_id)

    async def list_sessions(self, status: str | None = None) -> list[dict[str, Any]]:
        """Live sessions as the server records them (see ``directory``)."""
        if status not in (None, "", "active"):
            return []  # stopped sessions are not kept
        async with self._owner.use() as runtime:
            metas = await self._keeper.listing(runtime)
        return [self._keeper.info(meta) for meta in metas]

    async def get_session(self, session_id: str) -> dict[str, Any]:
        """The session's description. Raises ``SessionNotFound`` (a KeyError)."""
        record = await self._on_session(session_id, _record_of)
        return self._keeper.info(record.meta)

    async def get_execution_history(
        self, session_id: str, *, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The last ``limit`` executions this process ran in the session, oldest first."""
        await self._on_session(session_id, _record_of)
        entries = list(self._keeper.history(session_id))
        return entries[-limit:] if limit > 0 else []

    # -- code and files ---------------------------------------------------------------

    async def execute(self, session_id: str, code: str, language: str = "python") -> dict[str, Any]:
        """Run ``code``; a failing program is data (``exit_code``, ``error``), not an error.

        Code over the server's WebSocket message cap is not sent (the server would close
        the connection): the result says so (``status`` "refused") and the session goes on.
        ``language`` must be the session kernel's (``"python"``, the default, always
        passes): code in another one is not run, and the result says so
        (``status`` ``"language_mismatch"``, ``exit_code`` 1).

        Raises:
            SessionNotFound: no such session (a ValueError).
        """
        keeper = self._keeper

        async def run(runtime: Runtime, record: SessionRecord) -> dict[str, Any]:
            try:
                self._client_config.check_execute_size(code)
            except LocalProtocolError as exc:  # the server would drop the connection
                return refused_dict(record.meta.session_id, str(exc))
            refused = language_refusal(record.meta.session_id, language, record.session.language)
            if refused is not None:
                return refused
            await keeper.prepare(runtime, record)
            result = await record.session.execute(code, timeout=self.settings.execution_timeout)
            await keeper.check_result(runtime, record, result)
            saved = await save_outputs(record.session, result)
            return execution_dict(
                record.meta.session_id,
                result,
                cap=self.settings.max_output_bytes,
                saved=saved,
                notes=self.settings.output_notes,
            )

        outcome = await self._on_session(session_id, run)
        keeper.history(session_id).append(history_entry(code, language, outcome))
        return outcome

    async def upload_file(self, session_id: str, filename: str, content: bytes) -> dict[str, Any]:
        """Write ``content`` to ``filename`` in the session folder (chunked, atomic, verified).

        Raises:
            SessionNotFound: no such session. PathNotConfined: ``filename`` leaves the
                folder (absolute, ``..``). PathConflict: it passes through a file or
                names a directory. All are ValueErrors.
        """

        async def upload(runtime: Runtime, record: SessionRecord) -> dict[str, Any]:
            await self._require_kernel(runtime, record)
            committed = await record.session.upload(filename, content)
            return {
                "filename": filename,
                "size": committed.size,
                "session_id": session_id,
                "sha256": committed.sha256,
            }

        return await self._on_session(session_id, upload)

    async def download_file(self, session_id: str, filename: str) -> bytes:
        """The bytes of ``filename`` in the session folder (verified against its sha256).

        Raises:
            SessionNotFound, SessionFileNotFound, PathNotConfined, PathConflict: all
                ValueErrors.
        """

        async def download(runtime: Runtime, record: SessionRecord) -> bytes:
            await self._require_kernel(runtime, record)
            try:
                return await record.session.download(filename)
            except RemoteFileNotFound as exc:
                raise SessionFileNotFound(
                    f"no file {filename!r} in session {session_id!r}: {exc}"
                ) from exc

        return await self._on_session(session_id, download)

    # -- provider lifecycle -----------------------------------------------------------

    async def healthcheck(self) -> bool | str:
        """True when the server takes our token and offers the configured kernelspec.

        Otherwise a falsy ``HealthProblem`` saying what is wrong (see ``health``). Works
        on any event loop (the gateway checks on a fresh one in a worker thread) and
        never raises.
        """
        return await check_health(self.settings, self._client_config)

    async def close(self) -> None:
        """Disconnect every session and stop the client; kernels keep running.

        Calls in flight may finish first (bounded by the execution timeout). With
        ``stop_sessions_on_close``, the sessions this instance started are stopped. The
        provider stays usable: a later call starts a new client and re-attaches.
        """

        async def last_words(runtime: Runtime) -> None:
            if not self.settings.stop_sessions_on_close:
                return
            for sid in [sid for sid, record in runtime.records.items() if record.started_here]:
                try:
                    await self._keeper.stop(runtime, sid)
                except JupyterInterpError as exc:
                    logger.warning("stopping session %s on close failed: %s", sid, exc)

        await self._owner.aclose(last_words)

    # -- internals --------------------------------------------------------------------

    async def _on_session(
        self, session_id: str, operation: Callable[[Runtime, SessionRecord], Awaitable[T]]
    ) -> T:
        """Run ``operation`` on the session, re-attaching once if its connection went away."""
        with self._usage.using(session_id):
            return await self._on_live_session(session_id, operation)

    async def _on_live_session(
        self, session_id: str, operation: Callable[[Runtime, SessionRecord], Awaitable[T]]
    ) -> T:
        async with self._owner.use() as runtime:
            record = await self._keeper.resolve(runtime, session_id)
            try:
                return await operation(runtime, record)
            except (KernelError, SessionClosed) as exc:
                if not record.session.closed:
                    raise
                logger.info("session %s lost its connection (%s); re-attaching", session_id, exc)
                if runtime.records.get(session_id) is record:
                    del runtime.records[session_id]
            return await operation(runtime, await self._keeper.resolve(runtime, session_id))

    async def _require_kernel(self, runtime: Runtime, record: SessionRecord) -> None:
        """A file transfer waits on the kernel without a deadline: check it exists first."""
        if not await self._keeper.exists(runtime, record):
            self._keeper.forget(record.meta.session_id)
            raise SessionNotFound(record.meta.session_id)


async def _record_of(_runtime: Runtime, record: SessionRecord) -> SessionRecord:
    return record


_register_with_gateway()
