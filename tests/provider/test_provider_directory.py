"""The provider's session directory (Jupyter Server session records) on
``httpx.MockTransport``: registering, listing, and what gateways and unreachable servers
get instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jupyter_interp.io.http import HttpTransport
from jupyter_interp.provider.directory import SessionDirectory, SessionMeta

from .offline import no_seed_environment  # noqa: F401 (an autouse fixture)

KID = "0b8e3f5c-2f35-4a4e-9a36-2a4c2f7f6b1e"


# -- the session directory -------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]
META = SessionMeta(
    session_id="run-1",
    kernel_id=KID,
    kernel_name="python3",
    language="python",
    created_at="2026-01-01T00:00:00+00:00",
)


def record_row(meta: SessionMeta, **changes: Any) -> dict[str, Any]:
    name = {"session_id": meta.session_id, "created_at": meta.created_at, "language": "python"}
    row: dict[str, Any] = {
        "id": "s-1",
        "path": f"jupyter-interp/{meta.kernel_id}",
        "type": "jupyter-interp",
        "name": json.dumps(name),
        "kernel": {"id": meta.kernel_id, "name": "python3", "execution_state": "idle"},
    }
    row.update(changes)
    return row


def directory_on(handler: Handler, seen: list[httpx.Request]) -> SessionDirectory:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return SessionDirectory(HttpTransport("http://jupyter.test/", client=client, retries=0))


def jupyter_server(routes: dict[tuple[str, str], httpx.Response]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        if key == ("GET", "/api/status"):
            return httpx.Response(200, json={"started": "2026-01-01T00:00:00Z"})
        return routes.get(key, httpx.Response(404, json={"message": "no"}))

    return handle


@pytest.mark.anyio
async def test_registering_keeps_the_first_record() -> None:
    older = {"session_id": "run-1", "created_at": "2025-12-31T00:00:00+00:00", "language": "py"}
    first = record_row(META, name=json.dumps(older))
    seen: list[httpx.Request] = []
    directory = directory_on(
        jupyter_server({("POST", "/api/sessions"): httpx.Response(201, json=first)}), seen
    )

    registered = await directory.register(META)

    assert registered.created_at == "2025-12-31T00:00:00+00:00"
    assert registered.language == "py"
    posted = json.loads(seen[-1].content)
    assert posted["path"] == f"jupyter-interp/{KID}"
    assert posted["type"] == "jupyter-interp"
    assert posted["kernel"] == {"id": KID}
    assert json.loads(posted["name"])["session_id"] == "run-1"


@pytest.mark.anyio
async def test_gateways_get_no_session_records() -> None:
    seen: list[httpx.Request] = []
    directory = directory_on(lambda request: httpx.Response(404, json={}), seen)

    registered = await directory.register(META)
    listed = await directory.list()

    assert registered == META
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/api/status"),
        ("GET", "/api/kernels"),
    ]
    assert listed is None


@pytest.mark.anyio
async def test_a_record_bound_to_another_kernel_is_deleted_at_once() -> None:
    stray = record_row(META, id="s-stray", kernel={"id": str(uuid.uuid4()), "name": "python3"})
    seen: list[httpx.Request] = []
    directory = directory_on(
        jupyter_server({("POST", "/api/sessions"): httpx.Response(201, json=stray)}), seen
    )

    registered = await directory.register(META)

    assert registered == META
    assert (seen[-1].method, seen[-1].url.path) == ("DELETE", "/api/sessions/s-stray")


@pytest.mark.anyio
async def test_listing_reads_our_records_and_skips_the_rest() -> None:
    rows = [
        record_row(META),
        record_row(META, type="notebook"),
        record_row(META, name="not json"),
        record_row(META, path="jupyter-interp/another"),
        {"unexpected": True},
        "junk",
    ]
    seen: list[httpx.Request] = []
    directory = directory_on(
        jupyter_server({("GET", "/api/sessions"): httpx.Response(200, json=rows)}), seen
    )

    listed = await directory.list()

    assert listed == [(META, "idle")]


@pytest.mark.anyio
async def test_a_gateway_that_lists_kernels_lists_them_as_sessions() -> None:
    kernels = [
        {"id": KID, "name": "python3", "execution_state": "busy"},
        {"id": "not-a-kernel-id", "name": "python3"},
    ]

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/kernels":
            return httpx.Response(200, json=kernels)
        return httpx.Response(404, json={})

    listed = await directory_on(gateway, []).list()

    assert listed == [
        (
            SessionMeta(
                session_id=KID, kernel_id=KID, kernel_name="python3", language="", created_at=""
            ),
            "busy",
        )
    ]


@pytest.mark.anyio
async def test_an_unreachable_server_degrades_quietly() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    directory = directory_on(refuse, [])

    assert await directory.register(META) == META
    assert await directory.list() is None
    assert not await directory.has_registry()
