"""Replies of the kernel-side file snippets, parsed into typed values.

Strategy: every snippet built by ``files`` publishes exactly one display output that
carries its reply on one of three channels, whatever the kernel's language: the
``FILE_MIME_TYPE`` value as a JSON object (Python), the same JSON as text (R: IRkernel
would round large numbers in an object), or a ``text/html`` value that is exactly the
data block ``<script type="FILE_MIME_TYPE">json</script>`` (Bash: bash_kernel can only
publish HTML, images and JavaScript). ``parse_reply`` finds it in the ``ExecutionResult``
and the reply classes here validate its fields. A failure the kernel reports becomes
the matching typed error; a malformed payload is a ``RemoteProtocolError``.

Invariants: a parsed value never carries unchecked data: sizes are non-negative
integers, digests are lowercase hex sha256, chunk bytes match their own digest, and
``FileStat.assemble`` refuses chunks from a file that changed while it was read.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ...errors import (
    ChecksumMismatch,
    FileTransferError,
    LocalProtocolError,
    PathConflict,
    PathNotConfined,
    RemoteFileNotFound,
    RemoteProtocolError,
)
from ..result import ExecutionResult
from .snippets import FILE_MIME_TYPE, SHA256_HEX

__all__ = [
    "ChunkStored",
    "Deleted",
    "DirEntry",
    "DirListing",
    "DownloadVerifier",
    "EntryKind",
    "FileChunk",
    "FileStat",
    "UploadAborted",
    "UploadCommitted",
    "parse_reply",
]

_ERRORS: Mapping[str, type[FileTransferError]] = {
    "not_found": RemoteFileNotFound,
    "not_confined": PathNotConfined,
    "is_directory": PathConflict,
    "not_a_directory": PathConflict,
    "checksum_mismatch": ChecksumMismatch,
}


_HTML_REPLY = re.compile(
    rf'\s*<script type="{re.escape(FILE_MIME_TYPE)}">(?P<json>[^<]*)</script>\s*', re.ASCII
)


def _payloads(result: ExecutionResult) -> list[Any]:
    """The reply payloads among ``result``'s outputs, on whichever channel they came."""
    payloads: list[Any] = []
    for output in result.outputs:
        if FILE_MIME_TYPE in output.data:
            payloads.append(output.data[FILE_MIME_TYPE])
            continue
        html = output.data.get("text/html")
        match = _HTML_REPLY.fullmatch(html) if isinstance(html, str) else None
        if match is not None:
            payloads.append(match["json"])
    return payloads


def _decoded(payload: Any) -> Any:
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise RemoteProtocolError("a file-operation reply sent as text is not JSON") from exc
    except RecursionError as exc:
        raise RemoteProtocolError("a file-operation reply sent as text is nested too deep") from exc


def parse_reply(result: ExecutionResult) -> Mapping[str, Any]:
    """Find a snippet's reply payload in ``result``; return it if it reports success.

    Raises:
        RemoteFileNotFound, PathNotConfined, PathConflict, ChecksumMismatch: the kernel
            said so.
        FileTransferError: any other kernel-side failure, or no reply at all (the snippet
            raised, the kernel died, the output was dropped); names ``ename: evalue``.
        RemoteProtocolError: the payload is not a well-formed reply.
    """
    payloads = _payloads(result)
    if not payloads:
        if result.error is not None:
            raise FileTransferError(f"the file operation failed: {result.error.summary()}")
        raise FileTransferError(f"the kernel sent no file-operation reply ({result.describe()})")
    if len(payloads) > 1:
        raise RemoteProtocolError(f"expected one file-operation reply, got {len(payloads)}")
    payload = _decoded(payloads[0])
    if not isinstance(payload, Mapping) or not isinstance(payload.get("ok"), bool):
        raise RemoteProtocolError("a file-operation reply must be an object with a boolean 'ok'")
    if payload["ok"]:
        return payload
    kind, message = _text(payload, "error"), _text(payload, "message")
    raise _ERRORS.get(kind, FileTransferError)(message)


def _field(payload: Mapping[str, Any], name: str, valid: Callable[[Any], bool], what: str) -> Any:
    value = payload.get(name)
    if not valid(value):
        raise RemoteProtocolError(f"file-operation reply field {name!r} must be {what}")
    return value


def _text(payload: Mapping[str, Any], name: str) -> str:
    return str(_field(payload, name, lambda v: isinstance(v, str), "a string"))


def _integer(payload: Mapping[str, Any], name: str, *, minimum: int | None = 0) -> int:
    def valid(v: Any) -> bool:
        return type(v) is int and (minimum is None or v >= minimum)

    return int(_field(payload, name, valid, "an integer"))


def _sha256(payload: Mapping[str, Any], name: str) -> str:
    valid = lambda v: isinstance(v, str) and bool(SHA256_HEX.fullmatch(v))  # noqa: E731
    return str(_field(payload, name, valid, "a sha256 hex digest"))


@attrs.frozen(kw_only=True)
class ChunkStored:
    """An upload chunk landed; ``size`` is the temp file's size after it."""

    size: int

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> ChunkStored:
        """Parse the reply of ``upload_chunk`` (raises as ``parse_reply`` does)."""
        return cls(size=_integer(parse_reply(result), "size"))


@attrs.frozen(kw_only=True)
class UploadCommitted:
    """The upload is in place: ``size`` bytes with digest ``sha256``."""

    size: int
    sha256: str

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> UploadCommitted:
        """Parse the reply of ``upload_commit`` (raises as ``parse_reply`` does)."""
        payload = parse_reply(result)
        return cls(size=_integer(payload, "size"), sha256=_sha256(payload, "sha256"))


@attrs.frozen(kw_only=True)
class UploadAborted:
    """The temp file is gone; ``removed`` says whether there was one."""

    removed: bool

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> UploadAborted:
        """Parse the reply of ``upload_abort`` (raises as ``parse_reply`` does)."""
        valid = lambda v: isinstance(v, bool)  # noqa: E731
        return cls(removed=bool(_field(parse_reply(result), "removed", valid, "a boolean")))


@attrs.frozen(kw_only=True)
class FileChunk:
    """``data`` read at ``offset``; ``size``/``mtime_ns`` describe the file at that moment."""

    offset: int
    data: bytes
    size: int
    mtime_ns: int

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> FileChunk:
        """Parse the reply of ``read_chunk`` and check the chunk's own sha256.

        Raises:
            ChecksumMismatch: the decoded bytes do not match the kernel's digest.
            RemoteProtocolError: bad base64 or fields (and all ``parse_reply`` raises).
        """
        payload = parse_reply(result)
        try:
            data = base64.b64decode(_text(payload, "data"), validate=True)
        except binascii.Error as exc:
            raise RemoteProtocolError("file chunk data is not valid base64") from exc
        offset = _integer(payload, "offset")
        if hashlib.sha256(data).hexdigest() != _sha256(payload, "sha256"):
            raise ChecksumMismatch(f"the chunk at offset {offset} arrived corrupted")
        return cls(
            offset=offset,
            data=data,
            size=_integer(payload, "size"),
            mtime_ns=_integer(payload, "mtime_ns", minimum=None),
        )


@attrs.frozen(kw_only=True)
class FileStat:
    """A regular file on the kernel's side: ``size`` bytes, ``mtime_ns``, ``sha256``; or,
    from ``files.stat`` only, a directory: ``kind`` DIRECTORY, size 0, sha256 ``""``."""

    size: int
    mtime_ns: int
    sha256: str
    kind: EntryKind = attrs.field(factory=lambda: EntryKind.FILE)

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> FileStat:
        """Parse the reply of ``stat`` (raises as ``parse_reply`` does)."""
        payload = parse_reply(result)
        if payload.get("kind") == EntryKind.DIRECTORY.value:
            mtime_ns = _integer(payload, "mtime_ns", minimum=None)
            return cls(size=0, mtime_ns=mtime_ns, sha256="", kind=EntryKind.DIRECTORY)
        return cls(
            size=_integer(payload, "size"),
            mtime_ns=_integer(payload, "mtime_ns", minimum=None),
            sha256=_sha256(payload, "sha256"),
        )

    def assemble(self, chunks: Iterable[FileChunk]) -> bytes:
        """Join the chunks read after this stat and verify them against it.

        Raises:
            FileTransferError, ChecksumMismatch, LocalProtocolError: as ``DownloadVerifier``.
        """
        verifier = DownloadVerifier(self)
        data = b"".join(verifier.add(chunk) for chunk in chunks)
        verifier.finish()
        return data


class DownloadVerifier:
    """Checks a download chunk by chunk against its ``FileStat``, in constant memory."""

    def __init__(self, stat: FileStat) -> None:
        self._stat = stat
        self._digest = hashlib.sha256()
        self.received = 0

    def add(self, chunk: FileChunk) -> bytes:
        """Accept the next chunk and return its bytes.

        Raises:
            FileTransferError: the file changed size or mtime since the stat.
            LocalProtocolError: the chunk does not start where the previous one ended.
        """
        if (chunk.size, chunk.mtime_ns) != (self._stat.size, self._stat.mtime_ns):
            raise FileTransferError("the file changed on the kernel's side during download")
        if chunk.offset != self.received:
            raise LocalProtocolError(f"chunk at {chunk.offset} is not at byte {self.received}")
        self._digest.update(chunk.data)
        self.received += len(chunk.data)
        return chunk.data

    def finish(self) -> None:
        """Verify the total size and the whole-file sha256.

        Raises:
            FileTransferError: bytes are missing.
            ChecksumMismatch: the bytes do not match the file's sha256.
        """
        if self.received != self._stat.size:
            raise FileTransferError(f"received {self.received} of {self._stat.size} bytes")
        if self._digest.hexdigest() != self._stat.sha256:
            raise ChecksumMismatch("the downloaded bytes do not match the file's sha256")


class EntryKind(enum.Enum):
    """What a directory entry is (symlinks are not followed)."""

    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"


def _kind(payload: Mapping[str, Any]) -> EntryKind:
    kinds = {kind.value for kind in EntryKind}
    return EntryKind(_field(payload, "kind", lambda v: v in kinds, "an entry kind"))


@attrs.frozen(kw_only=True)
class DirEntry:
    """One directory entry; ``size`` is set for regular files only."""

    name: str
    kind: EntryKind
    size: int | None = None


def _entry_name(entry: Mapping[str, Any]) -> str:
    """An entry's ``name``, or its ``name_base64`` (raw bytes) decoded as Python's snippet
    decodes names (UTF-8, invalid bytes as ``\\xNN``)."""
    if "name_base64" not in entry:
        return _text(entry, "name")
    try:
        raw = base64.b64decode(_text(entry, "name_base64"), validate=True)
    except binascii.Error as exc:
        raise RemoteProtocolError("an entry's name_base64 is not valid base64") from exc
    return raw.decode("utf-8", "backslashreplace")


@attrs.frozen(kw_only=True)
class DirListing:
    """A directory's entries, sorted by name."""

    entries: tuple[DirEntry, ...]

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> DirListing:
        """Parse the reply of ``list_dir`` (raises as ``parse_reply`` does)."""
        valid = lambda v: isinstance(v, list) and all(isinstance(e, Mapping) for e in v)  # noqa: E731
        raw = _field(parse_reply(result), "entries", valid, "a list of objects")
        entries = (
            DirEntry(
                name=_entry_name(entry),
                kind=_kind(entry),
                size=None if entry.get("size") is None else _integer(entry, "size"),
            )
            for entry in raw
        )
        return cls(entries=tuple(sorted(entries, key=lambda entry: entry.name)))


@attrs.frozen(kw_only=True)
class Deleted:
    """The path is gone; ``kind`` says what it was."""

    kind: EntryKind

    @classmethod
    def from_reply(cls, result: ExecutionResult) -> Deleted:
        """Parse the reply of ``delete`` (raises as ``parse_reply`` does)."""
        return cls(kind=_kind(parse_reply(result)))
