"""The streamable HTTP transport: an ASGI app with an optional bearer token.

Strategy: the SDK's own streamable HTTP app (stateful: one MCP session per
``Mcp-Session-Id``, DNS-rebinding protection on loopback hosts) wrapped in a small ASGI
middleware that, when a token is set, checks ``Authorization: Bearer <token>`` on every
HTTP request with a constant-time comparison and answers 401 otherwise. The token is
never logged or echoed. ``serve_http`` runs the app on uvicorn, which runs on asyncio
only (trio is refused with a plain message by the command line).

Invariants: lifespan events pass through untouched (the SDK's session manager and our
kernel pool live in them); a refused request never reaches the MCP layer.
"""

from __future__ import annotations

import hmac
from typing import Any

from mcp.server.lowlevel import Server
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DEFAULT_IDLE_TIMEOUT", "MAX_BODY_BYTES", "http_app", "serve_http"]

#: room for a 16 MiB file written as base64 in one call
MAX_BODY_BYTES = 32 * 1024 * 1024
#: seconds an MCP session may sit idle before it expires (the SDK's default)
DEFAULT_IDLE_TIMEOUT = 30 * 60.0


class _BearerToken:
    """ASGI middleware: 401 for an HTTP request without the right bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"www-authenticate", b'Bearer realm="jupyter-interp"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"missing or wrong token\n"})
                return
        await self._app(scope, receive, send)


def http_app(
    server: Server[Any],
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    path: str = "/mcp",
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> ASGIApp:
    """An ASGI app serving ``server`` over streamable HTTP at ``path``.

    ``host`` is where it will listen (loopback hosts turn on the SDK's DNS-rebinding
    protection); ``token`` (optional) is required as a bearer token on every request;
    an MCP session with no request in flight and no open stream for ``idle_timeout``
    seconds expires, and its kernels with it. Run its lifespan (every ASGI server
    does): the MCP sessions and kernels live in it.
    """
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=path,
        host=host,
        max_request_body_size=MAX_BODY_BYTES,
        session_idle_timeout=idle_timeout,
    )
    return app if token is None else _BearerToken(app, token)


async def serve_http(app: ASGIApp, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` with uvicorn until cancelled (asyncio only)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    await uvicorn.Server(config).serve()
