"""KernelLink: the REST and WebSocket operations on one kernel id.

Strategy: a small value that a Session uses to reach its kernel — interrupt, restart
and delete over REST, and (re)open the WebSocket with our session id — so the Session
never touches URLs, headers or TLS settings itself.

Invariants: ``delete`` is idempotent (a kernel the server no longer knows is already
deleted); the WebSocket carries the token in the ``Authorization`` header, never in
the URL; the same ``session_id`` is used on every reconnect so the server can replay
what it buffered.
"""

from __future__ import annotations

import contextlib
import ssl
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import attrs

from ..config import ClientConfig
from ..errors import KernelNotFound
from ..io.connect import connect_websocket
from ..io.http import HttpTransport
from ..io.tls import ssl_context_for
from ..io.websocket import WebSocket
from ..protocol import rest
from ..protocol.message_factory import MessageFactory
from ..protocol.wire import V1_SUBPROTOCOL

__all__ = ["KernelLink"]


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
        with contextlib.suppress(KernelNotFound):  # already gone is deleted
            await self.http.call(rest.delete_kernel(self.kernel_id), rest.parse_delete_kernel)

    async def model(self) -> rest.KernelModel:
        return await self.http.call(rest.get_kernel(self.kernel_id), rest.parse_get_kernel)

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
