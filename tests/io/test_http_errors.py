"""HttpTransport's error mapping (httpx and server failures become our typed errors,
never quoting a token) and ownership of the httpx client (close only what we made).
"""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest

from jupyter_interp.errors import (
    AuthenticationError,
    ConnectError,
    JupyterInterpError,
    LocalProtocolError,
    ServerError,
    TransportError,
    TransportTimeout,
)
from jupyter_interp.io.http import HttpTransport
from jupyter_interp.protocol import rest

from .test_http import (
    BASE,
    KID,
    TOKEN,
    Server,
    assert_no_token,
    ok,
    transport_for,
)

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- error mapping


async def test_connect_error_names_host_and_port_not_the_token() -> None:
    server = Server(httpx.ConnectError("[Errno 111] Connection refused"))
    with anyio.fail_after(5):
        async with transport_for(server, retries=1) as http:
            with pytest.raises(ConnectError) as info:
                await http.send(rest.api_status())
    assert "gw.test:8888" in str(info.value)
    assert "Connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(server.requests) == 2
    assert_no_token(info.value, repr(info.value))


async def test_real_refused_connect_on_loopback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with anyio.fail_after(10):
        async with HttpTransport(f"http://127.0.0.1:{port}", token=TOKEN, retries=1) as http:
            with pytest.raises(ConnectError) as info:
                await http.call(rest.api_status(), rest.parse_api_status)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert_no_token(info.value, repr(info.value), repr(http))


async def test_slow_server_maps_to_transport_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(10)
        return ok()

    with anyio.fail_after(5):
        async with transport_for(slow, timeout=10) as http:
            with pytest.raises(TransportTimeout) as info:
                await http.send(rest.api_status(), timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    assert "within 0.2 s" in str(info.value)
    assert "gw.test:8888" in str(info.value)


async def test_per_call_timeout_overrides_the_default() -> None:
    async def slowish(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.3)
        return ok()

    with anyio.fail_after(5):
        async with transport_for(slowish, timeout=0.1) as http:
            with pytest.raises(TransportTimeout):
                await http.send(rest.api_status())
            assert (await http.send(rest.api_status(), timeout=2))[0] == 200
            with pytest.raises(LocalProtocolError):
                await http.send(rest.api_status(), timeout=0)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ReadTimeout("read timed out"), TransportTimeout),
        (httpx.ConnectTimeout("connect timed out"), TransportTimeout),
        (httpx.ReadError("connection reset"), TransportError),
        (httpx.RemoteProtocolError("Server disconnected"), TransportError),
        (httpx.ProxyError(f"proxy said {TOKEN}"), TransportError),
    ],
)
async def test_httpx_errors_are_mapped(raised: Exception, expected: type[Exception]) -> None:
    server = Server(raised)
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            with pytest.raises(JupyterInterpError) as info:
                await http.send(rest.get_kernel(KID))
    assert type(info.value) is expected
    assert info.value.__cause__ is raised
    assert_no_token(info.value, repr(info.value))
    assert len(server.requests) == 1  # only connect errors and 5xx statuses are retried


async def test_server_text_echoing_the_token_is_redacted() -> None:
    echo = {"message": f"bad token {TOKEN}", "reason": None}
    with anyio.fail_after(5):
        async with transport_for(Server(httpx.Response(403, json=echo))) as http:
            with pytest.raises(AuthenticationError) as info:
                await http.call(rest.get_kernel(KID), rest.parse_get_kernel)
    assert "bad token <redacted>" in str(info.value)
    assert_no_token(info.value, repr(info.value))


async def test_html_error_page_with_the_token_is_not_quoted() -> None:
    page = f'<body data-jupyter-api-token="{TOKEN}"><h1>404</h1></body>'.encode()
    with anyio.fail_after(5):
        async with transport_for(Server(httpx.Response(404, content=page))) as http:
            with pytest.raises(ServerError) as info:
                await http.call(rest.api_status(), rest.parse_api_status)
    assert_no_token(info.value, repr(info.value))


async def test_token_never_in_log_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = Server(httpx.Response(503), httpx.ConnectError("refused"), ok(), httpx.Response(403))
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            await http.send(rest.api_status())
            with pytest.raises(AuthenticationError):
                await http.call(rest.get_kernel(KID), rest.parse_get_kernel)
    messages = [record.getMessage() for record in caplog.records]
    assert any("retry 1 of 3" in message for message in messages)
    assert any("GET api -> HTTP 200" in message for message in messages)
    for record in caplog.records:
        assert_no_token(record.getMessage(), record.args, record.exc_text)


async def test_injected_logger_is_used(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="embedder")
    with anyio.fail_after(5):
        http = transport_for(Server(ok()), logger=logging.getLogger("embedder"))
        async with http:
            await http.send(rest.api_status())
    assert [record.name for record in caplog.records if "HTTP 200" in record.getMessage()] == [
        "embedder"
    ]


async def test_cancellation_propagates_untouched() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(10)
        return ok()

    with anyio.fail_after(5):
        async with transport_for(hang) as http:
            with anyio.move_on_after(0.1) as scope:
                await http.send(rest.api_status(), timeout=5)
    assert scope.cancelled_caught


# --------------------------------------------------------------------------- ownership


class RecordingClient(httpx.AsyncClient):
    """The client an HttpTransport creates for itself, wired to a MockTransport."""

    instances: ClassVar[list[RecordingClient]] = []
    server: ClassVar[Server]

    def __init__(self, **kwargs: Any) -> None:
        self.created_with = kwargs
        super().__init__(transport=httpx.MockTransport(self.server), **kwargs)
        RecordingClient.instances.append(self)


@pytest.fixture
def owned_clients(monkeypatch: pytest.MonkeyPatch) -> list[RecordingClient]:
    RecordingClient.instances = []
    RecordingClient.server = Server(
        ok(headers={"Set-Cookie": "_xsrf=2|abc; Path=/"}), ok(headers={"Set-Cookie": "u=1"})
    )
    monkeypatch.setattr(httpx, "AsyncClient", RecordingClient)
    return RecordingClient.instances


async def test_owned_client_is_created_lazily_closed_and_keeps_no_cookies(
    owned_clients: list[RecordingClient],
) -> None:
    http = HttpTransport(BASE, token=TOKEN)
    assert owned_clients == []  # no client, no I/O in __init__
    with anyio.fail_after(5):
        async with http:
            await http.send(rest.api_status())
            await http.send(rest.list_kernelspecs())
        (client,) = owned_clients
        assert client.is_closed
        assert client.created_with["follow_redirects"] is False
        with pytest.raises(LocalProtocolError, match="closed"):
            await http.send(rest.api_status())
        await http.aclose()  # idempotent
    _first, second = RecordingClient.server.requests
    assert "cookie" not in second.headers
    assert second.headers["authorization"] == f"token {TOKEN}"
    assert len(client.cookies) == 0


async def test_closing_an_unused_transport_creates_nothing(
    owned_clients: list[RecordingClient],
) -> None:
    with anyio.fail_after(5):
        async with HttpTransport(BASE):
            pass
    assert owned_clients == []


@pytest.mark.parametrize("kind", ["file", "directory"])
async def test_verify_path_becomes_an_ssl_context(
    owned_clients: list[RecordingClient], tmp_path: Path, kind: str
) -> None:
    import certifi

    verify = certifi.where() if kind == "file" else str(tmp_path)
    with anyio.fail_after(5):
        async with HttpTransport("https://gw.test/", verify=verify) as http:
            await http.send(rest.api_status())
    assert isinstance(owned_clients[0].created_with["verify"], ssl.SSLContext)


async def test_unreadable_ca_bundle_is_a_local_error(
    owned_clients: list[RecordingClient], tmp_path: Path
) -> None:
    with anyio.fail_after(5):
        async with HttpTransport("https://gw.test/", verify=str(tmp_path / "none.pem")) as http:
            with pytest.raises(LocalProtocolError, match="CA bundle"):
                await http.send(rest.api_status())
    assert owned_clients == []


async def test_injected_client_is_never_closed() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Server(ok())))
    with anyio.fail_after(5):
        async with HttpTransport(BASE, token=TOKEN, client=client) as http:
            await http.send(rest.api_status())
        assert not client.is_closed
        with pytest.raises(LocalProtocolError, match="closed"):
            await http.send(rest.api_status())
        await client.aclose()
        with pytest.raises(LocalProtocolError, match=r"injected httpx\.AsyncClient is closed"):
            await HttpTransport(BASE, client=client).send(rest.api_status())
