"""HTTP adapter: runs ``protocol.rest`` requests on an ``httpx.AsyncClient``.

Theory of operation
-------------------
``HttpTransport`` joins a request's relative path to the base URL (which may carry a
path prefix such as ``/user/alice/``), sends it with the auth headers, and returns the
status and body bytes (``send``) or the parser's typed result (``call``). It does no
I/O in ``__init__``: an owned client is created on first use and closed by
``aclose()``; an injected client is used as is and never closed.

Invariants:

* Auth: every request carries ``Authorization: token <T>`` (``rest.auth_headers``), so
  no request is ever authenticated by cookie alone (that would need XSRF on Jupyter
  Server). The owned client's cookie jar refuses every cookie. No ``Origin`` header is
  sent: we never add one, refuse one in ``headers`` and strip an injected client's.
* Deadlines: each attempt runs under ``anyio.fail_after(timeout)`` (and the same httpx
  timeout); ``timeout=`` per call overrides the default, e.g. minutes for a kernel start
  on Enterprise Gateway.
* Retries: only idempotent requests (GET, HEAD, DELETE) are retried, on a failed
  connect or a 424/502/503/504 answer (proxies, JupyterHub while the single-user server
  is down), ``retries`` times with exponential backoff capped at 2 s. A POST is sent once.
* Errors: every httpx and anyio failure becomes ``ConnectError`` (naming host:port),
  ``TransportTimeout`` or ``TransportError``, raised ``from`` the original; cancellation
  propagates untouched. The token appears in no message, ``repr`` or log record: it is
  never part of a URL, headers are never logged, and any message that would contain it
  (even a server's error text) has it replaced by ``<redacted>``.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Callable, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import TypeVar

import anyio
import httpx

from .. import telemetry
from ..errors import (
    ConnectError,
    JupyterInterpError,
    LocalProtocolError,
    TransportError,
    TransportTimeout,
)
from ..protocol.rest import HttpRequest, auth_headers
from .tls import ca_context

__all__ = ["HttpTransport"]

T = TypeVar("T")

_RETRY_STATUSES = frozenset({424, 502, 503, 504})
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 2.0
_MAX_RETRIES = 10
_CLOSE_TIMEOUT = 5.0
_REDACTED = "<redacted>"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WS_SCHEMES = {"http": "ws", "https": "wss"}
#: what a closed Response keeps as its stream (it holds no reference back)
_SPENT_STREAM = httpx.ByteStream(b"")


def _base_url(base_url: str) -> httpx.URL:
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        raise LocalProtocolError("invalid base URL") from None  # the URL may hold secrets
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise LocalProtocolError("base URL must be http:// or https:// with a host")
    if url.userinfo or url.query or url.fragment:
        raise LocalProtocolError(
            "base URL must not carry credentials, a query or a fragment (pass token=)"
        )
    return url.copy_with(raw_path=url.raw_path.rstrip(b"/") + b"/")  # keeps %-escapes


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from or during, outermost first (no cycles)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _root_reason(exc: BaseException) -> str:
    """The most specific message in ``exc``'s chain: trio and anyio wrap the OS or TLS
    error in exceptions whose own text is empty."""
    for cause in reversed(_causes(exc)):
        if str(cause):
            return str(cause)
    return type(exc).__name__


def _tls_verification_failed(exc: BaseException) -> bool:
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _causes(exc))


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise LocalProtocolError("header names and values must be strings")
        if not name.isascii() or any(c in name + value for c in "\r\n\0"):
            raise LocalProtocolError(f"header {name!r} has a control or non-ASCII character")
        if name.lower() == "origin":
            raise LocalProtocolError(
                "do not send Origin: Jupyter servers reject cross-origin calls"
            )
        checked[name] = value
    return checked


def _positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise LocalProtocolError(f"{what} must be a positive number of seconds")
    if math.isinf(value):
        raise LocalProtocolError(f"{what} must be finite")
    return float(value)


class HttpTransport:
    """Sends ``protocol.rest`` requests to one Jupyter server.

    Args:
        base_url: ``http(s)://host:port/`` plus an optional path prefix.
        token: the server token, sent as ``Authorization: token <T>``.
        headers: extra headers for every request and the WebSocket handshake.
        verify: TLS verification for an owned client: ``True``, ``False``, a CA bundle
            path (file or directory) or an ``ssl.SSLContext``.
        client: an ``httpx.AsyncClient`` to use instead of owning one (never closed here).
        timeout: default per-attempt deadline in seconds.
        retries: how often an idempotent request is retried (0 to 10).
        logger: where to log (defaults to this module's logger); headers are never logged.

    Raises:
        LocalProtocolError: an invalid base URL, token, header, timeout or retry count.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | ssl.SSLContext = True,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        logger: logging.Logger | None = None,
    ) -> None:
        url = _base_url(base_url)
        self._base = str(url)
        host = f"[{url.host}]" if ":" in url.host else url.host
        self._host_port = f"{host}:{url.port or _DEFAULT_PORTS[url.scheme]}"
        extra = _check_headers(headers or {})
        self._token = token or None
        if self._token is not None:
            extra = {k: v for k, v in extra.items() if k.lower() != "authorization"}
        self._auth = {**extra, **auth_headers(self._token)}
        self._verify = verify
        self._timeout = _positive(timeout, "timeout")
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise LocalProtocolError("retries must be an integer")
        if not 0 <= retries <= _MAX_RETRIES:
            raise LocalProtocolError(f"retries must be between 0 and {_MAX_RETRIES}")
        self._retries = retries
        self._client = client
        self._owns_client = client is None
        self._closed = False
        self._log = logger if logger is not None else logging.getLogger(__name__)

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        owner = "owned" if self._owns_client else "injected"
        return f"<HttpTransport {self._base!r} token={token} client={owner}>"

    @property
    def base_url(self) -> str:
        """The normalized base URL, always ending with ``/``."""
        return self._base

    @property
    def verify(self) -> bool | str | ssl.SSLContext:
        """The TLS verification setting given to ``__init__``."""
        return self._verify

    def auth_headers(self) -> dict[str, str]:
        """Headers for the WebSocket handshake: extra headers plus the token header."""
        return dict(self._auth)

    def websocket_url(self, path: str) -> str:
        """The ``ws://``/``wss://`` URL of ``path`` (relative, may end in ``?query``).

        Never put the token in ``query``: it belongs in ``auth_headers()``.

        Raises:
            LocalProtocolError: ``path`` is absolute, has empty, dot or unsafe segments,
                or its query has whitespace, control characters or ``#``.
        """
        route, _, query = path.partition("?")
        HttpRequest(method="GET", path=route)  # validates the route like any REST path
        if any(c.isspace() or not c.isprintable() or c == "#" for c in query):
            raise LocalProtocolError("WebSocket query must be printable, without spaces or '#'")
        scheme, rest = self._base.split("://", 1)
        return f"{_WS_SCHEMES[scheme]}://{rest}{route}" + (f"?{query}" if query else "")

    # ----------------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the owned client (shielded, bounded); an injected client stays open."""
        self._closed = True
        client, self._client = self._client, None
        if self._owns_client and client is not None:
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await client.aclose()

    def _open_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise LocalProtocolError("this HttpTransport is closed")
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._ssl_verify(),
                timeout=self._timeout,
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                follow_redirects=False,
            )
        if self._client.is_closed:
            raise LocalProtocolError("the injected httpx.AsyncClient is closed")
        return self._client

    def _ssl_verify(self) -> bool | ssl.SSLContext:
        return ca_context(self._verify) if isinstance(self._verify, str) else self._verify

    # ----------------------------------------------------------------------- requests

    async def call(
        self,
        request: HttpRequest,
        parse: Callable[[int, bytes], T],
        *,
        timeout: float | None = None,
    ) -> T:
        """Send ``request`` and return ``parse(status, body)``.

        Raises:
            ServerError: the parser's mapping of an error status.
            RemoteProtocolError: the parser rejected a success body.
            ConnectError, TransportTimeout, TransportError: as for ``send``.
        """
        status, body = await self.send(request, timeout=timeout)
        try:
            return parse(status, body)
        except JupyterInterpError as exc:
            self._redact(exc)
            raise

    async def send(
        self,
        request: HttpRequest,
        *,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Send ``request`` (retrying if idempotent) and return ``(status, body)``.

        Args:
            request: the REST call.
            timeout: per-attempt deadline in seconds; the transport's default if ``None``.

        Raises:
            ConnectError: nothing answered at host:port (after the retries).
            TransportTimeout: no complete answer within the deadline.
            TransportError: the connection failed otherwise.
            LocalProtocolError: the transport or the injected client is closed.
        """
        deadline = self._timeout if timeout is None else _positive(timeout, "timeout")
        client = self._open_client()
        body = request.encode_body()
        headers = {**self._auth, "Accept": "application/json", **(request.headers or {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
        telemetry.inject_trace_context(headers)
        outgoing = client.build_request(
            request.method,
            self._base + request.path,
            params=request.query,
            headers=headers,
            content=body,
            timeout=httpx.Timeout(deadline),
        )
        outgoing.headers.pop("Origin", None)
        retries = self._retries if request.idempotent else 0
        attempt = 0
        while True:
            try:
                status, content = await self._attempt(client, outgoing, request, deadline)
            except ConnectError:
                if attempt >= retries:
                    raise
                why = "connect failed"
            else:
                self._log.debug("%s %s -> HTTP %d", request.method, request.path, status)
                if status not in _RETRY_STATUSES or attempt >= retries:
                    return status, content
                why = f"HTTP {status}"
            delay = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2**attempt)
            attempt += 1
            self._log.info(
                "%s %s: %s; retry %d of %d in %.2f s",
                request.method, request.path, why, attempt, retries, delay,
            )  # fmt: skip
            await anyio.sleep(delay)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        outgoing: httpx.Request,
        request: HttpRequest,
        deadline: float,
    ) -> tuple[int, bytes]:
        what = f"{request.method} {request.path}"
        try:
            with anyio.fail_after(deadline):
                # streamed and joined here: an httpx Response and its stream refer to each
                # other, so a body stored on the Response (``.content``) would live until
                # the garbage collector runs, and large bodies (file ranges) pile up; once
                # closed, the stream is unbound so that reference counting frees both at
                # once (cyclic garbage between full collections grows a long run's RSS)
                response = await client.send(outgoing, stream=True)
                try:
                    content = b"".join([part async for part in response.aiter_bytes()])
                finally:
                    await response.aclose()
                    response.stream = _SPENT_STREAM
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TransportTimeout(
                f"{what}: no complete answer from {self._host_port} within {deadline:g} s"
            ) from exc
        except httpx.ConnectError as exc:
            reason = self._scrub(_root_reason(exc))[:200]
            if _tls_verification_failed(exc):
                reason += "; pass verify=<CA bundle path> (or verify=False to skip the check)"
            raise ConnectError(f"cannot connect to {self._host_port}: {reason}") from exc
        except httpx.HTTPError as exc:
            reason = self._scrub(str(exc))[:200] or type(exc).__name__
            raise TransportError(f"{what} to {self._host_port} failed: {reason}") from exc
        return response.status_code, content

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, _REDACTED) if self._token else text

    def _redact(self, exc: BaseException) -> None:
        if self._token and any(isinstance(a, str) and self._token in a for a in exc.args):
            exc.args = tuple(self._scrub(a) if isinstance(a, str) else a for a in exc.args)
