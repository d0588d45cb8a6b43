"""The behaviour of one simulated kernel: requests in, the replies a kernel would send out.

Strategy: ``SimKernel.handle`` turns one decoded request ``Message`` into the list of
messages an IPython kernel would publish for it, built with the project's own
``MessageFactory`` (so the simulated server reuses the client's codecs end to end):

* ``kernel_info_request`` (shell or control): iopub ``busy``, the reply, iopub ``idle``;
* ``execute_request``: ``busy``, ``execute_input``, then what the code asks for, the
  ``execute_reply`` and ``idle``. The code is not run: a cell whose statements are
  ``print(<literal>)`` calls, a last bare literal (its ``repr`` is the result) and/or a
  ``raise Name('literal')`` is answered as Python would; a call of the file snippets'
  function (in the code or in the one user expression) is answered from an in-memory
  file store, with the snippet's reply contract (``protocol.files``); anything else
  prints ``output_size`` bytes of synthetic stdout when that is set, and nothing more.
* anything else on shell gets an ``error`` reply; iopub/stdin input is ignored.

Invariants: no I/O and no clock reads for behaviour (dates come from the factory's
clock); replies echo the request's header as their parent; ``implementation`` is
``"sim"`` so the client never probes request buffers (only ipykernel keeps them).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from jupyter_interp.protocol.files import FILE_MIME_TYPE
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.messages import Message

__all__ = ["SimKernel"]

#: a line that calls the snippets' function (its ``def`` line does not match)
_CALL = re.compile(r"^[ \t]*__jupyter_interp_file_op__\(.*$", re.MULTILINE)
_KERNEL_INFO = {
    "status": "ok",
    "protocol_version": "5.4",
    "implementation": "sim",
    "implementation_version": "1.0",
    "language_info": {"name": "python", "version": "3", "file_extension": ".py"},
    "banner": "simulated kernel",
    "help_links": [],
}


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Refused(Exception):
    """A snippet failure with the reply contract's error kind and message."""


class _FileStore:
    """Files of one kernel: path -> bytes, and unfinished uploads by (path, transfer id)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.parts: dict[tuple[str, str], bytearray] = {}

    def run(self, op: str, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return dict(getattr(self, op)(args), ok=True)
        except _Refused as exc:
            return {"ok": False, "error": exc.args[0], "message": exc.args[1]}

    def _file(self, path: str) -> bytes:
        if path in self.files:
            return self.files[path]
        if any(name.startswith(path + "/") for name in self.files):
            raise _Refused("is_directory", f"{path!r} is a directory")
        raise _Refused("not_found", f"{path!r}: No such file or directory")

    def upload_chunk(self, args: Mapping[str, Any]) -> dict[str, Any]:
        key = (args["path"], args["transfer_id"])
        if args["index"] == 0:
            self.parts[key] = bytearray()
        elif key not in self.parts:
            raise _Refused("incomplete", f"chunk {args['index']} came without chunk 0")
        self.parts[key] += base64.b64decode(args["data"])
        return {"size": len(self.parts[key])}

    def upload_commit(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = bytes(self.parts.pop((args["path"], args["transfer_id"]), b""))
        digest = hashlib.sha256(data).hexdigest()
        if (len(data), digest) != (args["size"], args["sha256"]):
            raise _Refused("checksum_mismatch", f"received {len(data)} bytes, {digest}")
        self.files[args["path"]] = data
        return {"size": len(data), "sha256": digest}

    def upload_abort(self, args: Mapping[str, Any]) -> dict[str, Any]:
        removed = self.parts.pop((args["path"], args["transfer_id"]), None) is not None
        return {"removed": removed}

    def stat(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = self._file(args["path"])
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mtime_ns": 1}

    def read_chunk(self, args: Mapping[str, Any]) -> dict[str, Any]:
        whole = self._file(args["path"])
        data = whole[args["offset"] : args["offset"] + args["length"]]
        return {
            "offset": args["offset"],
            "data": base64.b64encode(data).decode("ascii"),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(whole),
            "mtime_ns": 1,
        }

    def list_dir(self, args: Mapping[str, Any]) -> dict[str, Any]:
        prefix = f"{args['path']}/" if args["path"] else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, data in self.files.items():
            if name.startswith(prefix):
                first, _, rest = name[len(prefix) :].partition("/")
                kind, size = ("directory", None) if rest else ("file", len(data))
                entries[first] = {"name": first, "kind": kind, "size": size}
        if prefix and not entries:
            raise _Refused("not_found", f"{args['path']!r}: No such file or directory")
        return {"entries": sorted(entries.values(), key=lambda entry: entry["name"])}

    def delete(self, args: Mapping[str, Any]) -> dict[str, Any]:
        path = args["path"]
        inside = [name for name in self.files if name.startswith(path + "/")]
        if path in self.files:
            del self.files[path]
            return {"kind": "file"}
        if not inside:
            raise _Refused("not_found", f"{path!r}: No such file or directory")
        if not args["recursive"]:
            raise _Refused("is_directory", f"{path!r} is a directory; delete it recursively")
        for name in inside:
            del self.files[name]
        return {"kind": "directory"}


def _snippet_call(source: str) -> tuple[str, dict[str, Any]] | None:
    """The (operation, arguments) of the snippet call in ``source``, if there is one."""
    found = _CALL.search(source)
    if found is None:
        return None
    call = ast.parse(found[0].strip(), mode="eval").body
    assert isinstance(call, ast.Call)
    _mime, _root, op, args = (ast.literal_eval(arg) for arg in call.args)
    return op, args


class _Cell:
    """What a plain cell asks for: stdout text, a result, an error (ename, evalue)."""

    def __init__(self, code: str) -> None:
        self.stdout = ""
        self.result: str | None = None
        self.error: tuple[str, str] | None = None
        self.understood = True
        try:
            statements = ast.parse(code).body
            for index, node in enumerate(statements):
                self._statement(node, last=index == len(statements) - 1)
        except (SyntaxError, ValueError, TypeError):
            self.understood = False

    def _statement(self, node: ast.stmt, *, last: bool) -> None:
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func, args = node.exc.func, node.exc.args
            if isinstance(func, ast.Name) and len(args) == 1:
                self.error = (func.id, str(ast.literal_eval(args[0])))
                return
        if isinstance(node, ast.Expr):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                if value.func.id == "print" and not value.keywords:
                    texts = (str(ast.literal_eval(arg)) for arg in value.args)
                    self.stdout += " ".join(texts) + "\n"
                    return
            elif last:
                self.result = repr(ast.literal_eval(value))
                return
        if not isinstance(node, ast.Pass):
            raise ValueError("not simulated")


class SimKernel:
    """One simulated kernel's state: its execution count and its files."""

    def __init__(self, *, kernel_id: str, output_size: int = 0) -> None:
        self.kernel_id = kernel_id
        self.output_size = output_size
        self.execution_count = 0
        self.files = _FileStore()
        self._factory = MessageFactory(session=_new_id(), new_id=_new_id, clock=_now)

    def _message(
        self, request: Message, channel: str, msg_type: str, content: Mapping[str, Any]
    ) -> Message:
        return self._factory.request(channel, msg_type, content, parent=request.header)

    def _status(self, request: Message, state: str) -> Message:
        return self._message(request, "iopub", "status", {"execution_state": state})

    def handle(self, request: Message) -> list[Message]:
        """The messages to send for ``request``, in order (empty for non-requests)."""
        if request.channel not in ("shell", "control"):
            return []
        reply_type = request.msg_type.removesuffix("_request") + "_reply"
        if request.msg_type == "kernel_info_request":
            body = [self._message(request, request.channel, reply_type, _KERNEL_INFO)]
        elif request.msg_type == "execute_request" and request.channel == "shell":
            body = self._execute(request)
        else:
            content = {"status": "error", "ename": "NotSimulated", "evalue": "", "traceback": []}
            body = [self._message(request, request.channel, reply_type, content)]
        return [self._status(request, "busy"), *body, self._status(request, "idle")]

    def _execute(self, request: Message) -> list[Message]:
        code = str(request.content.get("code", ""))
        expressions: Mapping[str, str] = request.content.get("user_expressions") or {}
        if request.content.get("store_history", True) and not request.content.get("silent"):
            self.execution_count += 1
        count = self.execution_count
        out = [self._message(request, "iopub", "execute_input", {"code": code, "ec": count})]
        reply: dict[str, Any] = {"status": "ok", "execution_count": count}
        evaluated: dict[str, Any] = {}
        snippet = _snippet_call(code) or next(
            filter(None, map(_snippet_call, expressions.values())), None
        )
        if snippet is not None:
            data = {FILE_MIME_TYPE: self.files.run(*snippet)}
            out.append(
                self._message(request, "iopub", "display_data", {"data": data, "metadata": {}})
            )
            evaluated = {
                name: {"status": "ok", "data": {"text/plain": "None"}, "metadata": {}}
                for name in expressions
            }
        else:
            out += self._cell(request, _Cell(code), count, reply)
        reply["user_expressions"] = evaluated
        out.append(self._message(request, "shell", "execute_reply", reply))
        return out

    def _cell(
        self, request: Message, cell: _Cell, count: int, reply: dict[str, Any]
    ) -> list[Message]:
        stdout = cell.stdout if cell.understood else "x" * self.output_size
        out: list[Message] = []
        if stdout:
            stream = {"name": "stdout", "text": stdout}
            out.append(self._message(request, "iopub", "stream", stream))
        if cell.understood and cell.error is not None:
            ename, evalue = cell.error
            error = {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}
            out.append(self._message(request, "iopub", "error", error))
            reply.update(status="error", **error)
        elif cell.understood and cell.result is not None:
            result = {"execution_count": count, "data": {"text/plain": cell.result}, "metadata": {}}
            out.append(self._message(request, "iopub", "execute_result", result))
        return out
