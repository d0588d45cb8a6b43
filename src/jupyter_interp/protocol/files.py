"""Kernel-side file transfer: code snippets that move files, and parsers of their replies.

Strategy: Kernel Gateway and Enterprise Gateway have no Contents API, so files travel
through code the kernel runs. A ``FileSnippets`` object (one per kernel language, from
``snippets_for``) turns one file operation into the source of ONE ``execute_request``;
the I/O layer runs it (``store_history=False``, so the user's execution count and
history stay untouched) and hands the ``ExecutionResult`` to the matching parser
(``FileStat.from_reply`` and friends). Builders take code strings in, parsers take
results out, so another language only has to implement ``FileSnippets.render``
(Python here, Bash in ``files_bash``, R in ``files_r``; ``snippets_for`` picks one by the
kernel's language).

Reply contract (language-neutral): the snippet publishes exactly one display output
with the MIME type ``FILE_MIME_TYPE`` whose value is ``{"ok": true, ...fields}`` or
``{"ok": false, "error": kind, "message": text}`` (kernels that cannot publish a JSON
object may send that JSON as text, or, if they can only show HTML, as the HTML data
block ``<script type="FILE_MIME_TYPE">json</script>``; ``file_replies`` accepts all
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
* Every snippet leaves no name behind (its one function is deleted in ``finally``),
  imports only the standard library and ``IPython.display``, writes nothing to
  stdout and ends with a statement, so it produces no ``execute_result``.
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

from ..errors import (
    LocalProtocolError,
    PathNotConfined,
    UnsupportedKernel,
)

__all__ = [
    "CHUNK_SIZE",
    "FILE_MIME_TYPE",
    "SHA256_HEX",
    "FileOperation",
    "PYTHON_CALL_EXPRESSION",
    "FileSnippets",
    "PythonFileSnippets",
    "confine",
    "json_string_body",
    "snippets_for",
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


def _upload_chunk_arguments(
    path: str, transfer_id: str, index: int, data: bytes | bytearray | memoryview
) -> dict[str, str | int | bool]:
    raw = bytes(data)
    if len(raw) > CHUNK_SIZE:
        raise LocalProtocolError(f"a chunk holds at most {CHUNK_SIZE} bytes, got {len(raw)}")
    return {
        "path": confine(path),
        "transfer_id": _check_transfer_id(transfer_id),
        "index": _check_count("index", index),
        "data": base64.b64encode(raw).decode("ascii"),
    }


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
        arguments = _upload_chunk_arguments(path, transfer_id, index, data)
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
        arguments = _upload_chunk_arguments(path, transfer_id, index, data)
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

    def stat(self, path: str) -> str:
        """Code that reports a regular file's size, mtime and sha256 (reply: ``FileStat``)."""
        return self.render(FileOperation.STAT, {"path": confine(path)})

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


_PY_NAME = "__jupyter_interp_file_op__"
#: The user expression that runs a Python snippet sent by ``render_request``.
PYTHON_CALL_EXPRESSION = "jupyter_interp_file_op"
_PY_FUNCTION = """\
def __jupyter_interp_file_op__(mime, root, op, args):
    import base64, hashlib, os, shutil
    from stat import S_ISDIR, S_ISLNK, S_ISREG
    from IPython.display import publish_display_data

    class Refused(Exception):
        pass

    rel = args["path"]
    label = repr(rel) if rel else "the file root"
    base = os.path.realpath(root or os.getcwd())

    def inside(path):
        try:
            return os.path.commonpath([base, path]) == base
        except ValueError:
            return False

    def locate(follow=True):
        parts = rel.split("/") if rel else []
        parent = os.path.realpath(os.path.join(base, *parts[:-1]))
        target = os.path.join(parent, parts[-1]) if parts else parent
        if not inside(parent) or (follow and not inside(os.path.realpath(target))):
            raise Refused("not_confined", "%s resolves outside the file root" % label)
        return parent, target

    def regular(target):
        mode = os.stat(target).st_mode
        if S_ISDIR(mode):
            raise Refused("is_directory", "%s is a directory" % label)
        if not S_ISREG(mode):
            raise Refused("not_a_file", "%s is not a regular file" % label)

    def digest(path):
        sha = hashlib.sha256()
        with open(path, "rb") as f:
            mtime_ns = os.fstat(f.fileno()).st_mtime_ns
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
            return f.tell(), sha.hexdigest(), mtime_ns

    def discard(path):
        try:
            os.remove(path)
            return True
        except FileNotFoundError:
            return False

    def part(parent):
        name = rel.rsplit("/", 1)[-1][:32]
        return os.path.join(parent, ".%s.%s.part" % (name, args["transfer_id"]))

    def upload_chunk():
        parent = locate()[0]
        os.makedirs(parent, exist_ok=True)
        temp, index = part(parent), args["index"]
        if index and not os.path.exists(temp):
            raise Refused("incomplete", "chunk %d for %s came without chunk 0" % (index, label))
        with open(temp, "ab" if index else "wb") as f:
            f.write(base64.b64decode(args["data"]))
            f.flush()
            return {"size": os.fstat(f.fileno()).st_size}

    def upload_commit():
        parent, target = locate()
        os.makedirs(parent, exist_ok=True)
        temp, want = part(parent), (args["size"], args["sha256"])
        if not os.path.exists(temp):
            if want[0]:
                raise Refused("incomplete", "no chunk of the upload to %s arrived" % label)
            open(temp, "wb").close()
        try:
            got = digest(temp)[:2]
            if got != want:
                raise Refused("checksum_mismatch", "the kernel received %d bytes with sha256 %s"
                              " for %s, expected %d bytes with sha256 %s" % (got + (label,) + want))
            os.replace(temp, target)
        except BaseException:
            discard(temp)
            raise
        return {"size": got[0], "sha256": got[1]}

    def upload_abort():
        return {"removed": discard(part(locate()[0]))}

    def stat():
        target = locate()[1]
        regular(target)
        size, sha256, mtime_ns = digest(target)
        return {"size": size, "sha256": sha256, "mtime_ns": mtime_ns}

    def read_chunk():
        target = locate()[1]
        regular(target)
        with open(target, "rb") as f:
            info = os.fstat(f.fileno())
            f.seek(args["offset"])
            data = f.read(args["length"])
        return {"offset": args["offset"], "data": base64.b64encode(data).decode("ascii"),
                "sha256": hashlib.sha256(data).hexdigest(), "size": info.st_size,
                "mtime_ns": info.st_mtime_ns}

    def list_dir():
        target = locate()[1]
        if not rel and not os.path.exists(target):
            return {"entries": []}
        entries = []
        with os.scandir(target) as scan:
            for entry in scan:
                kind, size = "other", None
                if entry.is_symlink():
                    kind = "symlink"
                elif entry.is_dir():
                    kind = "directory"
                elif entry.is_file():
                    kind, size = "file", entry.stat().st_size
                name = entry.name.encode("utf-8", "surrogateescape")
                entries.append({"name": name.decode("utf-8", "backslashreplace"),
                                "kind": kind, "size": size})
        return {"entries": sorted(entries, key=lambda entry: entry["name"])}

    def delete():
        target = locate(follow=False)[1]
        mode = os.lstat(target).st_mode
        if S_ISDIR(mode):
            if not args["recursive"]:
                raise Refused("is_directory", "%s is a directory; delete it recursively" % label)
            shutil.rmtree(target)
            return {"kind": "directory"}
        os.remove(target)
        return {"kind": "symlink" if S_ISLNK(mode) else "file" if S_ISREG(mode) else "other"}

    operations = {"upload_chunk": upload_chunk, "upload_commit": upload_commit,
                  "upload_abort": upload_abort, "stat": stat, "read_chunk": read_chunk,
                  "list_dir": list_dir, "delete": delete}
    try:
        reply = dict(operations[op](), ok=True)
    except Refused as exc:
        reply = {"ok": False, "error": exc.args[0], "message": exc.args[1]}
    except OSError as exc:
        kinds = {FileNotFoundError: "not_found", IsADirectoryError: "is_directory",
                 NotADirectoryError: "not_a_directory"}
        reply = {"ok": False, "error": kinds.get(type(exc), "os_error"),
                 "message": "%s: %s" % (label, exc.strerror or exc)}
    publish_display_data({mime: reply}, metadata={})
"""


@attrs.frozen(kw_only=True)
class PythonFileSnippets(FileSnippets):
    """Snippets for Python kernels with IPython's display machinery (ipykernel, xeus-python)."""

    def render(self, operation: FileOperation, arguments: Mapping[str, str | int | bool]) -> str:
        call = self._call(operation, arguments)
        return f"{_PY_FUNCTION}try:\n    {call}\nfinally:\n    del {_PY_NAME}\n"

    def render_request(
        self, operation: FileOperation, arguments: Mapping[str, str | int | bool]
    ) -> tuple[str, dict[str, str]]:
        """The data travels in a user expression that calls the snippet's function.

        IPython kernels hash and transform every cell's source in pure Python (ipykernel
        names cells by a pure-Python murmur2 of the source: seconds for a multi-megabyte
        upload chunk), but evaluate user expressions with a plain ``eval``, in order,
        after the cell and with the same parent message, so the reply is published as
        usual. Only upload chunks are sent this way: chunk 0's cell defines the
        function, later chunks' cells are empty, and ``upload_commit`` and
        ``upload_abort`` delete it (their code ends with ``del``).
        ``PYTHON_CALL_EXPRESSION`` holds the call's own outcome (an exception raised
        outside the snippet's handlers, such as a missing function, shows there).
        """
        if operation is not FileOperation.UPLOAD_CHUNK:
            return self.render(operation, arguments), {}
        code = _PY_FUNCTION if arguments["index"] == 0 else ""
        return code, {PYTHON_CALL_EXPRESSION: self._call(operation, arguments)}

    def _call(self, operation: FileOperation, arguments: Mapping[str, str | int | bool]) -> str:
        values = (FILE_MIME_TYPE, self.root, operation.value, dict(arguments))
        return f"{_PY_NAME}({', '.join(ascii(value) for value in values)})"


def _languages() -> Mapping[str, type[FileSnippets]]:
    # Imported here: those modules build on this one.
    from .files_bash import BashFileSnippets
    from .files_r import RFileSnippets

    return {"python": PythonFileSnippets, "bash": BashFileSnippets, "r": RFileSnippets}


def snippets_for(language: str, *, root: str) -> FileSnippets:
    """The snippet builder for a kernel's language (its kernelspec ``language``).

    Raises:
        UnsupportedKernel: no snippets exist for ``language``; the message lists those that do.
        LocalProtocolError: ``root`` is not a string, contains NUL or is not valid text.
    """
    languages = _languages()
    implementation = languages.get(str(language).strip().lower())
    if implementation is None:
        supported = ", ".join(sorted(languages))
        raise UnsupportedKernel(
            f"file transfer is not supported for kernel language {language!r}; "
            f"supported: {supported}"
        )
    return implementation(root=root)
