"""Closing a WebSocket: ``aclose`` runs the close handshake once, survives a ping in the
middle, lets an active reader finish it, and gives up on a silent server.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from wsproto.connection import ConnectionState
from wsproto.events import (
    CloseConnection,
)

from jupyter_interp.errors import (
    ConnectionClosed,
    LocalProtocolError,
)

from .test_websocket import (
    connected,
)

pytestmark = pytest.mark.anyio


async def test_aclose_runs_the_close_handshake_and_is_idempotent() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):

            async def answer_close() -> None:
                close = await server.next_event()
                assert close == CloseConnection(code=1000, reason="done")
                assert isinstance(close, CloseConnection)
                await server.send(close.response())

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_close)
                await ws.aclose(reason="done")
            await ws.aclose()
            assert server.ws.state is ConnectionState.CLOSED
            with pytest.raises(anyio.EndOfStream):
                await server.stream.receive()
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive()
            assert info.value.code == 1000
            with pytest.raises(LocalProtocolError):
                await ws.aclose(code=999)


async def test_a_ping_during_the_close_handshake_does_not_derail_it() -> None:
    with anyio.fail_after(5):
        async with connected(close_timeout=3) as (ws, server):

            async def ping_then_answer_close() -> None:
                close = await server.next_event()
                assert isinstance(close, CloseConnection)
                await server.stream.send(b"\x89\x00")  # a ping, raw: wsproto won't send one now
                await server.send(close.response())

            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(ping_then_answer_close)
                await ws.aclose()
            assert anyio.current_time() - start < 1
            assert server.ws.state is ConnectionState.CLOSED


async def test_aclose_lets_the_active_reader_finish_the_handshake() -> None:
    with anyio.fail_after(5):
        async with connected() as (ws, server):
            outcome: list[int] = []

            async def read() -> None:
                with pytest.raises(ConnectionClosed) as info:
                    await ws.receive()
                outcome.append(info.value.code)

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.sleep(0.05)
                with pytest.raises(LocalProtocolError):
                    await ws.receive()  # a second reader is refused
                tg.start_soon(ws.aclose, 1001)
                close = await server.next_event()
                assert isinstance(close, CloseConnection)
                await server.send(close.response())
            assert outcome == [1001]


async def test_aclose_gives_up_on_a_silent_server() -> None:
    with anyio.fail_after(5):
        async with connected(close_timeout=0.2) as (ws, server):
            start = anyio.current_time()
            await ws.aclose()
            assert anyio.current_time() - start < 2
            assert isinstance(await server.next_event(), CloseConnection)
            assert await server.next_event() == CloseConnection(code=1006)
