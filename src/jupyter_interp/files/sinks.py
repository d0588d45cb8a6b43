"""The two ready-made sinks of a streaming download: all bytes in memory, or a file.

Strategy: both transfer routes (kernel snippets, Contents API) stream a download into
an async ``sink(chunk)`` that only gets verified bytes; these helpers wrap such a
``download_to`` so every route offers the same conveniences with the same guarantees.

``HeldBack`` is what such a route puts between its ranges and the sink: it hands
each chunk over one behind, so the last goes only once the whole sha256 matched.

Invariant: a local file is written to a temp name beside it and renamed onto it only
once the download was verified; on any failure, cancellation included, the temp file
is removed (shielded) and an existing file is left as it was.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable

import anyio

from ..errors import ChecksumMismatch
from ..protocol.files.replies import FileStat

__all__ = ["DownloadTo", "HeldBack", "download_bytes", "download_file"]

#: ``download_to(path, sink)`` of a transfer route
DownloadTo = Callable[[str, Callable[[bytes], Awaitable[object]]], Awaitable[FileStat]]


async def download_bytes(download_to: DownloadTo, path: str) -> bytes:
    """The whole file at ``path`` as bytes (verified)."""
    parts: list[bytes] = []

    async def collect(data: bytes) -> None:
        parts.append(data)

    await download_to(path, collect)
    return b"".join(parts)


async def download_file(
    download_to: DownloadTo, path: str, destination: str | os.PathLike[str]
) -> FileStat:
    """Stream ``path`` into a local file, replaced atomically once verified."""
    final = anyio.Path(destination)
    partial = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
    try:
        try:
            handle = await anyio.open_file(partial, "wb")
        except OSError as exc:  # name what the caller gave, not our temporary file
            raise type(exc)(exc.errno, exc.strerror, os.fspath(destination)) from exc
        async with handle:
            stat = await download_to(path, handle.write)
        await partial.replace(final)
        return stat
    finally:
        with anyio.CancelScope(shield=True):
            await partial.unlink(missing_ok=True)


class HeldBack:
    """Hands chunks to a sink one behind, hashing them: the last chunk goes only once
    the whole sha256 matched, so a sink never holds a complete unverified file."""

    def __init__(self, sink: Callable[[bytes], Awaitable[object]]) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self._held: bytes | None = None
        #: whether the sink was called (set before the call: its errors count as after)
        self.started = False

    async def add(self, data: bytes) -> None:
        self._digest.update(data)
        held, self._held = self._held, data
        if held is not None:
            self.started = True
            await self._sink(held)

    async def finish(self, sha256: str, target: str) -> None:
        """Verify the digest, then hand over the held chunk.

        Raises:
            ChecksumMismatch: the bytes do not match ``sha256``.
        """
        if self._digest.hexdigest() != sha256:
            raise ChecksumMismatch(f"the downloaded bytes of {target!r} do not match its sha256")
        if self._held is not None:
            self.started = True
            await self._sink(self._held)
            self._held = None
