"""File transfer through Jupyter Server's Contents API, as request values and parsers.

Strategy: for kernels without file snippets (``files``) on a server that has a Contents
API (Jupyter Server; the gateways have none), files move over plain REST. Builders here
return ``rest.HttpRequest`` values; the I/O layer sends them and hands status and body
to the matching ``parse_*`` function, which returns a typed value or raises. Paths are
*API paths*: relative to the server's ``root_dir``, ``/``-separated. ``contents_root``
maps a session's file root onto one (the kernel's working directory as an API path plus
the file root, which must then be relative), ``api_path`` appends a caller's path after
``confine`` checked it. The operations:

=====================  ============================================================
``file_stat``          ``GET api/contents/<p>?type=file&content=0&hash=1``: size,
                       mtime, sha256 (``hash=1`` needs jupyter_server >= 2.11)
``list_directory``     ``GET api/contents/<p>?type=directory&content=1``
``save_chunk``         ``PUT`` ``{"type": "file", "format": "base64", "chunk": n}``;
                       ``n`` = 1 truncates, 2, 3, ... append, -1 appends and ends
``rename``             ``PATCH`` ``{"path": new}``; refuses an existing target (409)
``read_range``         ``GET files/<p>`` with ``Range``: raw bytes, ``200``/``206``;
                       ``parse_served``: only whether ``files/`` serves the path
=====================  ============================================================

A snippet kernel's downloads may take the ``files/`` route too (6x faster): there the
kernel's confined stat comes first, and ``same_file`` compares it with the server's
model of the mapped path before any byte is read. The model (``ContentsModel``,
``same_file``) lives in ``contents_model``, re-exported here.

Error answers become the errors the kernel snippets raise: 404 ``RemoteFileNotFound``,
a refused or failed file operation (400, 409, 5xx, 403 "Permission denied")
``FileTransferError``, 403 on ``files/`` (a symlink leading outside the server root)
``PathNotConfined``, other 401/403 and a redirect to the login page
``AuthenticationError``, anything else ``ServerError``. Only the ``message``/``reason``
fields of a JSON error body are quoted, bounded; other bodies are never quoted.

Invariants: every API path a builder accepts went through ``confine`` (no ``..``,
NUL, backslash, absolute path), and each segment is percent-encoded, so a request never
leaves ``api/contents/`` or ``files/``. Parsed values are checked: sizes are
non-negative integers, digests lowercase hex sha256. This module does no I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..errors import (
    AuthenticationError,
    FileTransferError,
    LocalProtocolError,
    PathNotConfined,
    RemoteFileNotFound,
    RemoteProtocolError,
    ServerError,
    UnsupportedKernel,
)
from .contents_model import (
    MTIME_SLACK_NS,
    ContentsKind,
    ContentsModel,
    parse_rfc3339,
    same_file,
)
from .files.replies import DirEntry, DirListing, FileStat
from .files.snippets import confine
from .rest import HttpRequest

__all__ = [
    "ContentsKind",
    "ContentsModel",
    "MTIME_SLACK_NS",
    "api_path",
    "contents_root",
    "delete",
    "file_stat",
    "get_model",
    "is_hidden",
    "list_directory",
    "make_directory",
    "parse_deleted",
    "parse_rfc3339",
    "parse_file_stat",
    "parse_listing",
    "parse_model",
    "parse_probe",
    "parse_range",
    "parse_renamed",
    "parse_served",
    "probe",
    "read_range",
    "rename",
    "same_file",
    "save_chunk",
    "truncate",
]

_OK = frozenset({200})
_SAVED = frozenset({200, 201})
_RANGE = frozenset({200, 206})
_NO_CONTENT = frozenset({204})
_MAX_QUOTE = 300


def contents_root(file_root: str, *, kernel_dir: str = "") -> str:
    """The API path of a session's file root.

    Args:
        file_root: the session's file root; relative to the kernel's working directory
            (``""`` is that directory itself).
        kernel_dir: the kernel's working directory as an API path (``""``: the server
            root, where Jupyter Server starts a kernel asked for with ``path=""``).

    Raises:
        UnsupportedKernel: ``file_root`` is absolute: the Contents API names files only
            relative to the server root, which it does not reveal.
        PathNotConfined: either path contains ``..``, NUL or a backslash.
    """
    if isinstance(file_root, str) and file_root.startswith("/"):
        raise UnsupportedKernel(
            f"the file root {file_root!r} is absolute, but the Contents API names files "
            "relative to the server root; give a file root relative to the kernel's "
            "working directory"
        )
    parts = (confine(kernel_dir, allow_root=True), confine(file_root, allow_root=True))
    return "/".join(part for part in parts if part)


def api_path(root: str, path: str, *, allow_root: bool = False) -> str:
    """``path`` (relative to the file root, checked by ``confine``) as an API path.

    Raises:
        PathNotConfined: as ``confine``.
    """
    relative = confine(path, allow_root=allow_root)
    return "/".join(part for part in (root, relative) if part)


def is_hidden(path: str) -> bool:
    """Whether an API path has a hidden segment (a leading dot), which the server
    refuses unless ``ContentsManager.allow_hidden``."""
    return any(part.startswith(".") for part in path.split("/"))


def _route(prefix: str, path: str) -> str:
    segments = confine(path, allow_root=True)
    return prefix + "".join("/" + quote(part, safe="") for part in segments.split("/") if part)


def _contents(method: str, path: str, **options: Any) -> HttpRequest:
    return HttpRequest(method=method, path=_route("api/contents", path), **options)


# --------------------------------------------------------------------------- requests


def probe() -> HttpRequest:
    """``GET api/contents?content=0``: does the server have a Contents API?"""
    return _contents("GET", "", query={"content": "0"})


def get_model(path: str) -> HttpRequest:
    """The model of whatever ``path`` is, without content."""
    return _contents("GET", path, query={"content": "0"})


def file_stat(path: str) -> HttpRequest:
    """A regular file's model with its sha256 (``hash=1``), without content."""
    return _contents("GET", path, query={"type": "file", "content": "0", "hash": "1"})


def list_directory(path: str) -> HttpRequest:
    """A directory's model with its entries (``""`` is the server root)."""
    return _contents("GET", path, query={"type": "directory", "content": "1"})


def make_directory(path: str) -> HttpRequest:
    """``PUT`` a directory: creates it, or leaves an existing one as it is."""
    return _contents("PUT", path, json={"type": "directory"}, success=_SAVED)


def save_chunk(path: str, number: int, data: bytes) -> HttpRequest:
    """One chunk of a chunked upload: ``number`` 1 truncates, > 1 appends, -1 ends.

    Raises:
        LocalProtocolError: ``number`` is neither -1 nor a positive integer.
    """
    if isinstance(number, bool) or not isinstance(number, int) or not (number >= 1 or number == -1):
        raise LocalProtocolError(f"chunk number must be -1 or a positive integer, not {number!r}")
    content = base64.b64encode(data).decode("ascii")
    body = {"type": "file", "format": "base64", "chunk": number, "content": content}
    return _contents("PUT", path, json=body, success=_SAVED)


def truncate(path: str) -> HttpRequest:
    """Save ``path`` as an empty file (before deleting it: a trash keeps no copy)."""
    body = {"type": "file", "format": "text", "content": ""}
    return _contents("PUT", path, json=body, success=_SAVED)


def rename(path: str, new_path: str) -> HttpRequest:
    """``PATCH`` ``path`` to ``new_path`` (the server refuses an existing ``new_path``)."""
    return _contents("PATCH", path, json={"path": confine(new_path)})


def delete(path: str) -> HttpRequest:
    """``DELETE`` a file or directory (to the trash where the server's config says so)."""
    return _contents("DELETE", path, success=_NO_CONTENT)


def read_range(path: str, offset: int, length: int) -> HttpRequest:
    """``GET files/<path>`` for ``length`` raw bytes from ``offset`` (``Range``).

    Raises:
        LocalProtocolError: a negative offset or a length below 1.
    """
    if offset < 0 or length < 1:
        raise LocalProtocolError(f"invalid byte range: offset {offset}, length {length}")
    headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
    return HttpRequest(method="GET", path=_route("files", path), headers=headers)


# --------------------------------------------------------------------------- answers


def _decode(body: object) -> Any:
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            return json.loads(body if isinstance(body, str) else bytes(body))
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(
                "the Contents API answered with a body that is not JSON"
            ) from exc
    return body


def _quote(body: object) -> str:
    try:
        decoded = _decode(body)
    except RemoteProtocolError:
        return ""
    fields = decoded if isinstance(decoded, Mapping) else {}
    texts = [fields.get(key) for key in ("message", "reason")]
    text = "; ".join(t for t in dict.fromkeys(texts) if isinstance(t, str) and t.strip())
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."


def _error(status: int, body: object, what: str) -> Exception:
    detail = _quote(body)
    said = f": {detail}" if detail else ""
    if status == 404:
        return RemoteFileNotFound(
            f"{what}: no such file or directory (or a hidden one the server does not show)"
        )
    if status == 403 and detail.startswith("Permission denied"):
        return FileTransferError(f"{what} failed{said}")
    if status in (401, 403) or 300 <= status <= 399:
        return AuthenticationError(
            f"{what} was refused: wrong or missing token{said}", status=status
        )
    if status == 400 and "is a directory" in detail:
        return FileTransferError(f"{what}: it is a directory")
    if status in (400, 409) or 500 <= status <= 599:
        return FileTransferError(f"{what} failed (HTTP {status}){said}")
    return ServerError(f"{what} failed{said}", status=status)


def _checked(status: int, body: object, what: str, success: frozenset[int]) -> Any:
    if status not in success:
        raise _error(status, body, what)
    decoded = _decode(body)
    if not isinstance(decoded, Mapping):
        raise RemoteProtocolError(f"{what}: the Contents API sent no model object")
    return decoded


def parse_probe(status: int, body: bytes | object) -> bool:
    """Whether ``probe()`` found a Contents API (the gateways answer 404).

    Raises:
        AuthenticationError, ServerError: the server refused the probe otherwise.
    """
    if status == 404:
        return False
    ContentsModel.from_wire(_checked(status, body, "probing the Contents API", _OK))
    return True


def parse_model(status: int, body: bytes | object, *, path: str) -> ContentsModel:
    """Parse the answer to ``get_model``, ``make_directory``, ``save_chunk`` or
    ``truncate`` on ``path`` (raises as the module docstring says)."""
    return ContentsModel.from_wire(_checked(status, body, repr(path), _SAVED))


def parse_file_stat(status: int, body: bytes | object, *, path: str) -> FileStat:
    """Parse the answer to ``file_stat(path)``.

    Raises:
        FileTransferError: ``path`` is a directory, or the server reports no sha256
            (jupyter_server older than 2.11).
    """
    model = parse_model(status, body, path=path)
    if model.sha256 is None or model.size is None:
        raise FileTransferError(
            f"{path!r}: the server reports no size or sha256 (jupyter_server >= 2.11 needed)"
        )
    return FileStat(size=model.size, mtime_ns=model.mtime_ns, sha256=model.sha256)


def parse_listing(status: int, body: bytes | object, *, path: str) -> DirListing:
    """Parse the answer to ``list_directory(path)`` (hidden entries are not listed)."""
    decoded = _checked(status, body, repr(path), _OK)
    entries = decoded.get("content")
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise RemoteProtocolError(f"{path!r}: the directory model has no list of entries")
    models = (ContentsModel.from_wire(entry) for entry in entries)
    listed = (
        DirEntry(
            name=model.name,
            kind=model.kind.entry_kind,
            size=model.size if model.kind is not ContentsKind.DIRECTORY else None,
        )
        for model in models
    )
    return DirListing(entries=tuple(sorted(listed, key=lambda entry: entry.name)))


def parse_renamed(status: int, body: bytes | object, *, path: str) -> bool:
    """Parse the answer to ``rename(path, ...)``: False if the new path exists (409)."""
    if status == 409:
        return False
    _checked(status, body, f"renaming {path!r}", _OK)
    return True


def parse_deleted(status: int, body: bytes | object, *, path: str) -> None:
    """Check the answer to ``delete(path)`` (204)."""
    if status not in _NO_CONTENT:
        raise _error(status, body, f"deleting {path!r}")


def parse_served(status: int, body: bytes, *, path: str) -> None:
    """Check the answer to ``read_range(path, 0, 1)``: ``files/`` serves ``path`` (416:
    an empty file). The one check of where a path leads that the server offers.

    Raises:
        PathNotConfined: 403: ``path`` resolves outside the server root (a symlink).
    """
    if status == 403:
        raise PathNotConfined(f"{path!r} resolves outside the server root")
    if status not in _RANGE and status != 416:
        raise _error(status, body, f"reading {path!r}")


def parse_range(status: int, body: bytes, *, path: str, length: int) -> bytes:
    """The bytes of ``read_range(path, offset, length)``.

    Raises:
        PathNotConfined: 403: the file resolves outside the server root (a symlink).
        FileTransferError: fewer or more bytes than asked for, or 416: the file
            changed size since its stat.
    """
    if status == 403:
        raise PathNotConfined(f"{path!r} resolves outside the server root")
    if status == 416 or (status in _RANGE and len(body) != length):
        raise FileTransferError(f"{path!r} changed on the server during download")
    if status not in _RANGE:
        raise _error(status, body, f"reading {path!r}")
    return bytes(body)
