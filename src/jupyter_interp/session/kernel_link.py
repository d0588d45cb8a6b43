"""KernelLink: the REST and WebSocket operations on one kernel id.

Strategy: a small value that a Session uses to reach its kernel — interrupt, restart
and delete over REST, and (re)open the WebSocket with our session id — so the Session
never touches URLs, headers or TLS settings itself.

Invariants: ``delete`` is idempotent (a kernel the server no longer knows is already
deleted) and outlasts a restart in progress (5xx answers are retried for a while); the
WebSocket carries the token in the ``Authorization`` header, never in the URL; the same
``session_id`` is used on every reconnect so the server can replay what it buffered.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import anyio
import attrs

from ..config import ClientConfig
from ..errors import JupyterInterpError, KernelNotFound, ServerError
from ..io.connect import connect_websocket
from ..io.http import HttpTransport
from ..io.tls import ssl_context_for
from ..io.websocket import WebSocket
from ..protocol import rest
from ..protocol.message_factory import MessageFactory
from ..protocol.wire import V1_SUBPROTOCOL

__all__ = ["KernelLink"]

logger = logging.getLogger("jupyter_interp.session")

#: how long a DELETE answered with a server error (a kernel restarting) is retried
_DELETE_PATIENCE = 20.0
_FIRST_DELETE_RETRY = 0.2
_MAX_DELETE_RETRY = 2.0


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(timezone.utc)


@attrs.frozen(kw_only=True)
class KernelLink:
    """How to reach one kernel on one server."""

    http: HttpTransport
    config: ClientConfig
    kernel_id: str
    kernel_name: str
    factory: MessageFactory
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def to_kernel(
        cls, http: HttpTransport, config: ClientConfig, kernel_id: str, kernel_name: str
    ) -> KernelLink:
        """The link to ``kernel_id`` with a fresh client session id (random uuid4 ids, UTC
        clock) and, for ``https``, the WebSocket's TLS settings built like the HTTP
        client's from ``config.verify``.

        Raises:
            LocalProtocolError: ``verify`` names no readable CA file or directory.
        """
        secure = config.base_url.lower().startswith("https")
        return cls(
            http=http,
            config=config,
            kernel_id=kernel_id,
            kernel_name=kernel_name,
            factory=MessageFactory(session=_new_id(), new_id=_new_id, clock=_now),
            ssl_context=ssl_context_for(config.verify) if secure else None,
        )

    async def interrupt(self) -> None:
        await self.http.call(rest.interrupt_kernel(self.kernel_id), rest.parse_interrupt_kernel)

    async def restart(self) -> rest.KernelModel:
        return await self.http.call(
            rest.restart_kernel(self.kernel_id),
            rest.parse_restart_kernel,
            timeout=self.config.start_timeout,
        )

    async def delete(self) -> None:
        """Delete the kernel; a server error (5xx) is retried for ``_DELETE_PATIENCE`` s.

        Why: a kernel that just died is being restarted by the server, and Jupyter
        Server fails a DELETE meanwhile with a bare 500 ("Unhandled error"); once the
        restart is over the DELETE succeeds. Giving up at once would leak the kernel.
        """
        delay = _FIRST_DELETE_RETRY
        give_up_at = anyio.current_time() + _DELETE_PATIENCE
        while True:
            try:
                with contextlib.suppress(KernelNotFound):  # already gone is deleted
                    await self.http.call(
                        rest.delete_kernel(self.kernel_id), rest.parse_delete_kernel
                    )
                return
            except ServerError as exc:
                if exc.status is None or exc.status < 500:
                    raise
                if anyio.current_time() + delay > give_up_at:
                    raise
                logger.info("kernel %s: delete failed (%s); retrying", self.kernel_id, exc)
            await anyio.sleep(delay)
            delay = min(delay * 2, _MAX_DELETE_RETRY)

    async def model(self) -> rest.KernelModel:
        return await self.http.call(rest.get_kernel(self.kernel_id), rest.parse_get_kernel)

    async def gone(self) -> str | None:
        """Why the kernel is gone (the server dropped it or reports it dead), or None:
        it is there, or the server could not be asked."""
        try:
            model = await self.model()
        except KernelNotFound:
            return "the server dropped it"
        except JupyterInterpError:
            return None
        if model.execution_state != "dead":
            return None
        return f"the server reports it dead: {model.reason or 'no reason given'}"

    async def open_websocket(self, session_id: str) -> WebSocket:
        path = f"api/kernels/{quote(self.kernel_id)}/channels?session_id={quote(session_id)}"
        headers = {**self.config.headers, **self.http.auth_headers()}
        return await connect_websocket(
            self.http.websocket_url(path),
            headers=headers,
            subprotocols=(V1_SUBPROTOCOL,),
            ssl_context=self.ssl_context,
            connect_timeout=self.config.request_timeout,
            handshake_timeout=self.config.handshake_timeout,
            max_message_size=self.config.max_message_size,
        )
