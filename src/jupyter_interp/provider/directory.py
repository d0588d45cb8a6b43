"""Where a provider session lives: its kernel id, its folder, its server-side record.

Strategy: a session must be reachable from any provider instance pointed at the same
server (a restarted gateway, another replica), so nothing about where it lives may
exist only in one process.

* **The kernel id and the folder follow from the session id** under the provider's
  secret (``identity``). The kernel is started with that id (``kernel_id`` in
  the start body, which Jupyter Server 2 and Kernel Gateway 3 honour, and ``KERNEL_ID``
  in its env, which Enterprise Gateway honours), so re-attaching is one
  ``GET /api/kernels/<id>`` from any replica that has the secret.
* **The record** (the caller's session id, ``created_at``, the language) is kept in
  Jupyter Server's own session registry (``/api/sessions``, type ``jupyter-interp``,
  keyed by a path naming the kernel). Registering is "create or get": the first record
  for a kernel wins, so any replica learns the original ``created_at``; the server
  forgets a record when its kernel goes away. Only Jupyter Server binds a record to an
  existing kernel: Kernel Gateway and Enterprise Gateway start a *new* kernel for every
  ``POST /api/sessions``, so the registry is used only where ``GET /api/status`` (which
  they lack) answers. There, listing falls back to ``GET /api/kernels``, of which only
  the kernels of sessions this process knows are shown (a kernel id does not lead back
  to a session id), and, where that is refused too (their default), to what the
  provider's own process knows.

Invariants: a server without a usable registry degrades to process-local metadata and
never makes a session call fail; a registration the server answered with another
kernel (a kernel deleted meanwhile) is deleted at once, so it cannot leak a kernel.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs

from ..errors import JupyterInterpError, RemoteProtocolError
from ..io.http import HttpTransport
from ..protocol.rest import HttpRequest, KernelModel

__all__ = [
    "SESSION_TYPE",
    "SessionDirectory",
    "SessionMeta",
]

logger = logging.getLogger("jupyter_interp.provider")

#: the ``type`` of our records in the server's session registry
SESSION_TYPE = "jupyter-interp"
_PATH_PREFIX = "jupyter-interp/"
_CREATED = frozenset({200, 201})


@attrs.frozen(kw_only=True)
class SessionMeta:
    """What the provider reports about a session, wherever it was started."""

    session_id: str
    kernel_id: str
    kernel_name: str
    language: str
    #: ISO 8601; empty when no record says (a kernel listed by a gateway)
    created_at: str


def _record_body(meta: SessionMeta) -> dict[str, Any]:
    name = {"session_id": meta.session_id, "created_at": meta.created_at, "language": meta.language}
    return {
        "path": _PATH_PREFIX + meta.kernel_id,
        "type": SESSION_TYPE,
        "name": json.dumps(name, separators=(",", ":")),
        "kernel": {"id": meta.kernel_id},
    }


def _parse_record(row: object) -> tuple[SessionMeta, str | None] | None:
    """Our record in a registry row, with the kernel's execution state; None if not ours."""
    if not isinstance(row, Mapping) or row.get("type") != SESSION_TYPE:
        return None
    kernel, path = row.get("kernel"), row.get("path")
    if not isinstance(kernel, Mapping) or not isinstance(path, str):
        return None
    kernel_id, kernel_name = kernel.get("id"), kernel.get("name")
    if path != _PATH_PREFIX + str(kernel_id) or not isinstance(kernel_name, str):
        return None
    try:
        name = json.loads(str(row.get("name")))
    except ValueError:
        return None
    if not isinstance(name, Mapping):
        return None
    fields = (name.get("session_id"), name.get("created_at"), name.get("language"))
    if not all(isinstance(value, str) for value in fields):
        return None
    state = kernel.get("execution_state")
    meta = SessionMeta(
        session_id=str(fields[0]),
        kernel_id=str(kernel_id),
        kernel_name=kernel_name,
        created_at=str(fields[1]),
        language=str(fields[2]),
    )
    return meta, state if isinstance(state, str) else None


def _parse_kernel(model: object) -> tuple[SessionMeta, str | None] | None:
    """A listed kernel as a session whose id is the kernel id (no record to say more)."""
    try:
        kernel = KernelModel.from_wire(model)
    except RemoteProtocolError:
        return None
    meta = SessionMeta(
        session_id=kernel.id,
        kernel_id=kernel.id,
        kernel_name=kernel.name,
        language="",
        created_at="",
    )
    return meta, kernel.execution_state


def _decode(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


class SessionDirectory:
    """Our session records on one server (``/api/sessions``, or kernels as a fallback)."""

    def __init__(self, http: HttpTransport) -> None:
        self._http = http
        self._registry: bool | None = None

    async def _send(self, method: str, path: str, body: Any = None) -> tuple[int, object]:
        status, content = await self._http.send(HttpRequest(method=method, path=path, json=body))
        return status, _decode(content)

    async def has_registry(self) -> bool:
        """Whether the server is a Jupyter Server, whose registry binds existing kernels."""
        if self._registry is None:
            try:
                status, body = await self._send("GET", "api/status")
            except JupyterInterpError as exc:
                logger.debug("probing api/status failed: %s", exc)
                return False  # unknown: ask again next time
            self._registry = status == 200 and isinstance(body, Mapping) and "started" in body
        return self._registry

    async def register(self, meta: SessionMeta) -> SessionMeta:
        """Record ``meta`` unless the kernel has a record; return the record that counts.

        Falls back to ``meta`` when the server has no usable registry or the call fails.
        """
        if not await self.has_registry():
            return meta
        try:
            status, row = await self._send("POST", "api/sessions", _record_body(meta))
        except JupyterInterpError as exc:
            logger.debug("recording session %s failed: %s", meta.session_id, exc)
            return meta
        parsed = _parse_record(row) if status in _CREATED else None
        if parsed is not None and parsed[0].kernel_id == meta.kernel_id:
            return parsed[0]
        logger.warning(
            "the server keeps no record of session %s (HTTP %d)", meta.session_id, status
        )
        kernel = row.get("kernel") if isinstance(row, Mapping) else None
        stray = row.get("id") if isinstance(row, Mapping) else None
        other = kernel.get("id") if isinstance(kernel, Mapping) else None
        if status in _CREATED and isinstance(stray, str) and other not in (None, meta.kernel_id):
            with contextlib.suppress(JupyterInterpError):  # it started a kernel: delete it
                await self._send("DELETE", f"api/sessions/{quote(stray, safe='')}")
        return meta

    async def registered(self) -> list[SessionMeta] | None:
        """Every replica's live sessions, from the registry; None without one (gateways)."""
        if not await self.has_registry():
            return None
        listed = await self.list()
        return None if listed is None else [meta for meta, state in listed if state != "dead"]

    async def list(self) -> list[tuple[SessionMeta, str | None]] | None:
        """Our sessions with their kernels' states; None when the server lists nothing."""
        registry = await self.has_registry()
        try:
            status, body = await self._send("GET", "api/sessions" if registry else "api/kernels")
        except JupyterInterpError as exc:
            logger.debug("listing sessions failed: %s", exc)
            return None
        if status != 200 or not isinstance(body, list):
            logger.debug("the server does not list its sessions or kernels (HTTP %d)", status)
            return None
        if registry:
            return [parsed for parsed in map(_parse_record, body) if parsed is not None]
        return [parsed for parsed in map(_parse_kernel, body) if parsed is not None]
