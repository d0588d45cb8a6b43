"""What an upload reads from: bytes or an async iterable of bytes, re-cut into chunks.

Strategy: every upload route (kernel snippets, the Contents API) reads its source
through ``upload_chunks``, which yields chunks of exactly the route's size (the last
may be shorter) and holds at most one chunk of pending bytes, so an upload's memory is
bounded by the chunk size whatever the source yields.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable

from ..errors import LocalProtocolError

__all__ = ["UploadSource", "upload_chunks"]

UploadSource = bytes | bytearray | memoryview | AsyncIterable[bytes]


async def upload_chunks(source: UploadSource, size: int) -> AsyncGenerator[bytes, None]:
    """Re-cut ``source`` into chunks of exactly ``size`` bytes (the last may be shorter)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    if not isinstance(source, AsyncIterable):
        raise LocalProtocolError(
            f"upload data must be bytes or an async iterable of bytes, not {type(source).__name__}"
        )
    pending = bytearray()
    async for piece in source:
        if not isinstance(piece, (bytes, bytearray, memoryview)):
            raise LocalProtocolError(f"upload stream yielded {type(piece).__name__}, not bytes")
        pending += piece
        while len(pending) >= size:
            with memoryview(pending) as view:
                chunk = bytes(view[:size])  # one copy (slicing the bytearray would make two)
            del pending[:size]
            yield chunk
    if pending:
        yield bytes(pending)
