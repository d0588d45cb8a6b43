"""File transfer on a Session, through kernel-side snippets (``protocol.files``).

Strategy: each transfer holds the Session's execution lock for its whole length, so a
transfer is never interleaved with user code, and runs one snippet per chunk with
``store_history=False`` (the user's execution count is untouched). Chunks are
pipelined (``pipeline``): up to ``_WINDOW`` chunk executions (``_UPLOAD_WINDOW`` for
uploads) are in flight, settled in order, so the client, the server and the kernel work
at the same time. On ipykernel an upload chunk's bytes travel as the execute_request's
binary buffer, untouched by base64 or JSON, once a probe (one per Session, at its first
upload) showed that buffers reach the kernel's code through this server; otherwise
chunks travel as ``upload_chunk_request`` builds them (for other IPython kernels the
data rides in a user expression, not in the cell, because IPython hashes and transforms
every cell in pure Python). Data streams: an upload reads its source chunk by chunk and
hashes as it goes; a download hands each verified chunk to a sink in order. Memory is
bounded by the window's chunks (``CHUNK_SIZE`` each) either way.

Downloads of non-empty files take the server's ``files/`` route instead of
``read_chunk`` snippets when the server serves the file the kernel's ``stat`` snippet
described (``direct``: same confinement, same lock, same verification).
Kernels whose language has no snippets (Deno, ...) move every file through the server's
Contents API instead (``contents``), where the server has one.

Invariants: an upload is atomic (the target is replaced only after the kernel checked
size and sha256; on any failure, cancellation included, the temp file is removed); a
download is verified chunk by chunk and against the whole-file sha256 before it is
reported complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
import weakref
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Mapping,
)
from contextlib import aclosing

import anyio

from ..errors import (
    FileTransferError,
    JupyterInterpError,
    LocalProtocolError,
    PathNotConfined,
    UnsupportedKernel,
)
from ..protocol.events import ExecutionFinished
from ..protocol.files.languages import snippets_for
from ..protocol.files.python import PYTHON_CALL_EXPRESSION, PythonFileSnippets
from ..protocol.files.replies import (
    ChunkStored,
    Deleted,
    DirListing,
    DownloadVerifier,
    FileChunk,
    FileStat,
    UploadAborted,
    UploadCommitted,
)
from ..protocol.files.snippets import (
    CHUNK_SIZE,
    FileSnippets,
    confine,
)
from ..protocol.result import ExecutionResult
from .contents import ContentsTransfer, contents_fallback
from .direct import DirectDownloads
from .host import TransferHost
from .pipeline import ChunkRequest, run_pipelined
from .sinks import download_bytes, download_file
from .sources import UploadSource, upload_chunks

__all__ = ["FileTransfer", "UploadSource"]

_ABORT_TIMEOUT = 30.0
#: Chunk executions in flight per transfer (see ``pipeline``).
_WINDOW = 2
#: Upload chunks in flight: one more than downloads, which measured ~10 % faster.
_UPLOAD_WINDOW = 3
#: Downloads from this size on take the server's ``files/`` route when it serves the
#: same file (``download_to``). Measured faster than chunk snippets at every size from
#: 1 byte (one kernel execution fewer: ~30 vs ~50 ms) to 50 MB (~6x); an empty file
#: needs no chunk, so nothing to gain.
DIRECT_DOWNLOAD_MIN = 1


def _stored_check(path: str, expected: int) -> Callable[[ExecutionResult], Awaitable[None]]:
    """The settle step of one upload chunk: the kernel must hold ``expected`` bytes."""

    async def check(result: ExecutionResult) -> None:
        outcome = result.user_expressions.get(PYTHON_CALL_EXPRESSION)
        if isinstance(outcome, Mapping) and outcome.get("status") == "error":
            failure = f"{outcome.get('ename', '')}: {outcome.get('evalue', '')}"
            raise FileTransferError(f"storing a chunk of {path!r} failed: {failure}")
        stored = ChunkStored.from_reply(result)
        if stored.size != expected:
            raise FileTransferError(
                f"the kernel holds {stored.size} bytes of {path!r}, expected {expected}"
            )

    return check


class FileTransfer:
    """File operations for one Session, confined to its ``file_root``.

    It refers to its Session weakly: the Session holds it (``Session.files``), and a
    reference cycle would keep every closed Session until a full garbage collection.
    """

    #: Whether upload chunks' binary buffers reach the kernel's code (None: not asked yet).
    _buffers_reach_kernel: bool | None = None

    def __init__(
        self,
        session: TransferHost,
        *,
        chunk_size: int = CHUNK_SIZE,
        direct_download_min: int = DIRECT_DOWNLOAD_MIN,
    ) -> None:
        self._session_ref = weakref.ref(session)
        self._chunk_size = chunk_size
        #: kernels without snippets: the Contents API backend, or why there is none
        self._fallback: ContentsTransfer | str | None = None
        #: downloads of at least this many bytes try the ``files/`` route (``download_to``)
        self._direct_min = direct_download_min
        #: that route, once probed at the first such download
        self._direct: DirectDownloads | None = None
        #: how the last upload or download went: "kernel" (snippets), "contents" (the
        #: Contents API fallback) or "files" (the ``files/`` route)
        self.route = "kernel"

    @property
    def _session(self) -> TransferHost:
        session = self._session_ref()
        if session is None:
            raise LocalProtocolError("this FileTransfer's Session is gone")
        return session

    async def _contents(self) -> ContentsTransfer | None:
        """The Contents API backend if the kernel has no snippets (probed once)."""
        try:
            self._snippets()
            return None
        except UnsupportedKernel:
            if self._fallback is None:
                self._fallback = await contents_fallback(self._session)
        if isinstance(self._fallback, str):
            raise UnsupportedKernel(self._fallback)
        return self._fallback

    def _snippets(self) -> FileSnippets:
        return snippets_for(self._session.language, root=self._session.file_root)

    async def _run(self, code: str) -> ExecutionResult:
        return await self._session._execute_locked(code, timeout=None, store_history=False)

    async def _binary_snippets(self, snippets: FileSnippets) -> PythonFileSnippets | None:
        """``snippets`` if upload chunks may travel as binary buffers, else None.

        Only ipykernel lets code read a request's buffers; whether they reach it through
        this server (a gateway or proxy could drop them) is probed once per Session.
        Called with the execution lock held.
        """
        if not isinstance(snippets, PythonFileSnippets):
            return None
        if self._buffers_reach_kernel is None:
            supported = self._session.kernel_info.get("implementation") == "ipython"
            if supported:
                code, expressions, probe = snippets.buffer_probe()
                result = await self._session._execute_locked(
                    code,
                    timeout=None,
                    store_history=False,
                    user_expressions=expressions,
                    buffers=(probe,),
                )
                supported = snippets.buffer_probe_passed(result)
            self._buffers_reach_kernel = supported
        return snippets if self._buffers_reach_kernel else None

    async def _run_chunk(
        self,
        code: str,
        expressions: Mapping[str, str],
        buffers: tuple[bytes, ...],
        accepted: anyio.Event,
    ) -> ExecutionResult:
        """One pipelined chunk: ``accepted`` is set at the first event the kernel sends."""
        result: ExecutionResult | None = None
        execution = self._session._run_execution(
            code,
            timeout=None,
            everything=True,
            store_history=False,
            user_expressions=expressions or None,
            buffers=buffers,
            nudges_unread=False,  # the pipeline nudges once the kernel is free for it
        )
        async with aclosing(execution) as events:
            async for event in events:
                accepted.set()
                if isinstance(event, ExecutionFinished):
                    result = event.result
        assert result is not None  # an execution always ends with ExecutionFinished
        return result

    async def upload(self, path: str, data: UploadSource) -> UploadCommitted:
        """Write ``data`` to ``path`` (relative to the file root) atomically.

        Raises:
            PathNotConfined: ``path`` leaves the file root, or ends with ``/`` (it
                names a directory, not a file).
        """
        if isinstance(path, str) and path.endswith("/"):
            raise PathNotConfined(f"path {path!r} ends with '/': name a file, not a directory")
        self.route = "kernel"
        if (contents := await self._contents()) is not None:
            self.route = "contents"
            return await contents.upload(path, data)
        snippets, target = self._snippets(), confine(path)
        transfer_id = uuid.uuid4().hex
        digest, size = hashlib.sha256(), 0
        async with self._session._exec_lock:
            binary = await self._binary_snippets(snippets)
            try:
                async with aclosing(upload_chunks(data, self._chunk_size)) as chunks:

                    async def requests() -> AsyncGenerator[ChunkRequest, None]:
                        nonlocal size
                        index = 0
                        buffers: tuple[bytes, ...] = ()
                        async for chunk in chunks:
                            if binary is None:
                                code, expressions = snippets.upload_chunk_request(
                                    target, transfer_id, index, chunk
                                )
                            else:
                                code, expressions, raw = binary.binary_upload_chunk_request(
                                    target, transfer_id, index, chunk
                                )
                                buffers = (raw,)
                            size += len(chunk)
                            digest.update(chunk)
                            index += 1
                            del chunk  # the request holds the data now: keep one copy
                            yield code, expressions, buffers, _stored_check(path, size)

                    await run_pipelined(
                        self._run_chunk,
                        requests(),
                        window=_UPLOAD_WINDOW,
                        nudge=self._session._nudge,
                    )
                return UploadCommitted.from_reply(
                    await self._run(
                        snippets.upload_commit(target, transfer_id, size, digest.hexdigest())
                    )
                )
            except BaseException:
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(_ABORT_TIMEOUT),
                    contextlib.suppress(JupyterInterpError),  # the first error is what matters
                ):
                    code = snippets.upload_abort(target, transfer_id)
                    UploadAborted.from_reply(await self._run(code))
                raise

    async def download_to(self, path: str, sink: Callable[[bytes], Awaitable[object]]) -> FileStat:
        """Stream ``path`` chunk by chunk into ``sink``; return the verified stat.

        The kernel's ``stat`` snippet confines and resolves ``path`` first. A file of at
        least ``direct_download_min`` bytes is then read over the server's ``files/``
        route if the server serves the same file there (``direct``);
        otherwise, or if that route fails before the first byte reached ``sink``,
        chunk snippets read it. Either way the execution lock is held throughout (no
        execution of this Session runs during a download), and the bytes must match
        the kernel's stat.

        Raises:
            PathNotConfined, RemoteFileNotFound: as the ``stat`` snippet raises them.
            FileTransferError: the file changed during the download.
            ChecksumMismatch: the bytes do not match the kernel's sha256 (on the
                ``files/`` route ``sink`` got all but the last range).
        """
        self.route = "kernel"
        if (contents := await self._contents()) is not None:
            self.route = "contents"
            return await contents.download_to(path, sink)
        snippets, target = self._snippets(), confine(path)
        async with self._session._exec_lock:
            stat = FileStat.from_reply(await self._run(snippets.stat(target)))
            if stat.size >= self._direct_min and await self._download_direct(path, stat, sink):
                self.route = "files"
                return stat
            verifier = DownloadVerifier(stat)

            async def hand_over(result: ExecutionResult) -> None:
                await sink(verifier.add(FileChunk.from_reply(result)))

            async def requests() -> AsyncGenerator[ChunkRequest, None]:
                for offset in range(0, stat.size, self._chunk_size):
                    length = min(self._chunk_size, stat.size - offset)
                    yield snippets.read_chunk(target, offset, length), {}, (), hand_over

            await run_pipelined(
                self._run_chunk, requests(), window=_WINDOW, nudge=self._session._nudge
            )
            verifier.finish()
        return stat

    async def _download_direct(
        self, path: str, stat: FileStat, sink: Callable[[bytes], Awaitable[object]]
    ) -> bool:
        """Read the file ``stat`` describes over ``files/`` (``DirectDownloads``);
        False: nothing reached ``sink``, read it with snippets."""
        if self._direct is None:
            self._direct = await DirectDownloads.for_session(
                self._session, chunk_size=self._chunk_size
            )
        return await self._direct.download(path, stat, sink)

    async def download(self, path: str) -> bytes:
        """The whole file at ``path`` as bytes (verified)."""
        return await download_bytes(self.download_to, path)

    async def download_file(self, path: str, destination: str | os.PathLike[str]) -> FileStat:
        """Stream ``path`` into a local file, replaced atomically once verified."""
        return await download_file(self.download_to, path, destination)

    async def stat(self, path: str) -> FileStat:
        """The regular file's size, mtime and sha256, or a directory's ``kind`` and mtime."""
        if (contents := await self._contents()) is not None:
            return await contents.stat(path)
        code = self._snippets().stat(confine(path), directories=True)
        async with self._session._exec_lock:
            return FileStat.from_reply(await self._run(code))

    async def list_dir(self, path: str = "") -> DirListing:
        if (contents := await self._contents()) is not None:
            return await contents.list_dir(path)
        target = confine(path, allow_root=True) if path else ""
        async with self._session._exec_lock:
            return DirListing.from_reply(await self._run(self._snippets().list_dir(target)))

    async def delete(self, path: str, *, recursive: bool = False) -> Deleted:
        if (contents := await self._contents()) is not None:
            return await contents.delete(path, recursive=recursive)
        async with self._session._exec_lock:
            code = self._snippets().delete(confine(path), recursive=recursive)
            return Deleted.from_reply(await self._run(code))
