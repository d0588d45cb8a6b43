"""The peers jupyter_interp is measured against through a server, each as an async
context manager (the ZMQ peers, with no server, are in ``zmq_peers``).

* ``websockets_kernel``: a plain client built on the ``websockets`` library, as most
  Jupyter WebSocket clients are written: legacy JSON frames, read until the reply and
  ``idle`` of the request arrive. It does nothing about delayed ACKs.
* ``raw_socket_kernel``: a blocking raw-socket WebSocket client (``raw_socket``) through
  the same server: the floor for any client of a server.
* ``raw_starter``: the minimal path to a usable kernel through a server, built from the
  same primitives the library uses (httpx POST, ``connect_websocket``, one
  ``kernel_info`` round trip, nothing else): the floor for ``Client.start_session``.

Every kernel started here is shut down when its block exits, whatever happened.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import anyio
import anyio.to_thread
import httpx

from jupyter_interp.io.connect import connect_websocket
from jupyter_interp.io.websocket import WebSocket
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.wire import V1_SUBPROTOCOL, codec_for

from .raw_socket import RawSocketKernel, execute_content

__all__ = [
    "RawKernel",
    "RawStarter",
    "WebsocketsKernel",
    "raw_socket_kernel",
    "raw_starter",
    "websockets_kernel",
]

_TIMEOUT = 60.0


async def _start_kernel(http: httpx.AsyncClient, kernel_name: str) -> str:
    response = await http.post("api/kernels", json={"name": kernel_name})
    response.raise_for_status()
    kernel_id: str = response.json()["id"]
    return kernel_id


async def _delete_kernel(http: httpx.AsyncClient, kernel_id: str) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(30):
        await http.delete(f"api/kernels/{kernel_id}")


def _http(url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"token {token}"},
        timeout=_TIMEOUT,
        trust_env=False,
    )


@asynccontextmanager
async def _server_kernel(url: str, token: str, kernel_name: str) -> AsyncIterator[str]:
    """The id of a fresh kernel on the server at ``url``, deleted when the block exits."""
    async with _http(url, token) as http:
        kernel_id = await _start_kernel(http, kernel_name)
        try:
            yield kernel_id
        finally:
            await _delete_kernel(http, kernel_id)


class WebsocketsKernel:
    """A kernel on a server, driven by a plain ``websockets`` client (legacy JSON frames)."""

    def __init__(self, connection: Any, session: str) -> None:
        self._connection = connection
        self._session = session

    async def execute(self, code: str) -> dict[str, Any]:
        msg_id = uuid.uuid4().hex
        request = {
            "channel": "shell",
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "session": self._session,
                "username": "bench",
                "date": datetime.now(timezone.utc).isoformat(),
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": execute_content(code),
        }
        await self._connection.send(json.dumps(request))
        reply: dict[str, Any] | None = None
        idle = False
        with anyio.fail_after(_TIMEOUT):
            while reply is None or not idle:
                message = json.loads(await self._connection.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["msg_type"] == "execute_reply":
                    reply = message
                elif message["msg_type"] == "status":
                    idle = idle or message["content"].get("execution_state") == "idle"
        return reply


@asynccontextmanager
async def websockets_kernel(
    url: str, token: str, kernel_name: str = "python3"
) -> AsyncIterator[WebsocketsKernel]:
    """A fresh kernel on the server at ``url`` with a ``websockets`` connection to it."""
    from websockets.asyncio.client import connect

    async with _server_kernel(url, token, kernel_name) as kernel_id:
        session = uuid.uuid4().hex
        ws_url = url.replace("http", "ws", 1) + (
            f"api/kernels/{kernel_id}/channels?session_id={session}"
        )
        headers = {"Authorization": f"token {token}"}
        async with connect(ws_url, additional_headers=headers, max_size=None) as connection:
            yield WebsocketsKernel(connection, session)


class RawKernel:
    """What ``RawStarter.start`` produced: a kernel id and its open WebSocket.

    ``execute`` is the floor of a client built on this library's own I/O layer: the
    WebSocket adapter and the codec, with no Session (no reader task, tracker, routing
    or deadlines): what the Session's machinery costs shows against it.
    """

    def __init__(self, kernel_id: str, websocket: WebSocket) -> None:
        self.kernel_id = kernel_id
        self.websocket = websocket
        self._codec = codec_for(websocket.subprotocol)
        self._factory = MessageFactory(
            session=uuid.uuid4().hex,
            new_id=lambda: uuid.uuid4().hex,
            clock=lambda: datetime.now(timezone.utc),
        )

    async def execute(self, code: str) -> None:
        request = self._factory.execute_request(code)
        await self.websocket.send(self._codec.encode(request))
        reply = idle = False
        with anyio.fail_after(_TIMEOUT):
            while not (reply and idle):
                message = self._codec.decode(await self.websocket.receive())
                if message.parent_msg_id != request.msg_id:
                    continue
                reply = reply or message.msg_type == "execute_reply"
                idle = idle or (
                    message.msg_type == "status"
                    and message.content.get("execution_state") == "idle"
                )


class RawStarter:
    """Starts kernels the minimal way over one kept-alive HTTP client."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self._http, self._url, self._token = http, url, token
        self._running: dict[str, RawKernel] = {}

    async def start(self, kernel_name: str = "python3") -> RawKernel:
        """POST a kernel, open its WebSocket, one kernel_info round trip."""
        kernel_id = await _start_kernel(self._http, kernel_name)
        try:
            websocket = await connect_websocket(
                f"{self._url}api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
                headers={"Authorization": f"token {self._token}"},
                subprotocols=(V1_SUBPROTOCOL,),
            )
        except BaseException:
            await _delete_kernel(self._http, kernel_id)
            raise
        kernel = self._running[kernel_id] = RawKernel(kernel_id, websocket)
        await _kernel_info(websocket)
        return kernel

    async def stop(self, kernel: RawKernel) -> None:
        """Close the WebSocket and delete the kernel (shielded)."""
        self._running.pop(kernel.kernel_id, None)
        with anyio.CancelScope(shield=True):
            await kernel.websocket.aclose()
        await _delete_kernel(self._http, kernel.kernel_id)

    async def stop_all(self) -> None:
        for kernel in list(self._running.values()):
            await self.stop(kernel)


async def _kernel_info(websocket: WebSocket) -> None:
    codec = codec_for(websocket.subprotocol)
    factory = MessageFactory(
        session=uuid.uuid4().hex,
        new_id=lambda: uuid.uuid4().hex,
        clock=lambda: datetime.now(timezone.utc),
    )
    request = factory.kernel_info_request()
    await websocket.send(codec.encode(request))
    with anyio.fail_after(_TIMEOUT):
        while True:
            message = codec.decode(await websocket.receive())
            if message.parent_msg_id == request.msg_id and message.msg_type == "kernel_info_reply":
                return


@asynccontextmanager
async def raw_starter(url: str, token: str) -> AsyncIterator[RawStarter]:
    """A ``RawStarter`` whose kernels are all deleted when the block exits."""
    async with _http(url, token) as http:
        starter = RawStarter(http, url, token)
        try:
            yield starter
        finally:
            with anyio.CancelScope(shield=True):
                await starter.stop_all()


@asynccontextmanager
async def raw_socket_kernel(
    url: str, token: str, kernel_name: str = "python3"
) -> AsyncIterator[RawSocketKernel]:
    """A fresh kernel on the server at ``url`` with a blocking raw-socket client on it."""
    async with _server_kernel(url, token, kernel_name) as kernel_id:
        kernel = RawSocketKernel(url, token, kernel_id, timeout=_TIMEOUT)
        try:
            kernel.kernel_info()
            yield kernel
        finally:
            kernel.close()
