"""The WebSocket upgrade against an in-memory peer: subprotocol negotiation, refusals
mapped to typed errors with header values redacted, deadlines, and invalid requests
refused before anything is sent.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import anyio
import anyio.abc
import pytest

from jupyter_interp.errors import (
    AuthenticationError,
    ConnectError,
    KernelNotFound,
    LocalProtocolError,
    RemoteProtocolError,
    ServerError,
    TransportTimeout,
)
from jupyter_interp.io.websocket import WebSocket
from jupyter_interp.protocol.wire import V1_SUBPROTOCOL

from .memory import memory_stream_pair
from .test_websocket import (
    HEADERS,
    HOST,
    TARGET,
    TOKEN,
    FakeServer,
    connected,
    open_client,
)

pytestmark = pytest.mark.anyio


async def test_offers_v1_sends_headers_and_adopts_the_echoed_subprotocol() -> None:
    with anyio.fail_after(5):
        async with connected(V1_SUBPROTOCOL) as (ws, server):
            assert ws.subprotocol == V1_SUBPROTOCOL
    request = server.request
    assert request is not None
    assert (request.host, request.target) == (HOST, TARGET)
    assert request.subprotocols == [V1_SUBPROTOCOL]
    headers = dict(request.extra_headers)
    assert headers[b"authorization"] == f"token {TOKEN}".encode()
    assert b"origin" not in headers


async def test_no_echoed_subprotocol_means_legacy() -> None:
    with anyio.fail_after(5):
        async with connected(subprotocol=None) as (ws, _):
            assert ws.subprotocol is None


async def test_empty_subprotocol_list_offers_none() -> None:
    with anyio.fail_after(5):
        async with connected(None, subprotocols=()) as (ws, server):
            assert ws.subprotocol is None
    assert server.request is not None
    assert server.request.subprotocols == []


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, KernelNotFound), (500, None)],
)
async def test_rejection_maps_status_and_quotes_the_json_message_redacted(
    status: int, error_type: type[ServerError] | None
) -> None:
    body = json.dumps({"message": f"Refused:  token {TOKEN} is not valid here"}).encode()
    error = await _rejected_with(status, body)
    if error_type is None:
        assert not isinstance(error, AuthenticationError | KernelNotFound)
    else:
        assert isinstance(error, error_type)
    assert error.status == status
    assert "Refused: [redacted] is not valid here" in str(error)  # all of "token <T>"
    assert TOKEN not in repr(error)


async def test_an_html_rejection_page_is_not_quoted() -> None:
    # Jupyter Server's error page embeds its token, which need not be the one we sent
    page = b'<html><body data-jupyter-api-token="other-0123456789"><h1>404</h1></body></html>'
    error = await _rejected_with(404, page)
    assert isinstance(error, KernelNotFound)
    assert str(error) == (
        "WebSocket upgrade refused by gw.test:8888: Not Found (no such kernel on the server) "
        "(HTTP 404)"
    )


async def _rejected_with(status: int, body: bytes) -> ServerError:
    client_end, server_end = memory_stream_pair()
    server = FakeServer(server_end)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, server_end:
            tg.start_soon(server.reject, status, body)
            with pytest.raises(ServerError) as info:
                await open_client(client_end)
    return info.value


async def test_rejection_snippet_is_bounded_and_the_stream_closed() -> None:
    client_end, server_end = memory_stream_pair(math.inf)
    server = FakeServer(server_end)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, server_end:
            tg.start_soon(_reject_ignoring_hang_up, server, b"boom " * 200_000)
            with pytest.raises(ServerError) as info:
                await open_client(client_end)
            with pytest.raises(anyio.BrokenResourceError):
                await server_end.send(b"more")
    assert len(str(info.value)) < 400


async def _reject_ignoring_hang_up(server: FakeServer, body: bytes) -> None:
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await server.reject(500, body)


async def test_bad_accept_answer_is_a_remote_protocol_error() -> None:
    client_end, server_end = memory_stream_pair()
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n"
    )
    with anyio.fail_after(5):
        async with server_end:
            await server_end.send(answer)
            with pytest.raises(RemoteProtocolError, match="accept"):
                await open_client(client_end)


async def test_hang_up_during_upgrade_is_a_connect_error() -> None:
    client_end, server_end = memory_stream_pair()
    server = FakeServer(server_end)

    async def hang_up() -> None:
        await server.read_request()
        await server_end.aclose()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hang_up)
            with pytest.raises(ConnectError):
                await open_client(client_end)


async def test_silent_server_hits_the_handshake_deadline() -> None:
    client_end, server_end = memory_stream_pair()
    with anyio.fail_after(5):
        async with server_end:
            with pytest.raises(TransportTimeout):
                await open_client(client_end, handshake_timeout=0.1)
            assert (await server_end.receive()).startswith(b"GET /api/kernels/")
            with pytest.raises(anyio.EndOfStream):
                await server_end.receive()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"token {TOKEN}\r\nX-Injected: 1"},
        {"Authorization": f" token {TOKEN}"},
        {"Sec-WebSocket-Key": "abc"},
        {"Bad Name": "x"},
    ],
)
async def test_invalid_headers_are_refused_without_echoing_values(headers: dict[str, str]) -> None:
    client_end, server_end = memory_stream_pair()
    with anyio.fail_after(5), pytest.raises(LocalProtocolError) as info:
        async with server_end:
            await open_client(client_end, headers=headers)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    with pytest.raises(anyio.ClosedResourceError):
        await client_end.send(b"x")


@pytest.mark.parametrize(
    "options",
    [
        {"target": "no-leading-slash"},
        {"target": "/ünïcode"},
        {"subprotocols": [""]},
        {"host": "bad\r\nhost"},
        {"host": "empty..label"},
    ],
)
async def test_invalid_request_parts_are_local_errors(options: dict[str, Any]) -> None:
    client_end, server_end = memory_stream_pair()
    arguments = {"host": HOST, "target": TARGET, "headers": HEADERS, **options}
    with anyio.fail_after(5), pytest.raises(LocalProtocolError):
        async with server_end:
            await WebSocket.from_stream(client_end, **arguments)


async def test_a_peer_gone_before_the_upgrade_is_a_connect_error() -> None:
    client_end, server_end = memory_stream_pair()
    await server_end.aclose()
    with anyio.fail_after(5), pytest.raises(ConnectError):
        await open_client(client_end)
