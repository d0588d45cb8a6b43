"""Big outgoing messages go out as several frames, always whole (the adapter's send side).

wsproto copies a frame's payload several times while masking it, so ``WebSocket.send``
cuts messages into frames of at most ``_FRAGMENT_SIZE``; the peer must still see exactly
one message, and a cancelled or failing sender must never leave half of one.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from wsproto.events import BytesMessage, TextMessage

from jupyter_interp.errors import LocalProtocolError
from jupyter_interp.io.websocket import _FRAGMENT_SIZE

from .test_websocket import FakeServer, connected

pytestmark = pytest.mark.anyio


async def _frames_of_next_message(server: FakeServer) -> tuple[list[int], str | bytes]:
    """Sizes of the frames of the next data message, and the reassembled message."""
    sizes: list[int] = []
    parts: list[Any] = []
    current = 0
    while True:
        event = await server.next_event()
        if not isinstance(event, TextMessage | BytesMessage):
            continue
        parts.append(event.data)
        current += len(event.data)
        if event.frame_finished:
            sizes.append(current)
            current = 0
        if event.message_finished:
            if isinstance(event, TextMessage):
                return sizes, "".join(parts)
            return sizes, b"".join(parts)


async def test_a_big_binary_message_is_sent_whole_in_bounded_frames() -> None:
    payload = bytes(range(256)) * (3 * _FRAGMENT_SIZE // 256 + 7)
    with anyio.fail_after(10):
        async with connected() as (ws, server):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ws.send, payload)
                sizes, message = await _frames_of_next_message(server)
            await ws.send(b"")
            empty_sizes, empty = await _frames_of_next_message(server)
    assert message == payload
    assert len(sizes) == 4
    assert max(sizes) == _FRAGMENT_SIZE
    assert sum(sizes) == len(payload)
    assert (empty_sizes, empty) == ([0], b"")


async def test_a_big_text_message_keeps_its_characters() -> None:
    text = "é☃😀x" * (_FRAGMENT_SIZE // 4 + 10)
    with anyio.fail_after(20):
        async with connected() as (ws, server), anyio.create_task_group() as tg:
            tg.start_soon(ws.send, text)
            sizes, message = await _frames_of_next_message(server)
    assert message == text
    assert len(sizes) == 2  # cut after _FRAGMENT_SIZE characters, not bytes


async def test_a_big_unencodable_text_is_refused_before_any_frame() -> None:
    text = "a" * _FRAGMENT_SIZE + "\ud800" + "b" * _FRAGMENT_SIZE
    with anyio.fail_after(10):
        async with connected() as (ws, server):
            with pytest.raises(LocalProtocolError, match="UTF-8"):
                await ws.send(text)
            await ws.send("after")
            sizes, message = await _frames_of_next_message(server)
    assert (sizes, message) == ([5], "after")


async def test_a_sender_cancelled_between_frames_still_sends_the_whole_message() -> None:
    payload = b"z" * (3 * _FRAGMENT_SIZE)
    with anyio.fail_after(20):
        async with connected(buffer=1, chunk=64 * 1024) as (ws, server):
            send_scope = anyio.CancelScope()

            async def send_then_get_cancelled() -> None:
                with send_scope:
                    await ws.send(payload)

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_then_get_cancelled)
                await anyio.sleep(0.05)  # blocked on the full buffer, mid-message
                send_scope.cancel()
                sizes, message = await _frames_of_next_message(server)
            await ws.send(b"after")
            _, after = await _frames_of_next_message(server)
    assert message == payload
    assert len(sizes) == 3
    assert after == b"after"
