"""io.http.HttpTransport against httpx.MockTransport handlers (and one real refused port)."""

from __future__ import annotations

import functools
import json
import math
import ssl
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import httpx
import pytest

from jupyter_interp.errors import (
    ConnectError,
    KernelLaunchError,
    LocalProtocolError,
    ServerError,
)
from jupyter_interp.io.http import HttpTransport
from jupyter_interp.protocol import rest

pytestmark = pytest.mark.anyio

TOKEN = "SECRET-TOKEN-0123456789abcdef"
BASE = "http://gw.test:8888"
KID = "cf9c86e1-b641-469d-b8ad-0dc7c20b17cc"
KERNEL_MODEL = {
    "id": KID,
    "name": "python3",
    "last_activity": "2026-11-27T11:25:23.870479Z",
    "execution_state": "idle",
    "connections": 0,
}
Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]


class Server:
    """A scripted MockTransport handler that records every request and when it came."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(anyio.current_time())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(value: object = None, status: int = 200, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, json={"version": "2.21.1"} if value is None else value, **kwargs)


def transport_for(handler: Handler, base_url: str = BASE, **kwargs: Any) -> HttpTransport:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpTransport(base_url, token=TOKEN, client=client, **kwargs)


def assert_no_token(*texts: object) -> None:
    for text in texts:
        assert TOKEN not in str(text)


# --------------------------------------------------------------------------- headers, URLs


async def test_token_header_exact_and_no_origin() -> None:
    server = Server(ok())
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            status = await http.call(rest.api_status(), rest.parse_api_status)
    assert status.version == "2.21.1"
    (request,) = server.requests
    assert str(request.url) == f"{BASE}/api"
    assert request.headers.get_list("authorization") == [f"token {TOKEN}"]
    assert "origin" not in request.headers
    assert request.headers["accept"] == "application/json"
    assert "content-type" not in request.headers
    assert request.content == b""


async def test_post_sends_json_and_parses_the_model() -> None:
    server = Server(ok(KERNEL_MODEL, status=201))
    request = rest.start_kernel("python3", env={"KERNEL_USERNAME": "bob"})
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            model = await http.call(request, rest.parse_start_kernel, timeout=120)
    assert model.id == KID
    sent = server.requests[0]
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"name": "python3", "env": {"KERNEL_USERNAME": "bob"}}
    assert sent.extensions["timeout"] == {"connect": 120, "read": 120, "write": 120, "pool": 120}


async def test_query_and_extra_headers_reach_the_server_encoded() -> None:
    server = Server(ok())
    request = rest.HttpRequest(
        method="GET",
        path="api/contents/a%20b.txt",
        query={"content": "0", "hash": "1", "q": "x&y=z"},
        headers={"Range": "bytes=0-9"},
    )
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            await http.send(request)
    (sent,) = server.requests
    assert sent.url.params == httpx.QueryParams({"content": "0", "hash": "1", "q": "x&y=z"})
    assert b"q=x%26y%3Dz" in sent.url.query
    assert sent.headers["range"] == "bytes=0-9"
    assert sent.headers.get_list("authorization") == [f"token {TOKEN}"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headers", {"Authorization": "token other"}),
        ("headers", {"cookie": "a=b"}),
        ("headers", {"X-Evil": "a\r\nHost: x"}),
        ("query", {"a": 1}),
    ],
)
def test_requests_refuse_unsafe_query_and_headers(field: str, value: dict[str, Any]) -> None:
    build = functools.partial(rest.HttpRequest, method="GET", path="api")
    with pytest.raises(LocalProtocolError):
        build(headers=value) if field == "headers" else build(query=value)


async def test_without_token_no_authorization_header() -> None:
    server = Server(ok())
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    with anyio.fail_after(5):
        async with HttpTransport(BASE, client=client, headers={"X-Team": "a"}) as http:
            await http.send(rest.api_status())
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].headers["x-team"] == "a"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://h:1", "http://h:1/api/kernels"),
        ("http://h:1/", "http://h:1/api/kernels"),
        ("http://h:1/user/alice", "http://h:1/user/alice/api/kernels"),
        ("http://h:1/user/alice/", "http://h:1/user/alice/api/kernels"),
        ("https://hub.example/user/a%40b/", "https://hub.example/user/a%40b/api/kernels"),
    ],
)
async def test_prefix_base_urls(base_url: str, expected: str) -> None:
    server = Server(ok([]))
    with anyio.fail_after(5):
        async with transport_for(server, base_url) as http:
            assert await http.call(rest.list_kernels(), rest.parse_list_kernels) == ()
    assert str(server.requests[0].url) == expected


async def test_token_replaces_a_user_authorization_header() -> None:
    server = Server(ok())
    with anyio.fail_after(5):
        http = transport_for(server, headers={"authorization": "Bearer other", "X-A": "1"})
        async with http:
            await http.send(rest.api_status())
    assert server.requests[0].headers.get_list("authorization") == [f"token {TOKEN}"]
    assert http.auth_headers() == {"X-A": "1", "Authorization": f"token {TOKEN}"}
    http.auth_headers().clear()
    assert "Authorization" in http.auth_headers()


async def test_injected_client_origin_is_stripped() -> None:
    server = Server(ok())
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(server), headers={"Origin": "http://evil.test"}
    )
    with anyio.fail_after(5):
        async with HttpTransport(BASE, token=TOKEN, client=client) as http:
            await http.send(rest.api_status())
    assert "origin" not in server.requests[0].headers


def test_websocket_url() -> None:
    http = HttpTransport("https://hub.example/user/alice", token=TOKEN)
    path = f"api/kernels/{KID}/channels"
    assert http.websocket_url(path) == f"wss://hub.example/user/alice/{path}"
    assert (
        HttpTransport("http://127.0.0.1:8888").websocket_url(f"{path}?session_id=s-1")
        == f"ws://127.0.0.1:8888/{path}?session_id=s-1"
    )
    for bad in ("/api", "api/../x", "api?x y", "api?a#b", "api?\x00"):
        with pytest.raises(LocalProtocolError):
            http.websocket_url(bad)


def test_repr_and_properties_hide_the_token() -> None:
    context = ssl.create_default_context()
    http = HttpTransport(BASE + "/p", token=TOKEN, verify=context)
    assert repr(http) == "<HttpTransport 'http://gw.test:8888/p/' token=set client=owned>"
    assert http.base_url == "http://gw.test:8888/p/"
    assert http.verify is context
    injected = HttpTransport(BASE, client=httpx.AsyncClient())
    assert repr(injected) == "<HttpTransport 'http://gw.test:8888/' token=none client=injected>"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("ftp://h/",), {}),
        (("http://",), {}),
        (("gw.test:8888",), {}),
        (("http://[::1",), {}),
        (("http://user:pw@h/",), {}),
        (("http://h/?token=x",), {}),
        (("http://h/#x",), {}),
        ((BASE,), {"timeout": 0}),
        ((BASE,), {"timeout": -1.0}),
        ((BASE,), {"timeout": math.inf}),
        ((BASE,), {"timeout": True}),
        ((BASE,), {"timeout": "5"}),
        ((BASE,), {"retries": -1}),
        ((BASE,), {"retries": 11}),
        ((BASE,), {"retries": 1.5}),
        ((BASE,), {"retries": True}),
        ((BASE,), {"token": f"{TOKEN}\r\nX: y"}),
        ((BASE,), {"headers": {"X-A": "a\r\nb"}}),
        ((BASE,), {"headers": {"X-Ä": "a"}}),
        ((BASE,), {"headers": {"X-A": 1}}),
        ((BASE,), {"headers": {"Origin": "http://gw.test:8888"}}),
    ],
)
def test_constructor_validation(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError) as info:
        HttpTransport(*args, **kwargs)
    assert_no_token(info.value, repr(info.value))


@pytest.mark.parametrize(
    ("base_url", "host_port"),
    [
        ("http://[::1]:8888/", "[::1]:8888"),
        ("https://gw.test/", "gw.test:443"),
        (BASE, "gw.test:8888"),
    ],
)
async def test_connect_messages_name_host_and_port(base_url: str, host_port: str) -> None:
    server = Server(httpx.ConnectError("refused"))
    with anyio.fail_after(5):
        async with transport_for(server, base_url, retries=0) as http:
            with pytest.raises(ConnectError) as info:
                await http.send(rest.api_status())
    assert str(info.value) == f"cannot connect to {host_port}: refused"


# --------------------------------------------------------------------------- retries


async def test_get_retries_on_503_with_exponential_backoff() -> None:
    server = Server(httpx.Response(503), httpx.Response(503), ok())
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            status = await http.call(rest.api_status(), rest.parse_api_status)
    assert status.version == "2.21.1"
    assert len(server.requests) == 3
    first_gap = server.times[1] - server.times[0]
    second_gap = server.times[2] - server.times[1]
    assert 0.09 <= first_gap < 1.0
    assert 0.19 <= second_gap < 1.5


async def test_retries_are_bounded_and_then_the_status_is_returned() -> None:
    server = Server(httpx.Response(503, json={"message": "busy", "reason": None}))
    started = anyio.current_time()
    with anyio.fail_after(5):
        async with transport_for(server, retries=3) as http:
            with pytest.raises(ServerError, match="busy") as info:
                await http.call(rest.list_kernels(), rest.parse_list_kernels)
    elapsed = anyio.current_time() - started
    assert info.value.status == 503
    assert len(server.requests) == 4
    assert 0.69 <= elapsed < 2.5  # 0.1 + 0.2 + 0.4 s of backoff


@pytest.mark.parametrize("status", [424, 502, 504])
async def test_other_retryable_statuses(status: int) -> None:
    server = Server(httpx.Response(status), ok())
    with anyio.fail_after(5):
        async with transport_for(server, retries=1) as http:
            assert await http.send(rest.delete_kernel(KID)) == (200, b'{"version":"2.21.1"}')
    assert len(server.requests) == 2


async def test_post_is_never_retried() -> None:
    server = Server(httpx.Response(503), ok(KERNEL_MODEL, status=201))
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            with pytest.raises(KernelLaunchError):
                await http.call(rest.start_kernel("python3"), rest.parse_start_kernel)
            connect_refused = Server(httpx.ConnectError("refused"))
            async with transport_for(connect_refused) as other:
                with pytest.raises(ConnectError):
                    await other.send(rest.interrupt_kernel(KID))
    assert len(server.requests) == 1
    assert len(connect_refused.requests) == 1


async def test_errors_that_are_not_transient_are_not_retried() -> None:
    server = Server(httpx.Response(500), ok())
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            assert (await http.send(rest.api_status()))[0] == 500
        async with transport_for(Server(httpx.Response(503)), retries=0) as once:
            assert (await once.send(rest.api_status()))[0] == 503
    assert len(server.requests) == 1


async def test_get_retries_after_a_connect_error() -> None:
    server = Server(httpx.ConnectError("[Errno 111] Connection refused"), ok(KERNEL_MODEL))
    with anyio.fail_after(5):
        async with transport_for(server) as http:
            model = await http.call(rest.get_kernel(KID), rest.parse_get_kernel)
    assert model.name == "python3"
    assert len(server.requests) == 2
