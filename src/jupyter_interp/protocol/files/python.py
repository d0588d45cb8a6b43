"""File snippets for Python kernels (ipykernel, xeus-python): the ``FileSnippets`` contract
of ``files`` as one Python function the kernel defines, calls and deletes.

Strategy: every operation is ``__jupyter_interp_file_op__(mime, root, op, args)`` with
its arguments as Python ``ascii()`` literals; it publishes its reply as display data of
``FILE_MIME_TYPE`` and leaves no name behind. Upload chunks travel outside the cell:
their data rides in a user expression (IPython hashes and transforms every cell in pure
Python, but evaluates user expressions with a plain ``eval``) or, on ipykernel once
``buffer_probe`` has passed, as the request's one binary buffer, which the function
reads from the parent message ipykernel keeps.

Invariants: the code is plain ASCII; it imports only the standard library and IPython;
it writes nothing to stdout and ends with a statement (no ``execute_result``); a binary
chunk whose buffer is missing or has another length is refused before anything is
written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from .snippets import (
    FILE_MIME_TYPE,
    FileOperation,
    FileSnippets,
    _chunk_bytes,
    _upload_chunk_arguments,
)

if TYPE_CHECKING:
    from ..result import ExecutionResult

__all__ = ["PYTHON_CALL_EXPRESSION", "PythonFileSnippets"]

_PY_NAME = "__jupyter_interp_file_op__"
#: The user expression that runs a Python snippet sent by ``render_request``.
PYTHON_CALL_EXPRESSION = "jupyter_interp_file_op"
_PROBE_EXPRESSION = "jupyter_interp_buffer_probe"
_PROBE_BUFFER = b"jupyter-interp buffer probe\x00\xff"
#: The hex of every buffer of the parent message, as the kernel's code sees them.
_PROBE_CALL = (
    '[bytes(b).hex() for b in __import__("IPython").get_ipython()'
    '.kernel.get_parent("shell").get("buffers") or ()]'
)
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

    def received():
        if "data" in args:
            return base64.b64decode(args["data"])
        from IPython import get_ipython
        buffers = get_ipython().kernel.get_parent("shell").get("buffers") or []
        data = memoryview(buffers[0]).cast("B") if len(buffers) == 1 else memoryview(b"")
        if data.nbytes != args["length"]:
            raise Refused("incomplete", "chunk %d for %s arrived without its %d bytes"
                          % (args["index"], label, args["length"]))
        return data

    def upload_chunk():
        parent = locate()[0]
        os.makedirs(parent, exist_ok=True)
        temp, index = part(parent), args["index"]
        if index and not os.path.exists(temp):
            raise Refused("incomplete", "chunk %d for %s came without chunk 0" % (index, label))
        data = received()
        with open(temp, "ab" if index else "wb") as f:
            f.write(data)
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
        info = os.stat(target)
        if args.get("directories") and S_ISDIR(info.st_mode):
            return {"kind": "directory", "size": 0, "sha256": "", "mtime_ns": info.st_mtime_ns}
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
                 NotADirectoryError: "not_a_directory", FileExistsError: "not_a_directory"}
        kind = kinds.get(type(exc), "os_error")
        reply = {"ok": False, "error": kind, "message": "%s: %s" % (label, "Not a directory"
                 if kind == "not_a_directory" else exc.strerror or exc)}
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

    def binary_upload_chunk_request(
        self, path: str, transfer_id: str, index: int, data: bytes | bytearray | memoryview
    ) -> tuple[str, dict[str, str], bytes]:
        """``upload_chunk_request`` with the data as the request's one binary buffer.

        Neither base64 nor JSON touch the data: the snippet writes the buffer ipykernel
        keeps with the parent message (``kernel.get_parent("shell")["buffers"]``). Use
        it only on kernels that passed ``buffer_probe``; a chunk whose buffer is missing
        or has another length is refused as ``incomplete`` before anything is written.

        Returns:
            The code, the user expressions and the buffer to send with them.

        Raises:
            PathNotConfined: ``path`` fails ``confine``.
            LocalProtocolError: a bad transfer id, index or chunk size.
        """
        raw = _chunk_bytes(data)
        arguments = _upload_chunk_arguments(path, transfer_id, index, raw, inline=False)
        return (*self.render_request(FileOperation.UPLOAD_CHUNK, arguments), raw)

    @staticmethod
    def buffer_probe() -> tuple[str, dict[str, str], bytes]:
        """An execute_request that shows whether request buffers reach the kernel's code.

        Servers relay client buffers, but a proxy or gateway may drop them, and only
        ipykernel keeps them where code can read them. Send the code and user
        expressions with the buffer as the request's only one; ``buffer_probe_passed``
        reads the result.
        """
        return "", {_PROBE_EXPRESSION: _PROBE_CALL}, _PROBE_BUFFER

    @staticmethod
    def buffer_probe_passed(result: ExecutionResult) -> bool:
        """Whether ``buffer_probe``'s buffer came back unchanged from the kernel's code."""
        outcome = result.user_expressions.get(_PROBE_EXPRESSION)
        if not isinstance(outcome, Mapping) or outcome.get("status") != "ok":
            return False
        data = outcome.get("data")
        return isinstance(data, Mapping) and data.get("text/plain") == repr([_PROBE_BUFFER.hex()])

    def _call(self, operation: FileOperation, arguments: Mapping[str, str | int | bool]) -> str:
        values = (FILE_MIME_TYPE, self.root, operation.value, dict(arguments))
        return f"{_PY_NAME}({', '.join(ascii(value) for value in values)})"
