"""Kernel-side file transfer: code snippets that move files, and parsers of their replies.

Strategy: Kernel Gateway and Enterprise Gateway have no Contents API, so files travel
through code the kernel runs. A ``FileSnippets`` object (one per kernel language, from
``languages.snippets_for``) turns one file operation into the source of ONE ``execute_request``;
the I/O layer runs it (``store_history=False``, so the user's execution count and
history stay untouched) and hands the ``ExecutionResult`` to the matching parser
(``FileStat.from_reply`` and friends). Builders take code strings in, parsers take
results out, so another language only has to implement ``FileSnippets.render``
(Python in ``python``, Bash in ``bash``, R in ``r``; ``languages.snippets_for``
picks one by the kernel's language).

Reply contract (language-neutral): the snippet publishes exactly one display output
with the MIME type ``FILE_MIME_TYPE`` whose value is ``{"ok": true, ...fields}`` or
``{"ok": false, "error": kind, "message": text}`` (kernels that cannot publish a JSON
object may send that JSON as text, or, if they can only show HTML, as the HTML data
block ``<script type="FILE_MIME_TYPE">json</script>``; ``replies`` accepts all
three); kinds are ``not_found``,
``not_confined``, ``checksum_mismatch``, ``is_directory``, ``not_a_directory``,
``not_a_file``, ``incomplete`` and ``os_error``. Bulk data never goes to stdout: the
server's rate limiter drops stream output above 1 MB/s but not display data.

Invariants:

* Paths are checked twice. ``confine`` (client side) accepts only relative POSIX
  paths without ``..``, NUL or backslashes and normalises them; the snippet then
  requires ``realpath`` of the parent (and, except for ``delete``, of the target
  itself) to stay inside ``realpath(root)``, so symlinks cannot lead out of the root.
  ``delete`` unlinks a symlink itself, never what it points to.
* Data embedded in code is base64 and every string is a Python ``ascii()`` literal:
  ``json.dumps`` is not a valid Python literal for characters outside the BMP (it
  writes surrogate pairs). The code is plain ASCII.
* On ipykernel an upload chunk may instead be the request's one binary buffer
  (``PythonFileSnippets.binary_upload_chunk_request``: no base64, no JSON); the
  snippet reads it from the parent message ipykernel keeps and refuses a chunk whose
  buffer is missing or has another length before writing anything. Whether buffers
  reach the kernel's code through a given server is asked once with ``buffer_probe``.
* Every snippet leaves no name behind (its one function is deleted in ``finally``),
  imports only the standard library and IPython (``IPython.display``, and
  ``get_ipython`` for binary chunks), writes nothing to stdout and ends with a
  statement, so it produces no ``execute_result``.
* Uploads are atomic: chunks (at most ``CHUNK_SIZE`` raw bytes each, so a frame stays
  far below the server's 10 MiB limit) go to ``.<name>.<transfer_id>.part`` next to the
  target; commit checks size and sha256 and ``os.replace``-s it onto the target, or
  deletes it. Without any chunk, committing 0 bytes creates an empty file.
* Downloads are checked end to end: ``stat`` gives size, mtime and sha256; every chunk
  carries its own sha256 and the file's size and mtime; ``FileStat.assemble`` refuses
  a file that changed meanwhile and verifies the whole-file digest.

This module does no I/O itself; only the snippet text does, when a kernel runs it.
"""

from __future__ import annotations

import abc
import base64
import enum
import json
import re
from collections.abc import Mapping

import attrs

from ...errors import LocalProtocolError, PathNotConfined

__all__ = [
    "CHUNK_SIZE",
    "FILE_MIME_TYPE",
    "SHA256_HEX",
    "FileOperation",
    "FileSnippets",
    "confine",
    "json_string_body",
    "temp_file_name",
]

#: Largest raw chunk per request: 4 MiB is ~5.6 MB of base64, far below 10 MiB frames.
CHUNK_SIZE = 4 * 1024 * 1024
#: MIME type of the display output that carries a snippet's reply.
FILE_MIME_TYPE = "application/vnd.jupyter-interp.file+json"

_TRANSFER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A lowercase hex sha256 digest.
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def confine(path: str, *, allow_root: bool = False) -> str:
    """Check a caller's path and return it as a normalised relative POSIX path.

    Args:
        path: a path relative to the file root, with ``/`` as the separator.
        allow_root: accept a path naming the root itself (returned as ``""``).

    Raises:
        PathNotConfined: the path is empty (or names the root), absolute, contains a
            ``..`` component, a NUL byte, a backslash, or is not encodable as UTF-8.
        LocalProtocolError: ``path`` is not a string.
    """
    if not isinstance(path, str):
        raise LocalProtocolError(f"path must be str, not {type(path).__name__}")
    if "\x00" in path:
        raise PathNotConfined(f"path {path!r} contains a NUL byte")
    if "\\" in path:
        raise PathNotConfined(f"path {path!r} contains a backslash; separate with '/'")
    if path.startswith("/"):
        raise PathNotConfined(f"path {path!r} is absolute; give it relative to the file root")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PathNotConfined(f"path {path!r} is not valid Unicode text") from exc
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathNotConfined(f"path {path!r} contains a '..' component")
    if not parts and not allow_root:
        raise PathNotConfined(f"path {path!r} names no file inside the file root")
    return "/".join(parts)


def temp_file_name(path: str, transfer_id: str) -> str:
    """The name of an upload's temp file, next to its target (same in every language).

    Args:
        path: the target's path, as ``confine`` returned it.
        transfer_id: the upload's id.
    """
    return f".{path.rsplit('/', 1)[-1][:32]}.{transfer_id}.part"


def json_string_body(text: str) -> str:
    """``text`` as the inside of a JSON string literal: ASCII, without ``<``, ``>``, ``&``.

    Snippets that assemble their reply JSON by hand embed client-side text (labels) in it
    this way, so the reply stays valid JSON and cannot close an HTML data block.
    """
    quoted = json.dumps(text, ensure_ascii=True)[1:-1]
    return quoted.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _check_count(name: str, value: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise LocalProtocolError(f"{name} must be an integer of at least {minimum}{limit}")
    return value


def _check_transfer_id(transfer_id: str) -> str:
    if not isinstance(transfer_id, str) or not _TRANSFER_ID.fullmatch(transfer_id):
        raise LocalProtocolError("transfer_id must be 1-64 characters from [A-Za-z0-9_-]")
    return transfer_id


def _chunk_bytes(data: bytes | bytearray | memoryview) -> bytes:
    raw = bytes(data)
    if len(raw) > CHUNK_SIZE:
        raise LocalProtocolError(f"a chunk holds at most {CHUNK_SIZE} bytes, got {len(raw)}")
    return raw


def _upload_chunk_arguments(
    path: str, transfer_id: str, index: int, raw: bytes, *, inline: bool = True
) -> dict[str, str | int | bool]:
    """The chunk's arguments: its data as base64 if ``inline``, else only its length."""
    arguments: dict[str, str | int | bool] = {
        "path": confine(path),
        "transfer_id": _check_transfer_id(transfer_id),
        "index": _check_count("index", index),
    }
    if inline:
        arguments["data"] = base64.b64encode(raw).decode("ascii")
    else:
        arguments["length"] = len(raw)
    return arguments


def _check_root(_instance: object, _attribute: attrs.Attribute[str], root: str) -> None:
    if not isinstance(root, str) or "\x00" in root:
        raise LocalProtocolError("the file root must be a string without NUL bytes")
    try:
        root.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError("the file root is not valid Unicode text") from exc


class FileOperation(enum.Enum):
    """The operations a ``FileSnippets`` implementation must render."""

    UPLOAD_CHUNK = "upload_chunk"
    UPLOAD_COMMIT = "upload_commit"
    UPLOAD_ABORT = "upload_abort"
    STAT = "stat"
    READ_CHUNK = "read_chunk"
    LIST_DIR = "list_dir"
    DELETE = "delete"


@attrs.frozen(kw_only=True)
class FileSnippets(abc.ABC):
    """Builds file-operation code for one kernel language, confined to ``root``.

    ``root`` is a directory on the kernel's machine (absolute; ``""`` means the
    kernel's working directory at call time). It may not exist yet: uploads create it.
    The public builders validate their arguments, then call ``render``.
    """

    root: str = attrs.field(validator=_check_root)

    @abc.abstractmethod
    def render(self, operation: FileOperation, arguments: Mapping[str, str | int | bool]) -> str:
        """Return code that performs ``operation`` and publishes its reply.

        ``arguments`` always holds ``path`` (checked by ``confine``; ``""`` is the root)
        plus the fields the operation's builder documents.
        """

    def upload_chunk(
        self, path: str, transfer_id: str, index: int, data: bytes | bytearray | memoryview
    ) -> str:
        """Code that writes chunk ``index`` of an upload (index 0 starts over).

        Args:
            path: target path under the root.
            transfer_id: names this upload (1-64 of ``[A-Za-z0-9_-]``, e.g. a uuid4 hex).
            index: 0 for the first chunk (creates or truncates the temp file), then 1, 2...
            data: at most ``CHUNK_SIZE`` bytes.

        Returns:
            Code whose reply ``ChunkStored.from_reply`` parses.

        Raises:
            PathNotConfined: ``path`` fails ``confine``.
            LocalProtocolError: a bad transfer id, index or chunk size.
        """
        arguments = _upload_chunk_arguments(path, transfer_id, index, _chunk_bytes(data))
        return self.render(FileOperation.UPLOAD_CHUNK, arguments)

    def upload_chunk_request(
        self, path: str, transfer_id: str, index: int, data: bytes | bytearray | memoryview
    ) -> tuple[str, dict[str, str]]:
        """``upload_chunk`` as the code and user expressions of one execute_request.

        Same arguments, checks and reply as ``upload_chunk``. A language may move the
        data out of the cell into a user expression, and may leave helpers defined in
        the kernel from chunk 0 on: the upload must then end with ``upload_commit`` or
        ``upload_abort`` in the same kernel, which remove them.
        """
        arguments = _upload_chunk_arguments(path, transfer_id, index, _chunk_bytes(data))
        return self.render_request(FileOperation.UPLOAD_CHUNK, arguments)

    def render_request(
        self, operation: FileOperation, arguments: Mapping[str, str | int | bool]
    ) -> tuple[str, dict[str, str]]:
        """``render`` as (code, user_expressions); by default the expressions are empty."""
        return self.render(operation, arguments), {}

    def upload_commit(self, path: str, transfer_id: str, size: int, sha256_hex: str) -> str:
        """Code that verifies the uploaded bytes and moves them onto ``path`` atomically.

        Returns:
            Code whose reply ``UploadCommitted.from_reply`` parses.

        Raises:
            PathNotConfined: ``path`` fails ``confine``.
            LocalProtocolError: a bad transfer id, size or sha256 hex digest.
        """
        digest = sha256_hex.lower() if isinstance(sha256_hex, str) else ""
        if not SHA256_HEX.fullmatch(digest):
            raise LocalProtocolError("sha256_hex must be 64 hexadecimal digits")
        return self.render(
            FileOperation.UPLOAD_COMMIT,
            {
                "path": confine(path),
                "transfer_id": _check_transfer_id(transfer_id),
                "size": _check_count("size", size),
                "sha256": digest,
            },
        )

    def upload_abort(self, path: str, transfer_id: str) -> str:
        """Code that deletes an unfinished upload's temp file (reply: ``UploadAborted``)."""
        return self.render(
            FileOperation.UPLOAD_ABORT,
            {"path": confine(path), "transfer_id": _check_transfer_id(transfer_id)},
        )

    def stat(self, path: str, *, directories: bool = False) -> str:
        """Code that reports a regular file's size, mtime and sha256 (reply: ``FileStat``).

        ``directories``: a directory is reported (kind ``directory``, its mtime) instead
        of refused; downloads leave it off.
        """
        arguments: dict[str, str | bool] = {"path": confine(path)}
        if directories:  # absent otherwise: a download's stat code stays as it was
            arguments["directories"] = True
        return self.render(FileOperation.STAT, arguments)

    def read_chunk(self, path: str, offset: int, length: int) -> str:
        """Code that reads ``length`` bytes (1..``CHUNK_SIZE``) at ``offset`` (``FileChunk``)."""
        return self.render(
            FileOperation.READ_CHUNK,
            {
                "path": confine(path),
                "offset": _check_count("offset", offset),
                "length": _check_count("length", length, minimum=1, maximum=CHUNK_SIZE),
            },
        )

    def list_dir(self, path: str = "") -> str:
        """Code that lists a directory, the root by default (reply: ``DirListing``)."""
        return self.render(FileOperation.LIST_DIR, {"path": confine(path, allow_root=True)})

    def delete(self, path: str, *, recursive: bool = False) -> str:
        """Code that deletes a file or symlink, or a directory tree if ``recursive``."""
        if not isinstance(recursive, bool):
            raise LocalProtocolError("recursive must be a bool")
        return self.render(FileOperation.DELETE, {"path": confine(path), "recursive": recursive})
