"""File transfer over Jupyter Server's Contents API, for kernels without file snippets.

Strategy: the same operations as ``FileTransfer`` (same return values, same errors),
but over REST (``protocol.contents``) on the Client's ``HttpTransport``, so any kernel
works, whatever its language, and no kernel time is used (no execution lock is taken).
A caller's path is checked by ``confine`` and appended to the file root's API path
(``contents_root``: the kernel's working directory relative to the server root, then
the session's relative file root).

* Upload: chunks of ``chunk_size`` bytes go as a chunked ``PUT`` (``chunk`` = 1, 2,
  ..., then an empty ``-1``) to ``contents_swap.temp_name`` next to the target (no
  leading dot: the server refuses hidden names unless ``allow_hidden``); the client
  hashes as it reads and checks the size after every chunk. After the first chunk,
  ``files/`` must serve the temp file. The server's size and sha256 of the temp file
  (``hash=1``) must then match before the temp file is put in place.
* Replace (``replace.Swapper``): a rename refuses an existing target, so an existing
  file is renamed aside (``contents_swap.aside_name``), the temp file onto the target,
  and the old file is deleted. If the second rename fails (or is cancelled) the old
  file is renamed back. Every upload first finishes what a crashed replace of its
  target left (``Swapper.recover``); so do a download and a stat that find it missing.
* Download: stat with sha256, then ``GET files/<path>`` with ``Range`` per chunk; bytes
  are hashed as they arrive and handed to the sink in order, one range behind: the
  last range goes only once the digest matched, so a sink never holds a whole
  unverified file. ``download_matching`` does the same for a snippet kernel's stat
  (``direct``), and hands nothing over unless the server's model of the
  path has that stat's size and mtime.

Guarantees: memory is bounded by two chunks (plus an upload chunk's base64 and JSON
forms) either way. The target name never holds a partial or unverified file; a new
file appears by one rename; while an existing one is replaced, the name is absent
between two renames (the server has no atomic replace: ``contents_swap``). A crash
there leaves the old file under its ``.old`` name, put back by the next upload,
download or stat of the target; a stray ``.old`` after a finished swap is deleted by
the next upload. On any failure, cancellation included, the temp file is emptied and
deleted (shielded, bounded); a file moved aside is never written to, only renamed or
deleted (it may be a symlink). Deletions go to the server's trash when
``delete_to_trash`` is on.

Limits: paths are confined lexically. The Contents API (jupyter_server 2.21) follows
symlinks without saying so: its models come from ``lstat`` (a symlink to a file shows
the link's size and mtime, a symlink to a directory looks like a directory) and it
does not resolve paths against its root. The one check the server offers is
``files/``, which refuses (403, ``PathNotConfined``) a path that resolves outside the
server root: downloads read through it, and an upload stops after its first chunk
when its temp file does (the chunk is deleted again). A symlink leading elsewhere
inside the server root is followed by stat, list, upload and download; an upload onto
a symlinked file replaces the link, never the file it points to. Hidden names are
refused or not listed unless the server sets ``ContentsManager.allow_hidden``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

import anyio

from ..errors import (
    ChecksumMismatch,
    FileTransferError,
    JupyterInterpError,
    PathConflict,
    RemoteFileNotFound,
    UnsupportedKernel,
)
from ..io.http import HttpTransport
from ..protocol import contents, contents_swap
from ..protocol.files.replies import Deleted, DirListing, EntryKind, FileStat, UploadCommitted
from ..protocol.files.snippets import CHUNK_SIZE
from ..protocol.rest import HttpRequest
from .host import TransferHost
from .replace import Swapper
from .sinks import HeldBack, download_bytes, download_file
from .sources import UploadSource, upload_chunks

__all__ = ["ContentsTransfer", "contents_fallback", "has_contents_api"]

T = TypeVar("T")
_CLEANUP_TIMEOUT = 30.0
_log = logging.getLogger(__name__)


async def has_contents_api(http: HttpTransport) -> bool:
    """Whether the server behind ``http`` has a Contents API (Jupyter Server does; the
    gateways answer 404).

    Raises:
        AuthenticationError, ServerError, TransportError: the probe failed otherwise.
    """
    return await http.call(contents.probe(), contents.parse_probe)


class ContentsTransfer:
    """File operations over the Contents API, confined to one file root.

    Args:
        http: the Client's transport.
        root: the API path of the file root (see ``contents.contents_root``).
        chunk_size: raw bytes per upload chunk and download range.
    """

    def __init__(self, http: HttpTransport, *, root: str, chunk_size: int = CHUNK_SIZE) -> None:
        self._http = http
        self._root = contents.api_path(root, "", allow_root=True)
        self._chunk_size = chunk_size
        self._swap = Swapper(self._rename, self._remove, self._names)

    @classmethod
    def for_session(
        cls, session: TransferHost, *, kernel_dir: str = "", chunk_size: int = CHUNK_SIZE
    ) -> ContentsTransfer:
        """The backend for ``session``: its file root under ``kernel_dir``.

        Args:
            session: a Session on a Jupyter Server.
            kernel_dir: the API path its kernel was started with (``""`` = server root).
            chunk_size: raw bytes per upload chunk and download range.

        Raises:
            UnsupportedKernel: the session's file root is absolute.
            PathNotConfined: ``kernel_dir`` or the file root contains ``..`` or NUL.
        """
        root = contents.contents_root(session.file_root, kernel_dir=kernel_dir)
        return cls(session._link.http, root=root, chunk_size=chunk_size)

    def __repr__(self) -> str:
        return f"<ContentsTransfer root={self._root!r}>"

    def api_path(self, path: str) -> str:
        """The API path of ``path`` (relative to the file root; checked by ``confine``)."""
        return contents.api_path(self._root, path)

    async def _call(self, request: HttpRequest, parse: Callable[..., T], **options: object) -> T:
        return await self._http.call(request, functools.partial(parse, **options))

    async def _file_stat(self, target: str) -> FileStat:
        """The regular file at API path ``target`` (a directory is a FileTransferError)."""
        return await self._call(contents.file_stat(target), contents.parse_file_stat, path=target)

    async def _model(self, path: str) -> contents.ContentsModel | None:
        try:
            return await self._call(contents.get_model(path), contents.parse_model, path=path)
        except RemoteFileNotFound:
            return None

    async def _rename(self, path: str, new_path: str) -> bool:
        request = contents.rename(path, new_path)
        return await self._call(request, contents.parse_renamed, path=path)

    async def _ensure_directory(self, path: str) -> None:
        """Create ``path`` and its missing parents (an existing directory is kept)."""
        model = await self._model(path) if path else None
        if model is None and path:
            await self._ensure_directory(path.rpartition("/")[0])
            model = await self._call(contents.make_directory(path), contents.parse_model, path=path)
        if model is not None and model.kind is not contents.ContentsKind.DIRECTORY:
            raise PathConflict(f"{path!r} is not a directory")

    async def _names(self, directory: str) -> list[str] | None:
        """The names in ``directory``; None when it is missing or no directory."""
        request = contents.list_directory(directory)
        try:
            listing = await self._call(request, contents.parse_listing, path=directory or "/")
        except FileTransferError:
            return None
        return [entry.name for entry in listing.entries]

    async def _remove(self, path: str) -> None:
        """Delete ``path`` without writing to it (it may be a symlink): shielded,
        bounded, errors only logged."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
            try:
                await self._call(contents.delete(path), contents.parse_deleted, path=path)
            except JupyterInterpError as exc:
                _log.warning("could not remove %r: %s", path, exc)

    async def _target_stat(self, target: str) -> FileStat:
        """``_file_stat``, after putting back a target an interrupted replace left missing."""
        try:
            return await self._file_stat(target)
        except RemoteFileNotFound:
            if not await self._swap.recover(target):
                raise
        return await self._file_stat(target)

    async def _discard(self, path: str) -> None:
        """Empty and delete ``path``: shielded, bounded, errors only logged."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
            try:
                await self._call(contents.truncate(path), contents.parse_model, path=path)
                await self._call(contents.delete(path), contents.parse_deleted, path=path)
            except JupyterInterpError as exc:
                _log.warning("could not remove %r: %s", path, exc)

    # -- public surface -------------------------------------------------------------

    async def upload(self, path: str, data: UploadSource) -> UploadCommitted:
        """Write ``data`` to ``path`` (relative to the file root), verified, then in place.

        Raises:
            PathNotConfined: ``path`` is absolute or contains ``..``, NUL or a backslash.
            ChecksumMismatch: the server's size or sha256 of the upload differs.
            PathConflict: ``path`` is a directory, or passes through a file.
            FileTransferError: the server refused a step.
        """
        target = contents.api_path(self._root, path)
        parent, _, name = target.rpartition("/")
        await self._swap.recover(target)
        existing = await self._model(target)
        if existing is not None and existing.kind is contents.ContentsKind.DIRECTORY:
            raise PathConflict(f"{path!r} is a directory")
        if existing is None:
            await self._ensure_directory(parent)
        else:
            await self._served(target)
        transfer_id = uuid.uuid4().hex
        temp = contents.api_path(parent, contents_swap.temp_name(name, transfer_id))
        digest, size, number = hashlib.sha256(), 0, 1
        try:
            async with aclosing(upload_chunks(data, self._chunk_size)) as chunks:
                async for chunk in chunks:
                    size += len(chunk)
                    digest.update(chunk)
                    await self._save(temp, number, chunk, size)
                    number += 1
            if number == 1:
                await self._save(temp, 1, b"", 0)  # nothing read: an empty file
            await self._save(temp, -1, b"", size)
            stat = await self._file_stat(temp)
            if (stat.size, stat.sha256) != (size, digest.hexdigest()):
                raise ChecksumMismatch(f"the server holds other bytes than were sent for {path!r}")
            await self._swap.replace(temp, target, transfer_id)
        except BaseException:
            await self._discard(temp)
            raise
        return UploadCommitted(size=size, sha256=digest.hexdigest())

    async def _save(self, temp: str, number: int, chunk: bytes, expected: int) -> None:
        """Save one chunk; after the first, ``files/`` must serve the temp file (a
        directory symlink leading out of the server root stops the upload there)."""
        request = contents.save_chunk(temp, number, chunk)
        saved = await self._call(request, contents.parse_model, path=temp)
        if saved.size != expected:
            raise FileTransferError(
                f"the server holds {saved.size} bytes of {temp!r}, not {expected}"
            )
        if number == 1:
            await self._served(temp)

    async def _served(self, path: str) -> None:
        """``files/`` serves ``path``: it does not resolve outside the server root."""
        await self._call(contents.read_range(path, 0, 1), contents.parse_served, path=path)

    async def download_to(self, path: str, sink: Callable[[bytes], Awaitable[object]]) -> FileStat:
        """Stream ``path`` range by range into ``sink``; return the verified stat.

        Raises:
            RemoteFileNotFound: there is no such file.
            PathNotConfined: the path is not confined, or resolves outside the server root.
            ChecksumMismatch: the bytes do not match the server's sha256.
            FileTransferError: a directory, or the file changed during the download.
        """
        target = contents.api_path(self._root, path)
        stat = await self._target_stat(target)
        try:
            await self._stream(target, stat, HeldBack(sink))
        except ChecksumMismatch:
            now: FileStat | None = None
            with contextlib.suppress(JupyterInterpError):
                now = await self._file_stat(target)
            if now != stat:
                raise FileTransferError(f"{path!r} changed on the server during download") from None
            raise
        return stat

    async def download_matching(
        self, path: str, expected: FileStat, sink: Callable[[bytes], Awaitable[object]]
    ) -> bool:
        """Stream ``path`` into ``sink`` if the server's file is the one ``expected``
        (a kernel's confined stat of the same path) describes.

        Before the first byte reaches ``sink``, the server's model of the mapped path
        must match ``expected`` (``contents.same_file``) and two ranges (a one-range
        file: all of it, verified) must have arrived.

        Returns:
            True: every byte went to ``sink`` and the sha256 matched. False: nothing
            went to ``sink`` (the path is missing, refused, another file, or a one-range
            file's bytes differ): the caller can read the file another way.

        Raises:
            ChecksumMismatch: the bytes differ from ``expected`` after some went to
                ``sink`` (every range but the last one).
            FileTransferError, PathNotConfined, RemoteFileNotFound: a later range
                failed (the file changed or went away).
        """
        target = self.api_path(path)
        held = HeldBack(sink)
        try:
            model = await self._call(contents.get_model(target), contents.parse_model, path=target)
            if not contents.same_file(model, expected):
                return False
            await self._stream(target, expected, held)
        except JupyterInterpError:
            if held.started:
                raise
            return False
        return True

    async def _stream(self, target: str, stat: FileStat, held: HeldBack) -> None:
        """Read ``stat.size`` bytes of ``target`` range by range into ``held``."""
        for offset in range(0, stat.size, self._chunk_size):
            length = min(self._chunk_size, stat.size - offset)
            request = contents.read_range(target, offset, length)
            await held.add(
                await self._call(request, contents.parse_range, path=target, length=length)
            )
        await held.finish(stat.sha256, target)

    async def download(self, path: str) -> bytes:
        """The whole file at ``path`` as bytes (verified)."""
        return await download_bytes(self.download_to, path)

    async def download_file(self, path: str, destination: str | os.PathLike[str]) -> FileStat:
        """Stream ``path`` into a local file, replaced atomically once verified."""
        return await download_file(self.download_to, path, destination)

    async def stat(self, path: str) -> FileStat:
        """Size, mtime and sha256 of the regular file at ``path``; a directory's mtime."""
        target = contents.api_path(self._root, path)
        try:
            stat = await self._target_stat(target)
        except RemoteFileNotFound:
            raise
        except FileTransferError:
            model = await self._model(target)  # a directory is refused above: say what it is
            if model is None or model.kind is not contents.ContentsKind.DIRECTORY:
                raise
            return FileStat(size=0, mtime_ns=model.mtime_ns, sha256="", kind=EntryKind.DIRECTORY)
        await self._served(target)
        return stat

    async def list_dir(self, path: str = "") -> DirListing:
        """The entries of a directory (the file root by default), without hidden ones."""
        target = contents.api_path(self._root, path, allow_root=True)
        request = contents.list_directory(target)
        return await self._call(request, contents.parse_listing, path=target or "/")

    async def delete(self, path: str, *, recursive: bool = False) -> Deleted:
        """Delete a file, or a directory (non-empty ones only with ``recursive``).

        Raises:
            RemoteFileNotFound: nothing is at ``path``.
            FileTransferError: a non-empty directory without ``recursive``, or the
                server refused (it deletes non-empty directories only to its trash or
                with ``FileContentsManager.always_delete_dir``).
        """
        target = contents.api_path(self._root, path)
        model = await self._call(contents.get_model(target), contents.parse_model, path=target)
        directory = model.kind is contents.ContentsKind.DIRECTORY
        if directory and not recursive and (await self.list_dir(path)).entries:
            raise FileTransferError(f"{path!r} is a directory that is not empty")
        await self._call(contents.delete(target), contents.parse_deleted, path=target)
        return Deleted(kind=model.kind.entry_kind)


async def contents_fallback(session: TransferHost) -> ContentsTransfer | str:
    """The Contents API backend for a session whose kernel has no file snippets, or
    the reason there is none (the server has no Contents API, the file root is absolute).

    Raises:
        AuthenticationError, ServerError, TransportError: the probe failed (not cached).
    """
    kernel = f"{session.kernel_name!r} (language {session.language!r})"
    if not await has_contents_api(session._link.http):
        return (
            f"file transfer not supported for this kernel {kernel}: it has no file "
            "snippets and the server has no Contents API"
        )
    try:
        return ContentsTransfer.for_session(session)
    except UnsupportedKernel as exc:
        return f"file transfer not supported for this kernel {kernel}: {exc}"
