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
from urllib.parse import quote

import attrs

from ..config import ClientConfig
from ..errors import KernelNotFound
from ..io.http import HttpTransport
from ..io.websocket import WebSocket, connect_websocket
from ..protocol import rest
from ..protocol.message_factory import MessageFactory
from ..protocol.wire import V1_SUBPROTOCOL

__all__ = ["KernelLink"]


@attrs.frozen(kw_only=True)
class KernelLink:
    """How to reach one kernel on one server."""

    http: HttpTransport
    config: ClientConfig
    kernel_id: str
    kernel_name: str
    factory: MessageFactory
    ssl_context: ssl.SSLContext | None = None

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
