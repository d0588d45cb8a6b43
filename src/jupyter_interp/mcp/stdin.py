"""This process's stdin as lines an event loop can stop waiting for.

Strategy: a daemon thread does the blocking reads and hands each line to the event loop
through an unbuffered memory object stream (``from_thread.run`` with the loop's token);
the server iterates the receiving end, and that wait can be cancelled. The MCP SDK's own
stdin reader runs in a worker thread that cancellation cannot stop, so a signal could
not end a stdio server whose host keeps the pipe open (and, on asyncio, that worker
thread kept the process alive).

Invariants: lines arrive in order, decoded as UTF-8 (bad bytes replaced); EOF ends the
iteration; the thread never outlives the process (daemon) and stops at its next line
once the reader is closed or the event loop is gone.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import BinaryIO

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["StdinLines"]


class StdinLines:
    """``async with StdinLines() as lines: async for line in lines: ...``"""

    def __init__(self, source: BinaryIO | None = None) -> None:
        self._source = source if source is not None else sys.stdin.buffer
        send, receive = anyio.create_memory_object_stream[str](0)
        self._send: MemoryObjectSendStream[str] = send
        self._receive: MemoryObjectReceiveStream[str] = receive

    async def __aenter__(self) -> StdinLines:
        token = anyio.lowlevel.current_token()
        thread = threading.Thread(target=self._pump, args=(token,), name="stdin", daemon=True)
        thread.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._receive.close()

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        try:
            for raw in iter(self._source.readline, b""):
                line = raw.decode("utf-8", "replace")
                anyio.from_thread.run(self._send.send, line, token=token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.RunFinishedError):
            return  # the reader is gone, or the event loop: nobody wants more lines
