"""The HTTP/1.1 upgrade that opens a kernel WebSocket, and the helpers around it.

Strategy: ``handshake`` sends wsproto's upgrade ``Request`` (built and validated by
``build_request``) and reads until wsproto accepts or a rejection is complete; a
rejection becomes a typed ``ServerError`` whose message carries the status and what a
JSON body says (``rest.error_detail``; other bodies, such as Jupyter Server's HTML page,
which embeds the token, are not quoted), with every header value of ours redacted.
``read_chunk`` is the one place that reads the transport: it re-arms Linux
``TCP_QUICKACK`` before each read (the server's small writes otherwise wait out a 40 ms
delayed ACK) and after it (so the ACK of what was read leaves before we process it), and
turns EOF and broken streams into wsproto's ``None``.

Invariant: no message built here contains a header value (tokens) or the request
target (it could carry ``?token=``).
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11
from wsproto import WSConnection
from wsproto.events import (
    AcceptConnection,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from ..errors import (
    AuthenticationError,
    ConnectError,
    KernelNotFound,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
    TransportTimeout,
)
from ..protocol.rest import error_detail

__all__ = [
    "STREAM_ERRORS",
    "build_request",
    "handshake_deadline",
    "handshake",
    "parse_url",
    "READ_SIZE",
    "READ_SIZE_BULK",
    "read_chunk",
    "secret_values",
    "set_tcp_option",
]

#: what one read asks for while messages are small: a larger request costs a socket
#: read (trio's) an allocation of that size, tens of microseconds from 256 KiB up
READ_SIZE = 65536
#: what one read asks for while data streams in (see ``WebSocket``): asyncio's transport
#: reads up to 256 KiB, and anyio copies any chunk it must split for a smaller request
READ_SIZE_BULK = 256 * 1024
_BODY_CAPTURE = 4096
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
_TARGET = re.compile(r"/[\x21-\x7e]*")
_RESERVED_HEADERS = frozenset(
    {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"}
    | {"sec-websocket-protocol", "sec-websocket-extensions"}
)
_SCHEMES = {"ws": ("ws", 80), "http": ("ws", 80), "wss": ("wss", 443), "https": ("wss", 443)}
STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def parse_url(url: str) -> tuple[str, int, bool, str, str]:
    """Return host, port, TLS or not, the ``Host`` header and the request target."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise LocalProtocolError("malformed WebSocket URL") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise LocalProtocolError("a WebSocket URL needs a ws/wss/http/https scheme and a host")
    name, default_port = scheme
    host = parts.hostname
    port = default_port if port is None else port
    literal = f"[{host}]" if ":" in host else host
    host_header = literal if port == default_port else f"{literal}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, port, name == "wss", host_header, target


def build_request(
    host: str, target: str, headers: Mapping[str, str], subprotocols: Sequence[str]
) -> Request:
    if not _TARGET.fullmatch(target):
        raise LocalProtocolError("the WebSocket target must be an ASCII path starting with '/'")
    if not all(_TOKEN.fullmatch(name) for name in subprotocols):
        raise LocalProtocolError("subprotocol names must be non-empty HTTP tokens")
    extra: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
            raise LocalProtocolError(f"header {name!r} is invalid or set by the handshake itself")
        if not _FIELD_VALUE.fullmatch(value):  # also rules out anything beyond latin-1
            raise LocalProtocolError(f"invalid value for header {name!r} (value not shown)")
        extra.append((name.lower().encode("ascii"), value.encode("latin-1")))
    return Request(host=host, target=target, subprotocols=list(subprotocols), extra_headers=extra)


def secret_values(headers: Mapping[str, str]) -> tuple[str, ...]:
    pieces = {p for value in headers.values() for p in (value, *value.split()) if len(p) >= 6}
    return tuple(sorted(pieces, key=len, reverse=True))


def _rejection_error(
    status: int, body: bytes | bytearray, whole: bool, host: str, secrets: Sequence[str]
) -> ServerError:
    """The typed error for a refused upgrade; a cut-off body is not parsed. Secrets are
    redacted before the body is read (its quote may be cut short) and after."""
    text = _redacted(body.decode("utf-8", "replace") if whole else "", secrets)
    detail = _redacted(error_detail(status, text), secrets)
    message = f"WebSocket upgrade refused by {host}: {detail}"
    if status in (401, 403):
        return AuthenticationError(message, status=status)
    if status == 404:
        return KernelNotFound(f"{message} (no such kernel on the server)", status=status)
    return ServerError(message, status=status)


def _redacted(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def set_tcp_option(sock: socket.socket | None, option: int | None) -> None:
    """Set a boolean TCP option where it exists; a socket that refuses it is left as is."""
    if sock is not None and option is not None:
        try:  # not contextlib.suppress: this runs twice per read
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)
        except OSError:
            return


async def read_chunk(
    stream: anyio.abc.ByteStream, sock: socket.socket | None, size: int = READ_SIZE
) -> bytes | None:
    """Read a chunk of at most ``size`` bytes; ``None`` is wsproto's EOF (also for a
    broken or closed stream).

    ``TCP_QUICKACK`` is re-armed before the read (Linux drops it after a while, and each
    of our writes may put the socket back in delayed-ACK mode) and again after it: that
    second call sends the ACK for what was just read at once, so a server that holds its
    next small write until this ACK (Nagle) sends it while we process this chunk.
    """
    set_tcp_option(sock, _QUICKACK)
    try:
        data = await stream.receive(size)
    except (anyio.EndOfStream, *STREAM_ERRORS):
        return None
    set_tcp_option(sock, _QUICKACK)
    return data


@contextlib.contextmanager
def handshake_deadline(seconds: float, host: str) -> Iterator[None]:
    try:
        with anyio.fail_after(seconds):
            yield
    except TransportTimeout:
        raise
    except TimeoutError as exc:
        message = f"WebSocket handshake with {host} did not finish within {seconds} s"
        raise TransportTimeout(message) from exc


async def handshake(
    stream: anyio.abc.ByteStream, ws: WSConnection, request: Request, secrets: Sequence[str]
) -> str | None:
    """Send the upgrade and read the answer; returns the accepted subprotocol."""
    try:
        upgrade = ws.send(request)
    except (h11.LocalProtocolError, UnicodeError):  # a bad host: headers were checked
        raise LocalProtocolError("cannot encode the WebSocket upgrade request") from None
    try:
        await stream.send(upgrade)
    except STREAM_ERRORS as exc:
        raise ConnectError(f"connection to {request.host} lost during the upgrade") from exc
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    rejection: RejectConnection | None = None
    body, complete = bytearray(), False
    while True:
        data = await read_chunk(stream, sock)
        try:
            ws.receive_data(data)
        except (WsRemoteProtocolError, UnicodeError) as exc:
            if data is not None and rejection is None:
                message = f"bad WebSocket upgrade answer from {request.host}: {exc}"
                raise RemoteProtocolError(message) from exc
            data = None  # a broken rejection body or a hang-up: report what we have
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return event.subprotocol
            if isinstance(event, RejectConnection):
                rejection, complete = event, not event.has_body
            elif isinstance(event, RejectData):
                body += event.data[: _BODY_CAPTURE - len(body)]
                complete = event.body_finished
        if rejection is not None and (complete or data is None or len(body) >= _BODY_CAPTURE):
            whole = complete and len(body) < _BODY_CAPTURE
            raise _rejection_error(rejection.status_code, body, whole, request.host, secrets)
        if data is None:
            raise ConnectError(f"{request.host} closed the connection during the upgrade")
