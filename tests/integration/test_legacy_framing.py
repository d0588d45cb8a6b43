"""A server that declines the v1 subprotocol: everything works over the legacy framing.

Jupyter Server before 2.0 (and any server configured so) answers the WebSocket upgrade
without a subprotocol and sends each message as one JSON text frame, or a legacy
binary frame when it has buffers. One such server (``kernel_ws_protocol`` set empty)
serves a whole session here: outputs of every kind, an error, state across cells, and
a file moved in and out through the kernel, on both backends.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from jupyter_interp.io.connect import connect_websocket
from jupyter_interp.session import Session

from .conftest import module_session
from .servers import RunningServer, running_jupyter_server
from .shared_kernel import module_backend  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

_TIMEOUT = 60


@pytest.fixture(scope="module")
def legacy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_jupyter_server(tmp_path_factory.mktemp("legacy"), legacy_framing=True) as server:
        yield server


@pytest.fixture(scope="module")
async def session(
    anyio_backend: str, legacy_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Session]:
    async with module_session(legacy_server, tmp_path_factory) as session:
        yield session


async def test_the_server_declines_the_v1_subprotocol(
    legacy_server: RunningServer, session: Session
) -> None:
    url = f"{legacy_server.url}api/kernels/{session.kernel_id}/channels"
    with anyio.fail_after(_TIMEOUT):
        websocket = await connect_websocket(
            url, headers={"Authorization": f"token {legacy_server.token}"}
        )
        async with websocket:
            assert websocket.subprotocol is None
            assert isinstance(await websocket.receive(), str)  # the server's status message


async def test_outputs_errors_and_state(session: Session, tiny_png: bytes) -> None:
    with anyio.fail_after(_TIMEOUT):
        first = await session.execute(
            "import sys\nfrom IPython.display import Image, display\n"
            "legacy_answer = 6 * 7\nprint('h\u00e9')\nprint('e', file=sys.stderr)\n"
            f"display(Image(data={tiny_png!r}, format='png'))\nlegacy_answer"
        )
        second = await session.execute("legacy_answer + 1")
        failed = await session.execute("1 / 0")

    assert first.ok
    assert (first.stdout, first.stderr, first.result) == ("h\u00e9\n", "e\n", "42")
    assert [o.kind for o in first.outputs] == ["display_data", "execute_result"]
    assert base64.b64decode(first.outputs[0].data["image/png"]) == tiny_png
    assert second.result == "43"
    assert first.execution_count is not None
    assert second.execution_count == first.execution_count + 1
    assert not failed.ok
    assert failed.error is not None
    assert failed.error.ename == "ZeroDivisionError"


async def test_a_file_goes_in_and_comes_back(session: Session) -> None:
    data = os.urandom(300_000)
    with anyio.fail_after(_TIMEOUT):
        committed = await session.upload("legacy/blob.bin", data)
        back = await session.download("legacy/blob.bin")
    assert committed.size == len(data)
    assert back == data
