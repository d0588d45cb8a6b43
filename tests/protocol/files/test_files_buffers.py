"""Upload chunks as execute_requests: data in a user expression or in a binary buffer.

The requests run for real in an in-process IPython shell: the cell first, then the user
expressions, as ipykernel does. A stand-in for ipykernel's ``kernel.get_parent`` hands
the snippet the request's buffers the way ipykernel keeps them (memoryviews).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_interp.errors import FileTransferError, LocalProtocolError, PathNotConfined
from jupyter_interp.protocol.files import (
    CHUNK_SIZE,
    FileOperation,
    snippets_for,
)
from jupyter_interp.protocol.files.python import PYTHON_CALL_EXPRESSION, PythonFileSnippets
from jupyter_interp.protocol.files.replies import ChunkStored, UploadCommitted
from jupyter_interp.protocol.message_factory import MessageFactory
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, RichOutput
from jupyter_interp.protocol.wire import LegacyCodec, V1Codec

from .test_files import shell

__all__ = ["shell"]  # the module-scoped IPython shell fixture, shared with test_files


class ParentKeeper:
    """What the snippet reads as ``get_ipython().kernel``: ipykernel's parent lookup."""

    def __init__(self, buffers: Sequence[object]) -> None:
        self.parent: dict[str, Any] = {"header": {"msg_type": "execute_request"}}
        self.parent["buffers"] = list(buffers)

    def get_parent(self, channel: str = "shell") -> Mapping[str, Any]:
        assert channel == "shell"
        return self.parent


def run_request(
    shell: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    expressions: Mapping[str, str],
    buffers: Sequence[bytes] = (),
) -> ExecutionResult:
    """Run a request as ipykernel would: the cell, then its user expressions."""
    views = [memoryview(buffer) for buffer in buffers]
    monkeypatch.setattr(shell, "kernel", ParentKeeper(views), raising=False)
    with capture_output() as captured:
        outcome = shell.run_cell(code, store_history=False, silent=False)  # type: ignore[no-untyped-call]
        values = shell.user_expressions(dict(expressions))  # type: ignore[no-untyped-call]
    assert outcome.error_in_exec is None
    assert outcome.error_before_exec is None
    assert captured.stdout == captured.stderr == ""
    return ExecutionResult(
        msg_id="m",
        status=ExecutionStatus.OK,
        outputs=tuple(
            RichOutput(kind="display_data", data=json.loads(json.dumps(out.data)))
            for out in captured.outputs
        ),
        user_expressions=json.loads(json.dumps(values)),
    )


@pytest.fixture
def snippets(tmp_path: Path) -> PythonFileSnippets:
    return PythonFileSnippets(root=str(tmp_path / "root"))


def _commit(
    shell: InteractiveShell, snippets: PythonFileSnippets, path: str, tid: str, data: bytes
) -> UploadCommitted:
    code = snippets.upload_commit(path, tid, len(data), hashlib.sha256(data).hexdigest())
    with capture_output() as captured:
        shell.run_cell(code, store_history=False, silent=False)  # type: ignore[no-untyped-call]
    outputs = tuple(RichOutput(kind="display_data", data=out.data) for out in captured.outputs)
    result = ExecutionResult(msg_id="c", status=ExecutionStatus.OK, outputs=outputs)
    return UploadCommitted.from_reply(result)


@pytest.mark.parametrize("binary", [True, False], ids=["buffer", "user-expression"])
def test_chunk_requests_round_trip(
    shell: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    snippets: PythonFileSnippets,
    binary: bool,
) -> None:
    data, tid, size = bytes(range(256)) * 7 + b"end", uuid.uuid4().hex, 0
    names = set(shell.user_ns)
    for index, start in enumerate(range(0, len(data), 500)):
        chunk = data[start : start + 500]
        buffers: tuple[bytes, ...] = ()
        if binary:
            code, expressions, raw = snippets.binary_upload_chunk_request(
                "d/f.bin", tid, index, chunk
            )
            assert raw == chunk
            assert "data" not in expressions[PYTHON_CALL_EXPRESSION]  # only the length travels
            buffers = (raw,)
        else:
            code, expressions = snippets.upload_chunk_request("d/f.bin", tid, index, chunk)
        assert (code != "") == (index == 0)  # chunk 0 defines the function, later ones reuse it
        result = run_request(shell, monkeypatch, code, expressions, buffers)
        size += len(chunk)
        assert ChunkStored.from_reply(result).size == size
    committed = _commit(shell, snippets, "d/f.bin", tid, data)
    assert committed.sha256 == hashlib.sha256(data).hexdigest()
    assert (Path(snippets.root) / "d" / "f.bin").read_bytes() == data
    assert set(shell.user_ns) == names  # the commit deleted the function again


@pytest.mark.parametrize(
    "buffers", [(), (b"12345",), (b"1234", b"5")], ids=["none", "other-length", "two"]
)
def test_a_chunk_without_its_buffer_is_refused_before_writing(
    shell: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    snippets: PythonFileSnippets,
    buffers: tuple[bytes, ...],
) -> None:
    code, expressions, _raw = snippets.binary_upload_chunk_request("x.bin", "tid", 0, b"1234")
    result = run_request(shell, monkeypatch, code, expressions, buffers)
    with pytest.raises(
        FileTransferError, match=r"chunk 0 for 'x\.bin' arrived without its 4 bytes"
    ):
        ChunkStored.from_reply(result)
    assert list(Path(snippets.root).iterdir()) == []  # the temp file was never opened
    abort = snippets.upload_abort("x.bin", "tid")  # also deletes the function chunk 0 defined
    shell.run_cell(abort, store_history=False, silent=True)  # type: ignore[no-untyped-call]


def test_binary_chunk_requests_check_their_arguments(snippets: PythonFileSnippets) -> None:
    with pytest.raises(LocalProtocolError, match="at most"):
        snippets.binary_upload_chunk_request("a", "tid", 0, bytes(CHUNK_SIZE + 1))
    with pytest.raises(PathNotConfined):
        snippets.binary_upload_chunk_request("../a", "tid", 0, b"x")
    with pytest.raises(LocalProtocolError, match="transfer_id"):
        snippets.binary_upload_chunk_request("a", "bad id", 0, b"x")
    with pytest.raises(LocalProtocolError, match="index"):
        snippets.binary_upload_chunk_request("a", "tid", -1, b"x")
    _code, _expressions, raw = snippets.binary_upload_chunk_request("a", "t", 0, bytearray(b"ab"))
    assert type(raw) is bytes
    assert raw == b"ab"


@pytest.mark.parametrize("codec", [LegacyCodec(), V1Codec()], ids=["legacy", "v1"])
def test_the_chunk_rides_as_the_request_buffer(
    snippets: PythonFileSnippets, codec: LegacyCodec | V1Codec
) -> None:
    chunk = bytes(range(256)) * 4
    code, expressions, raw = snippets.binary_upload_chunk_request("a.bin", "tid", 3, chunk)
    ids = iter(["m1", "m2"])
    factory = MessageFactory(
        session="s",
        new_id=lambda: next(ids),
        clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    request = factory.execute_request(code, user_expressions=expressions, buffers=[raw])
    assert request.buffers == (chunk,)
    frame = codec.encode(request)
    assert isinstance(frame, bytes)
    assert len(frame) < len(chunk) + 2000  # no base64 anywhere
    decoded = codec.decode(frame)
    assert decoded.buffers == (chunk,)
    assert decoded.content["user_expressions"] == expressions
    assert factory.execute_request("1").buffers == ()


def test_the_buffer_probe_passes_only_when_the_buffer_reaches_the_code(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, expressions, probe = PythonFileSnippets.buffer_probe()
    assert probe
    assert code == ""
    passed = PythonFileSnippets.buffer_probe_passed
    assert passed(run_request(shell, monkeypatch, code, expressions, [probe]))
    assert not passed(run_request(shell, monkeypatch, code, expressions))  # dropped on the way
    assert not passed(run_request(shell, monkeypatch, code, expressions, [probe[1:]]))
    assert not passed(run_request(shell, monkeypatch, code, expressions, [probe, probe]))
    monkeypatch.delattr(shell, "kernel", raising=False)
    with capture_output():
        no_kernel = shell.user_expressions(expressions)  # type: ignore[no-untyped-call]
    assert no_kernel[next(iter(expressions))]["status"] == "error"  # plain IPython, no ipykernel
    assert not passed(
        ExecutionResult(msg_id="m", status=ExecutionStatus.OK, user_expressions=no_kernel)
    )


@pytest.mark.parametrize(
    "outcome",
    [None, "text", {"status": "ok"}, {"status": "ok", "data": "x"}, {"status": "ok", "data": {}}],
)
def test_a_garbled_probe_outcome_does_not_pass(outcome: object) -> None:
    _code, expressions, _probe = PythonFileSnippets.buffer_probe()
    values = {} if outcome is None else {next(iter(expressions)): outcome}
    result = ExecutionResult(msg_id="m", status=ExecutionStatus.OK, user_expressions=values)
    assert not PythonFileSnippets.buffer_probe_passed(result)


def test_other_requests_keep_everything_in_the_cell(tmp_path: Path) -> None:
    python = PythonFileSnippets(root=str(tmp_path))
    arguments = {"path": "a.txt"}
    assert python.render_request(FileOperation.STAT, arguments) == (python.stat("a.txt"), {})
    bash = snippets_for("bash", root=str(tmp_path))
    code, expressions = bash.upload_chunk_request("a.txt", "tid", 0, b"data")
    assert (code, expressions) == (bash.upload_chunk("a.txt", "tid", 0, b"data"), {})
