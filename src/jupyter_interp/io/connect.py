"""Opening a client WebSocket: the TCP (or TLS) connect, then the upgrade.

Strategy: ``connect_websocket`` opens the byte stream with ``anyio.connect_tcp`` and
hands it to ``WebSocket.from_stream``, which owns it from then on (closing it if the
handshake fails). One deadline covers connect and upgrade, since Jupyter delays the
``101`` until the kernel answers; a separate, shorter one bounds the connect. Connect
failures become ``ConnectError``/``TransportTimeout`` naming the host, never the
request target (it could carry ``?token=``).
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping, Sequence

import anyio
import anyio.abc

from ..errors import ConnectError, TransportTimeout
from ..protocol.wire import V1_SUBPROTOCOL
from ._upgrade import handshake_deadline, parse_url
from .websocket import WebSocket

__all__ = ["connect_websocket"]


async def connect_websocket(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    subprotocols: Sequence[str] = (V1_SUBPROTOCOL,),
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = 30.0,
    handshake_timeout: float = 120.0,
    max_message_size: int = 256 * 1024 * 1024,
    close_timeout: float = 10.0,
    write_timeout: float = 60.0,
) -> WebSocket:
    """Connect to ``url`` and complete the WebSocket upgrade.

    Args:
        url: ``ws://``/``wss://`` (or ``http://``/``https://``, converted) URL.
        headers: Extra upgrade headers, e.g. ``Authorization``; never logged or echoed.
        subprotocols: Offered subprotocols; empty offers none (legacy protocol).
        ssl_context: TLS settings for ``wss``; default ``ssl.create_default_context()``.
        connect_timeout: Bound on the TCP (and TLS) connect.
        handshake_timeout: Bound on connect plus upgrade (Jupyter delays the ``101``
            until the kernel answers, so keep it long).
        max_message_size: Largest incoming message accepted, in bytes.
        close_timeout: Bound on the closing handshake.
        write_timeout: Bound on writing one frame.

    Returns:
        The open ``WebSocket``; ``subprotocol`` is ``None`` when the server chose legacy.

    Raises:
        LocalProtocolError: Bad URL, header or subprotocol.
        ConnectError: Nothing listening, DNS or TLS failure, or a hang-up mid-upgrade.
        TransportTimeout: A deadline passed.
        AuthenticationError: The upgrade was refused with 401/403.
        KernelNotFound: The upgrade was refused with 404.
        ServerError: Any other refusal.
        RemoteProtocolError: The answer was not a valid WebSocket upgrade.
    """
    host, port, tls, where, target = parse_url(url)
    with handshake_deadline(handshake_timeout, where):
        try:
            with anyio.fail_after(connect_timeout):
                stream: anyio.abc.ByteStream
                if not tls:
                    stream = await anyio.connect_tcp(host, port)
                else:  # no TLS close_notify needed: the WebSocket close handshake suffices
                    context = ssl_context or ssl.create_default_context()
                    stream = await anyio.connect_tcp(
                        host,
                        port,
                        ssl_context=context,
                        tls_hostname=host,
                        tls_standard_compatible=False,
                    )
        except TimeoutError as exc:
            raise TransportTimeout(f"connecting to {where} timed out") from exc
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:  # TLS: EOF
            detail = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc  # anyio wraps
            message = f"cannot connect to {where}: {detail or type(exc).__name__}"
            raise ConnectError(message) from exc
        return await WebSocket.from_stream(
            stream,
            host=where,
            target=target,
            headers=headers,
            subprotocols=subprotocols,
            handshake_timeout=math.inf,  # the deadline around us covers the upgrade
            max_message_size=max_message_size,
            close_timeout=close_timeout,
            write_timeout=write_timeout,
        )
