"""In-memory byte-stream pairs for adapter tests, on asyncio and trio alike.

Strategy: each direction is an anyio memory object stream of ``bytes`` chunks; a
``MemoryByteStream`` pairs one sending and one receiving end and behaves like a
socket: ``receive(max_bytes)`` returns at most ``max_bytes`` (keeping the rest),
raises ``EndOfStream`` once the peer sent EOF or closed, and ``send`` raises
``BrokenResourceError`` once the peer closed. A bounded buffer gives backpressure, and
``send`` delivers big writes in ``max_chunk`` pieces with a checkpoint between them,
like a socket doing partial writes (so unserialized concurrent senders would interleave).
(anyio has no byte-stream pair; trio's ``memory_stream_pair`` is trio-only.)
"""

from __future__ import annotations

import anyio
from anyio.abc import ByteStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["MemoryByteStream", "memory_stream_pair"]


class MemoryByteStream(ByteStream):
    """One end of an in-memory, socket-like byte stream."""

    def __init__(
        self,
        send_stream: MemoryObjectSendStream[bytes],
        receive_stream: MemoryObjectReceiveStream[bytes],
        max_chunk: int,
    ) -> None:
        self._max_chunk = max_chunk
        self._send_stream = send_stream
        self._receive_stream = receive_stream
        self._pending = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        while not self._pending:
            self._pending = await self._receive_stream.receive()
        chunk, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return chunk

    async def send(self, item: bytes) -> None:
        data = bytes(item)
        for start in range(0, len(data), self._max_chunk):
            await self._send_stream.send(data[start : start + self._max_chunk])

    async def send_eof(self) -> None:
        await self._send_stream.aclose()

    async def aclose(self) -> None:
        await self._send_stream.aclose()
        await self._receive_stream.aclose()


def memory_stream_pair(
    max_buffer_chunks: float = 16, max_chunk: int = 65536
) -> tuple[MemoryByteStream, MemoryByteStream]:
    """Return two connected ends; what one sends, the other receives."""
    a_to_b_send, a_to_b_receive = anyio.create_memory_object_stream[bytes](max_buffer_chunks)
    b_to_a_send, b_to_a_receive = anyio.create_memory_object_stream[bytes](max_buffer_chunks)
    return (
        MemoryByteStream(a_to_b_send, b_to_a_receive, max_chunk),
        MemoryByteStream(b_to_a_send, a_to_b_receive, max_chunk),
    )
