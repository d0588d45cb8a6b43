"""Legacy text frames as servers write them take a fast path with the plain answers.

``wire_json.legacy_document`` reads the layout Jupyter Server's ``json.dumps`` gives a
message (header, copied ids, parent header, metadata, content, empty buffers, channel)
without parsing the whole document, and reuses the last parent header when its text
repeats. The plain definition (``json.loads`` of the frame, then ``Message.from_wire``
with its channel) must agree on every text: same message, or both refuse with
``RemoteProtocolError``. Documents are drawn in the server's layout and then bent
(spacing, key order, duplicate or missing keys, trailing text, truncation), in runs
that share parent headers, some remembered first by the v1 decoder.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from itertools import accumulate
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from jupyter_interp.errors import RemoteProtocolError
from jupyter_interp.protocol.messages import Message
from jupyter_interp.protocol.wire import LegacyCodec, V1Codec
from jupyter_interp.protocol.wire_json import legacy_document
from tests.strategies import json_objects

LEGACY = LegacyCodec()
V1 = V1Codec()
_V1_TABLE = struct.Struct("<7Q")  # count and offsets of a v1 frame without buffers
_KERNEL_KEYS = ("msg_id", "msg_type", "username", "session", "date", "version")
_STATUS_HEADER = dict(zip(_KERNEL_KEYS, ["k", "status", "u", "s", "d", "5.3"], strict=True))
# jupyter_server ships no type hints: name the method with the signature we rely on.
_reserialize_reply: Callable[[Any, list[bytes], str], str | bytes] = (
    ZMQChannelsWebsocketConnection._reserialize_reply
)


def _reference_decode(text: str) -> Message:
    """The plain definition of a legacy text frame."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
        raise RemoteProtocolError("not a message object with a channel")
    return Message.from_wire(data, channel=data["channel"])


def _outcome(decode: Callable[[str], Message], text: str) -> Message | type[RemoteProtocolError]:
    try:
        return decode(text)
    except RemoteProtocolError:
        return RemoteProtocolError


def _server_document(
    header: dict[str, Any], parent: Any, metadata: Any, content: Any, channel: Any, ascii_only: bool
) -> str:
    """A message laid out as Jupyter Server writes a legacy text frame."""
    document = {
        "header": header,
        "msg_id": header.get("msg_id"),
        "msg_type": header.get("msg_type"),
        "parent_header": parent,
        "metadata": metadata,
        "content": content,
        "buffers": [],
        "channel": channel,
    }
    return json.dumps(document, ensure_ascii=ascii_only)


#: strings JSON writes as they are, even ASCII-only (the fast path reads those), and others
_plain = st.text(
    st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=8
)
_values = st.one_of(
    _plain,
    st.text(max_size=8),
    st.text(alphabet='"\\\x00\x1f\x7f \u00e9\u2028\ufffd', max_size=4),  # escapes, controls
)


def _header_of(values: list[Any]) -> dict[str, Any]:
    """The first ``len(values)`` fields of a header, in jupyter_client's key order."""
    return dict(zip(_KERNEL_KEYS, values, strict=False))


_plain_headers = st.lists(_plain, min_size=6, max_size=6).map(_header_of)
_headers = st.one_of(  # mostly headers the fast path reads, so that the bends reach it
    _plain_headers,
    _plain_headers,
    _plain_headers,
    st.lists(_values, min_size=6, max_size=6).map(_header_of),
    st.lists(st.one_of(_values, st.integers(), st.none()), min_size=4, max_size=6).map(_header_of),
    st.fixed_dictionaries({"msg_id": st.text(max_size=3), "subshell_id": st.none()}),
)
#: a few parents, so that runs repeat them and the remembered one is hit
_PARENTS: tuple[dict[str, Any], ...] = (
    {},
    {"msg_id": "p1", "msg_type": "execute_request", "session": "s", "date": "d"},
    {"msg_id": "p2", "msg_type": "execute_request"},
    {"msg_id": "p1", "msg_type": "execute_request", "session": "s", "date": "d", "n": [1]},
)
_parents = st.one_of(st.sampled_from(_PARENTS), json_objects, st.sampled_from([None, [], "x", 1]))
_objects = st.one_of(st.just({}), json_objects, st.sampled_from([None, [], "x"]))
_LAYOUT_KEYS = ("header", "msg_id", "msg_type", "parent_header", "metadata", "content", "buffers")
_channels = st.sampled_from(["iopub", "shell", "stdin", "control", "hb", "nope", 3, None])


def _bent(text: str, how: int, where: int) -> str:
    """``text`` changed in one of the ways a fast path must not take for the layout."""
    if how == 0:
        return text
    if how == 1:  # one separator written differently
        separators = [i for i in range(len(text)) if text.startswith(", ", i)] or [0]
        at = separators[where % len(separators)]
        return text[:at] + ",\n" + text[at + 2 :]
    if how == 2:  # a repeated key, which the last occurrence decides
        return text[:-1] + ', "channel": "shell"}'
    if how == 3:
        return text + " \n"
    if how == 4:
        return text[: where % (len(text) + 1)]
    if how == 5:  # another key order
        document = json.loads(text)
        return json.dumps(dict(reversed(list(document.items()))))
    if how == 6:  # a key of the layout renamed, keeping its length
        key = _LAYOUT_KEYS[where % len(_LAYOUT_KEYS)]
        return text.replace(f'"{key}": ', f'"{key.upper()}": ', 1)
    return text.replace('"buffers": [], ', "", 1)  # a missing key


_documents = st.builds(
    _bent,
    st.builds(_server_document, _headers, _parents, _objects, _objects, _channels, st.booleans()),
    st.one_of(st.just(0), st.integers(0, 7)),
    st.integers(0, 10_000),
)


def _v1_frame(parent: dict[str, Any]) -> bytes:
    """A v1 frame whose parent part is ``parent`` as a kernel packs it: remembered."""
    parts = [b"iopub", *(json.dumps(part).encode() for part in (_STATUS_HEADER, parent, {}, {}))]
    offsets = accumulate(map(len, parts), initial=_V1_TABLE.size)
    return _V1_TABLE.pack(6, *offsets) + b"".join(parts)


@settings(max_examples=500, deadline=None)
@given(
    documents=st.lists(_documents, min_size=1, max_size=4),
    seed=st.one_of(st.none(), st.sampled_from(_PARENTS)),
)
def test_legacy_decoding_agrees_with_the_plain_definition(
    documents: list[str], seed: dict[str, Any] | None
) -> None:
    if seed is not None:
        V1.decode(_v1_frame(seed))
    for text in documents:
        assert _outcome(LEGACY.decode, text) == _outcome(_reference_decode, text)


def _served(session: Session, message: dict[str, Any], channel: str) -> str:
    """What Jupyter Server's own code sends for a kernel message (a legacy text frame)."""
    server = SimpleNamespace(session=session)  # all the method uses of its connection
    frame = _reserialize_reply(server, session.serialize(message), channel)
    assert isinstance(frame, str)
    return frame


def test_frames_from_jupyter_servers_own_serialiser_take_the_fast_path() -> None:
    client, kernel = Session(key=b"k"), Session(key=b"k")
    request = client.msg("execute_request", {"code": "1+1"})
    sent = [
        ("iopub", kernel.msg("status", {"execution_state": "busy"}, parent=request)),
        ("iopub", kernel.msg("stream", {"name": "stdout", "text": "h\u00e9\n"}, parent=request)),
        ("shell", kernel.msg("execute_reply", {"status": "ok"}, parent=request, metadata={"a": 1})),
        ("iopub", kernel.msg("status", {"execution_state": "idle"}, parent=request)),
    ]
    for channel, message in sent:
        text = _served(kernel, message, channel)
        fast = legacy_document(text)
        assert fast is not None, text
        assert fast == LEGACY.decode(text) == _reference_decode(text)
        assert fast.channel == channel
        assert fast.parent_header["msg_id"] == request["header"]["msg_id"]


def test_a_repeated_parent_is_an_independent_copy() -> None:
    parent = {"msg_id": "p", "msg_type": "execute_request", "session": "s"}
    text = _server_document(_STATUS_HEADER, parent, {}, {"execution_state": "busy"}, "iopub", True)
    first, second = LEGACY.decode(text), LEGACY.decode(text)
    assert first.parent_header == second.parent_header == parent
    assert first.parent_header is not second.parent_header


_FULL = _server_document(
    _STATUS_HEADER,
    {"msg_id": "p", "msg_type": "execute_request"},
    {"m": 1},
    {"execution_state": "busy"},
    "iopub",
    True,
)


@pytest.mark.parametrize("key", [*_LAYOUT_KEYS, "channel"])
@pytest.mark.parametrize("change", ["renamed", "spaced"])
def test_each_key_of_the_layout_is_checked(key: str, change: str) -> None:
    assert legacy_document(_FULL) == _reference_decode(_FULL)
    replacement = f'"{key.upper()}": ' if change == "renamed" else f'"{key}" : '
    text = _FULL.replace(f'"{key}": ', replacement, 1)
    assert text != _FULL
    assert legacy_document(text) is None
    assert _outcome(LEGACY.decode, text) == _outcome(_reference_decode, text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[]", "must hold a JSON object"),
        ('{"header": {}}', "channel must be a string"),
        ('{"header": {"msg_id": "a"', "not valid JSON"),
    ],
)
def test_documents_off_the_layout_are_refused_by_the_general_path(text: str, reason: str) -> None:
    assert legacy_document(text) is None
    with pytest.raises(RemoteProtocolError, match=reason):
        LEGACY.decode(text)


@pytest.mark.parametrize(
    "cut_after",
    ['"parent_header": {"msg_', '"metadata": {"m', '"content": {"exec', '"channel": "iopub"'],
    ids=["parent", "metadata", "content", "tail"],
)
def test_a_document_cut_after_its_header_is_refused_by_the_general_path(cut_after: str) -> None:
    text = _FULL[: _FULL.index(cut_after) + len(cut_after)]
    assert legacy_document(text) is None
    with pytest.raises(RemoteProtocolError, match="not valid JSON"):
        LEGACY.decode(text)
