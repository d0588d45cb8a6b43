"""The hot paths taken for speed give exactly the answers of the plain definitions.

* v1 decoding parses the four JSON parts in place with the C scanner; a reference
  decoder written the plain way (each part sliced, decoded as UTF-8 with replacement,
  ``json.loads``, then ``Message.from_wire``) must agree on every frame: same message,
  or both refuse with ``RemoteProtocolError``.
* ``Header.from_wire`` / ``Message.from_parts`` build instances without running the
  attrs validators a second time; their checks must still hold for every input.
* ``HeadTail.take`` (used by the tracker) renders exactly what ``render`` renders.
* ``FileSnippets.upload_chunk_request`` moves a Python chunk's data into a user
  expression; run in IPython the way ipykernel runs a request, it stores the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_interp.errors import RemoteProtocolError
from jupyter_interp.protocol import events
from jupyter_interp.protocol.budget import HeadTail
from jupyter_interp.protocol.files import (
    FileOperation,
    snippets_for,
)
from jupyter_interp.protocol.files.python import PYTHON_CALL_EXPRESSION, PythonFileSnippets
from jupyter_interp.protocol.files.replies import ChunkStored, UploadCommitted
from jupyter_interp.protocol.messages import Header, Message
from jupyter_interp.protocol.result import ExecutionResult, ExecutionStatus, RichOutput
from jupyter_interp.protocol.wire import V1Codec
from tests.strategies import json_objects

V1 = V1Codec()
_RESULT = ExecutionResult(msg_id="m", status=ExecutionStatus.OK)
HEADER = {"msg_id": "k1", "msg_type": "stream", "session": "s", "date": "d", "version": "5.3"}


def _frame(channel: bytes, parts: list[bytes]) -> bytes:
    segments = [channel, *parts]
    offsets = [8 * (len(segments) + 2)]
    for segment in segments:
        offsets.append(offsets[-1] + len(segment))
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + b"".join(segments)


def _reference_decode(channel: bytes, parts: list[bytes]) -> Message:
    """The plain definition of a v1 decode (for well-formed offset tables)."""
    names = ("header", "parent_header", "metadata", "content")
    data: dict[str, Any] = {}
    for name, part in zip(names, parts, strict=True):
        try:
            data[name] = json.loads(str(part, "utf-8", "replace"))
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(str(exc)) from exc
    return Message.from_wire(data, channel=str(channel, "utf-8", "replace"))


def _outcome(decode: Any, *args: Any) -> Message | type[RemoteProtocolError]:
    try:
        message: Message = decode(*args)
    except RemoteProtocolError:
        return RemoteProtocolError
    return message


def _json_part(value: Any, before: str, after: str, ascii_only: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    return f"{before}{text}{after}".encode()


_spaces = st.sampled_from(["", "", "", " ", "\n\t ", "\r\n"])
_parts = st.one_of(
    st.builds(_json_part, json_objects, _spaces, _spaces, st.booleans()),
    st.sampled_from([b"{}", b"null", b"[]", b"1", b'"x"', b"{", b"}", b"", b"{}{}", b"{} x"]),
    st.binary(max_size=20),
)
_KERNEL_KEYS = ("msg_id", "msg_type", "username", "session", "date", "version")


def _kernel_header(values: list[Any], extra: dict[str, Any], ascii_only: bool) -> bytes:
    """A header as jupyter_client packs it: its key order, its separators."""
    header = {**dict(zip(_KERNEL_KEYS, values, strict=False)), **extra}
    return json.dumps(header, ensure_ascii=ascii_only).encode()


_kernel_values = st.one_of(
    st.text(max_size=8),
    st.text(alphabet='"\\\x00\x1f\x7f \u00e9\u2028\ufffd', max_size=4),  # escapes, controls
)
_kernel_headers = st.builds(
    _kernel_header,
    st.one_of(
        st.lists(_kernel_values, min_size=6, max_size=6),
        st.lists(st.one_of(_kernel_values, st.integers(), st.none()), min_size=4, max_size=6),
    ),
    st.one_of(st.just({}), st.dictionaries(st.sampled_from(["subshell_id", "date"]), st.none())),
    st.booleans(),
)
_headers = st.one_of(
    _kernel_headers,
    st.builds(_json_part, st.just(HEADER), _spaces, _spaces, st.booleans()),
    st.builds(
        _json_part,
        st.fixed_dictionaries({"msg_id": st.text(max_size=5), "msg_type": st.just("x")}),
        st.just(""),
        st.just(""),
        st.booleans(),
    ),
    _parts,
)


@settings(max_examples=400, deadline=None)
@given(
    channel=st.sampled_from([b"iopub", b"shell", b"nope", b"\xff"]),
    header=_headers,
    parent=_parts,
    metadata=_parts,
    content=_parts,
)
def test_v1_decoding_agrees_with_the_plain_definition(
    channel: bytes, header: bytes, parent: bytes, metadata: bytes, content: bytes
) -> None:
    parts = [header, parent, metadata, content]
    frame = _frame(channel, parts)
    fast = _outcome(V1.decode, frame)
    assert fast == _outcome(_reference_decode, channel, parts)
    # as the WebSocket hands frames over: a view inside the receive buffer
    assert _outcome(V1.decode, memoryview(b"--" + frame + b"--")[2:-2]) == fast


@pytest.mark.parametrize("padded", range(4), ids=["header", "parent", "metadata", "content"])
def test_v1_parts_with_whitespace_take_the_general_path(padded: int) -> None:
    parts = [json.dumps(HEADER).encode(), b'{"msg_id":"p"}', b"{}", b'{"a":1}']
    parts[padded] += b" \n"
    message = V1.decode(_frame(b"iopub", parts))
    assert message == _reference_decode(b"iopub", parts)
    assert message.content == {"a": 1}


def test_v1_parts_running_into_each_other_are_not_merged() -> None:
    # the scanner reading the header from its start would run on into the next part
    parts = [b'{"msg_id":"a","msg_type":', b'"b"}', b"{}", b"{}"]
    with pytest.raises(RemoteProtocolError):
        V1.decode(_frame(b"iopub", parts))


def test_repeated_parent_headers_decode_to_independent_equal_objects() -> None:
    parent = json.dumps({"msg_id": "p", "msg_type": "execute_request"}).encode()
    nested = json.dumps({"msg_id": "p", "extra": {"deep": [1]}}).encode()
    for parent_part in (parent, nested):
        first, second = (
            V1.decode(_frame(b"iopub", [json.dumps(HEADER).encode(), parent_part, b"{}", b"{}"]))
            for _ in range(2)
        )
        assert first.parent_header == second.parent_header == json.loads(parent_part)
        assert first.parent_header is not second.parent_header
    first.parent_header["extra"]["deep"].append(2)
    assert second.parent_header["extra"] == {"deep": [1]}


@pytest.mark.parametrize(
    ("trusted", "plain"),
    [
        (
            lambda: events._stream_text("m", "stdout", "x"),
            lambda: events.StreamText(msg_id="m", name="stdout", text="x"),
        ),
        (
            lambda: events._execute_input("m", "1+1", None),
            lambda: events.ExecuteInput(msg_id="m", code="1+1", execution_count=None),
        ),
        (
            lambda: events._execute_result("m", 3, {"text/plain": "2"}, {}),
            lambda: events.ExecuteResult(msg_id="m", execution_count=3, data={"text/plain": "2"}),
        ),
        (
            lambda: events._execution_finished("m", _RESULT),
            lambda: events.ExecutionFinished(msg_id="m", result=_RESULT),
        ),
        (
            lambda: events._kernel_status("idle", "p"),
            lambda: events.KernelStatus(execution_state="idle", parent_msg_id="p"),
        ),
    ],
    ids=["stream", "input", "result", "finished", "status"],
)
def test_trusted_event_constructors_build_what_the_keyword_ones_build(
    trusted: Any, plain: Any
) -> None:
    built, expected = trusted(), plain()
    assert type(built) is type(expected)
    assert built == expected
    assert repr(built) == repr(expected)
    with pytest.raises(AttributeError):
        built.msg_id = "other"  # still frozen


class _Text(str):
    pass


def test_header_fields_are_checked_without_the_validators() -> None:
    header = Header.from_wire({**HEADER, "username": _Text("u"), "subshell_id": None})
    assert header.username == "u"
    assert dict(header.extra) == {"subshell_id": None}
    assert Header.from_wire({"msg_id": "a", "msg_type": "b"}) == Header(msg_id="a", msg_type="b")
    with pytest.raises(RemoteProtocolError, match="no 'msg_type'"):
        Header.from_wire({"msg_id": "a"})
    with pytest.raises(RemoteProtocolError, match="'date' must be a string"):
        Header.from_wire({**HEADER, "date": 3})


def test_message_parts_are_checked_in_the_documented_order() -> None:
    with pytest.raises(RemoteProtocolError, match="unknown channel"):
        Message.from_wire({"channel": "nope"})
    with pytest.raises(RemoteProtocolError, match="unknown channel"):
        Message.from_parts(["shell"], HEADER, None, None, None)
    with pytest.raises(RemoteProtocolError, match="no header"):
        Message.from_wire({"channel": "shell"})
    message = Message.from_parts("shell", HEADER, None, {}, {"a": 1}, (b"x",))
    assert message == Message(
        channel="shell", header=Header.from_wire(HEADER), content={"a": 1}, buffers=(b"x",)
    )


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.text(st.characters(codec="utf-8"), max_size=30), max_size=25),
    cap=st.none() | st.integers(min_value=0, max_value=90),
)
def test_take_renders_what_render_renders_and_empties(chunks: list[str], cap: int | None) -> None:
    kept = HeadTail(cap)
    for chunk in chunks:
        kept.append(chunk)
    rendered = kept.render()
    assert kept.render() == rendered  # rendering leaves the object as it was
    assert kept.take() == rendered
    assert kept.size == len("".join(chunks).encode())


# -- upload chunks with their data in a user expression ---------------------------------


@pytest.fixture(scope="module")
def shell() -> Iterator[InteractiveShell]:
    with tempfile.TemporaryDirectory() as ipython_dir, pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", ipython_dir)
        config = Config()
        config.HistoryManager.enabled = False
        yield InteractiveShell.instance(config=config)


def _run_request(
    shell: InteractiveShell, code: str, expressions: dict[str, str]
) -> ExecutionResult:
    """Run a request as ipykernel does: the cell, then the user expressions, in order."""
    with capture_output() as captured:
        shell.run_cell(code, store_history=False, silent=False)  # type: ignore[no-untyped-call]
        values = shell.user_expressions(expressions)  # type: ignore[no-untyped-call]
    outputs = tuple(
        RichOutput(kind="display_data", data=json.loads(json.dumps(out.data)))
        for out in captured.outputs
    )
    return ExecutionResult(
        msg_id="m", status=ExecutionStatus.OK, outputs=outputs, user_expressions=values
    )


def test_python_upload_chunks_ride_in_user_expressions(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    snippets = PythonFileSnippets(root=str(tmp_path))
    data = bytes(range(256)) * 40
    pieces = [data[:4000], data[4000:8000], data[8000:]]
    sizes = []
    for index, piece in enumerate(pieces):
        code, expressions = snippets.upload_chunk_request("d/f.bin", "t1", index, piece)
        assert (code != "") == (index == 0)  # the function is defined by chunk 0 only
        assert base64.b64encode(piece).decode() in expressions[PYTHON_CALL_EXPRESSION]
        result = _run_request(shell, code, expressions)
        assert result.user_expressions[PYTHON_CALL_EXPRESSION]["status"] == "ok"
        sizes.append(ChunkStored.from_reply(result).size)
    assert "__jupyter_interp_file_op__" in shell.user_ns
    sha = hashlib.sha256(data).hexdigest()
    commit = snippets.upload_commit("d/f.bin", "t1", len(data), sha)
    committed = UploadCommitted.from_reply(_run_request(shell, commit, {}))
    assert sizes == [4000, 8000, len(data)]
    assert (committed.size, committed.sha256) == (len(data), sha)
    assert (tmp_path / "d" / "f.bin").read_bytes() == data
    assert "__jupyter_interp_file_op__" not in shell.user_ns  # the commit deleted it


def test_other_requests_and_languages_keep_everything_in_the_cell() -> None:
    python = PythonFileSnippets(root="")
    assert python.render_request(FileOperation.STAT, {"path": "a"}) == (
        python.render(FileOperation.STAT, {"path": "a"}),
        {},
    )
    bash = snippets_for("bash", root="")
    code, expressions = bash.upload_chunk_request("a", "t", 0, b"xyz")
    assert (code, expressions) == (bash.upload_chunk("a", "t", 0, b"xyz"), {})


def test_frames_with_many_different_buffer_counts_round_trip() -> None:
    # more distinct offset-table sizes than the decoder keeps prepared
    for count in range(25):
        buffers = tuple(bytes([index]) * index for index in range(count))
        message = Message(channel="iopub", header=Header(msg_id="a", msg_type="b"), buffers=buffers)
        assert V1.decode(V1.encode(message)) == message
