"""The core-throughput shortcuts give exactly the answers of the plain definitions.

* ``Header.from_wire`` reads a header of exactly the six standard fields by subscript;
  any other header takes the general reads. Both must check what the attrs validators
  check and keep unknown fields in ``extra``.
* The output parsers (stream, execute_result, execute_input) test the usual field types
  inline and fall back to the named field checks: same event, or the same error.
* ``V1Codec.encode`` writes a header without extra fields, and ``execute_request``
  content as the factory builds it, from templates, and the table of a frame without
  buffers directly: same bytes as the compact JSON encoder and the general layout,
  same errors.
* ``format_date`` formats the fields itself: same text as ``isoformat``.
* The remembered parent header text is always the JSON of the remembered value, so an
  empty or different parent part is never mistaken for it.
* The tracker builds ``ExecutionResult`` and ``RichOutput`` by writing their slots: the
  same values as the keyword constructors, for every field.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta, timezone, tzinfo
from itertools import accumulate
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interp.errors import LocalProtocolError, RemoteProtocolError
from jupyter_interp.protocol import wire_json
from jupyter_interp.protocol.events import ExecuteInput, ExecuteResult, StreamText
from jupyter_interp.protocol.kernel_output import (
    OUTPUT_PARSERS,
    count_field,
    mapping_field,
    text_field,
)
from jupyter_interp.protocol.message_factory import MessageFactory, format_date
from jupyter_interp.protocol.messages import Header, Message
from jupyter_interp.protocol.result import (
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    Recovery,
    RichOutput,
    _execution_result,
    _rich_output,
)
from jupyter_interp.protocol.wire import V1Codec
from tests.strategies import messages

V1 = V1Codec()
_STANDARD = ("msg_id", "msg_type", "session", "username", "date", "version")


class _Text(str):
    pass


_values = st.one_of(
    st.text(max_size=4),
    st.builds(_Text, st.text(max_size=3)),
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
    st.sampled_from([{}, {"a": 1}, [], 1.5]),
)


# -- Header.from_wire -------------------------------------------------------------------


def _reference_header(raw: dict[str, Any]) -> Header | type[RemoteProtocolError]:
    for name in _STANDARD:
        if name not in raw:
            if name in ("msg_id", "msg_type"):
                return RemoteProtocolError
        elif not isinstance(raw[name], str):
            return RemoteProtocolError
    fields = {name: raw[name] for name in _STANDARD if name in raw}
    extra = {key: value for key, value in raw.items() if key not in _STANDARD}
    return Header(**fields, extra=extra)


@settings(max_examples=400, deadline=None)
@given(
    raw=st.dictionaries(
        st.sampled_from([*_STANDARD, "subshell_id", "x"]),
        st.one_of(st.text(max_size=4), _values),
        min_size=4,
        max_size=7,
    )
)
def test_header_reads_agree_with_the_validators(raw: dict[str, Any]) -> None:
    try:
        header: Header | type[RemoteProtocolError] = Header.from_wire(raw)
    except RemoteProtocolError:
        header = RemoteProtocolError
    expected = _reference_header(raw)
    assert header == expected
    if isinstance(header, Header):
        assert type(header.extra) is dict
        assert header.extra is not raw


def test_six_fields_with_an_unknown_one_take_the_general_reads() -> None:
    raw = {"msg_id": "a", "msg_type": "b", "session": "s", "date": "d", "version": "5", "x": 1}
    header = Header.from_wire(raw)
    assert header.username == ""
    assert dict(header.extra) == {"x": 1}


# -- output parsers ---------------------------------------------------------------------


def _reference_event(msg_type: str, content: dict[str, Any]) -> object:
    if msg_type == "stream":
        name = text_field(content, "name", "stream", None)
        text = text_field(content, "text", "stream", None)
        return StreamText(msg_id="m", name=name, text=text)
    if msg_type == "execute_result":
        data = mapping_field(content, "data", msg_type)
        metadata = mapping_field(content, "metadata", msg_type)
        count = count_field(content, msg_type)
        return ExecuteResult(msg_id="m", execution_count=count, data=data, metadata=metadata)
    code = text_field(content, "code", msg_type, "")
    count = count_field(content, msg_type)
    return ExecuteInput(msg_id="m", code=code, execution_count=count)


def _outcome(make: Any) -> object:
    try:
        return make()
    except RemoteProtocolError as exc:
        return ("error", str(exc))


@settings(max_examples=500, deadline=None)
@given(
    msg_type=st.sampled_from(["stream", "execute_result", "execute_input"]),
    content=st.dictionaries(
        st.sampled_from(["name", "text", "data", "metadata", "execution_count", "code"]),
        _values,
    ),
)
def test_output_parsers_agree_with_the_field_checks(msg_type: str, content: dict[str, Any]) -> None:
    message = Message(
        channel="iopub", header=Header(msg_id="k", msg_type=msg_type), content=content
    )
    if msg_type == "stream" and content.get("name") == "stderr":
        content = {**content, "name": "stdout"}  # rate-limit notices are tested elsewhere
        message = Message(channel="iopub", header=message.header, content=content)
    parsed = _outcome(lambda: OUTPUT_PARSERS[msg_type]("m", message))
    assert parsed == _outcome(lambda: _reference_event(msg_type, content))


# -- V1Codec.encode ---------------------------------------------------------------------


_any_text = st.text(st.characters(exclude_categories=()), max_size=6)


def _reference_header_json(header: Header) -> bytes | tuple[str, str]:
    try:
        return wire_json.dump_text(header.to_wire(), "header").encode("utf-8")
    except LocalProtocolError as exc:
        return ("error", str(exc))


@settings(max_examples=400, deadline=None)
@given(
    fields=st.fixed_dictionaries({name: _any_text for name in _STANDARD}),
    extra=st.sampled_from([{}, {"subshell_id": None}, {"msg_id": "shadowed"}]),
)
def test_header_template_writes_what_the_compact_encoder_writes(
    fields: dict[str, str], extra: dict[str, Any]
) -> None:
    header = Header(**fields, extra=extra)
    try:
        written: bytes | tuple[str, str] = wire_json.dump_header(header)
    except LocalProtocolError as exc:
        written = ("error", str(exc))
    assert written == _reference_header_json(header)


_EXECUTE_FIELDS = wire_json.EXECUTE_KEYS  # the order MessageFactory.execute_request writes
_flags = st.sampled_from([True, False, 0, 1, None])


@st.composite
def _execute_contents(draw: st.DrawFn) -> dict[str, Any]:
    """``execute_request`` content as the factory builds it, or nearly."""
    values = [
        draw(st.one_of(_any_text, st.none())),
        *(draw(_flags) for _ in range(2)),
        draw(st.sampled_from([{}, {"x": "1"}, None])),
        *(draw(_flags) for _ in range(2)),
    ]
    keys = list(_EXECUTE_FIELDS)
    if draw(st.booleans()):
        keys = draw(st.permutations(keys))
    content = dict(zip(keys, values, strict=True))
    if draw(st.booleans()):
        content["extra"] = 1
    return content


@settings(max_examples=400, deadline=None)
@given(content=_execute_contents(), msg_type=st.sampled_from(["execute_request", "x"]))
def test_execute_request_template_writes_what_the_compact_encoder_writes(
    content: dict[str, Any], msg_type: str
) -> None:
    message = Message(
        channel="shell", header=Header(msg_id="m", msg_type=msg_type), content=content
    )
    outcomes: list[bytes | tuple[str, str]] = []
    for dump in (wire_json.dump_content, lambda m: wire_json.dump_object(m.content, "content")):
        try:
            outcomes.append(dump(message))
        except LocalProtocolError as exc:
            outcomes.append(("error", str(exc)))
    assert outcomes[0] == outcomes[1]


def test_the_factorys_execute_requests_take_the_template() -> None:
    factory = MessageFactory(session="s", new_id=lambda: "i", clock=lambda: datetime(2026, 1, 1))
    request = factory.execute_request("1+1")
    assert tuple(request.content) == wire_json.EXECUTE_KEYS
    flags = (b"false", b"true", b"false", b"true")  # silent, store_history, stdin, stop
    assert V1.encode(request).endswith(wire_json.EXECUTE_JSON.encode() % (b'"1+1"', *flags))


def test_a_lone_surrogate_in_code_is_refused_like_the_encoder_refuses_it() -> None:
    content = dict(zip(_EXECUTE_FIELDS, ["a\ud800", False, True, {}, False, True], strict=True))
    header = Header(msg_id="m", msg_type="execute_request")
    message = Message(channel="shell", header=header, content=content)
    with pytest.raises(LocalProtocolError) as expected:
        wire_json.dump_object(content, "content")
    with pytest.raises(LocalProtocolError) as raised:
        V1.encode(message)
    assert str(raised.value) == str(expected.value)


def _reference_v1(message: Message) -> bytes:
    def dump(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    parts = [
        message.channel.encode(),
        dump(message.header.to_wire()),
        dump(dict(message.parent_header)),
        dump(dict(message.metadata)),
        dump(dict(message.content)),
        *message.buffers,
    ]
    offsets = list(accumulate(map(len, parts), initial=8 * (len(parts) + 2)))
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + b"".join(parts)


@settings(max_examples=200, deadline=None)
@given(message=messages(max_buffers=2))
def test_v1_encoding_writes_the_general_layout(message: Message) -> None:
    frame = V1.encode(message)
    assert frame == _reference_v1(message)
    assert V1.decode(frame) == message


# -- format_date ------------------------------------------------------------------------


def _reference_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    utc = moment.astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_zones: st.SearchStrategy[tzinfo | None] = st.one_of(
    st.none(),
    st.just(timezone.utc),
    st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    naive=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30)),
    zone=_zones,
)
def test_format_date_writes_what_isoformat_writes(naive: datetime, zone: tzinfo | None) -> None:
    moment = naive.replace(tzinfo=zone)
    assert format_date(moment) == _reference_date(moment)


@given(
    naive=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30)),
    later=st.lists(
        st.timedeltas(min_value=timedelta(microseconds=-2_000_000), max_value=timedelta(days=2)),
        max_size=5,
    ),
)
def test_format_date_reuses_a_second_only_within_it(
    naive: datetime, later: list[timedelta]
) -> None:
    # the same second again (other milliseconds), a neighbouring one, or the same
    # time of day on another day: each written as isoformat writes it
    start = naive.replace(tzinfo=timezone.utc)
    for step in [timedelta(0), *later, timedelta(days=1), timedelta(microseconds=999)]:
        moment = start + step
        assert format_date(moment) == _reference_date(moment)


# -- the remembered parent header ---------------------------------------------------------


def _frame(parts: list[bytes]) -> bytes:
    segments = [b"iopub", *parts]
    offsets = list(accumulate(map(len, segments), initial=8 * (len(segments) + 2)))
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + b"".join(segments)


_HEADER = b'{"msg_id":"k","msg_type":"stream"}'


@pytest.mark.parametrize("parent", [b'{"msg_id":"p"}', b"{}", b'{"msg_id":"q","n":[1]}'])
def test_an_empty_parent_part_is_refused_whatever_came_before(parent: bytes) -> None:
    V1.decode(_frame([_HEADER, parent, b"{}", b"{}"]))
    text, value = wire_json._last_parent
    assert json.loads(text) == value
    with pytest.raises(RemoteProtocolError, match="parent_header is not valid JSON"):
        V1.decode(_frame([_HEADER, b"", b"{}", b"{}"]))


@pytest.mark.parametrize("extra", [{}, {"x": 1}], ids=["template", "encoder"])
def test_a_lone_surrogate_in_a_header_is_refused_like_the_encoder_refuses_it(
    extra: dict[str, Any],
) -> None:
    header = Header(msg_id="a\ud800", msg_type="t", extra=extra)
    expected = _reference_header_json(header)
    assert isinstance(expected, tuple)
    with pytest.raises(LocalProtocolError) as raised:
        wire_json.dump_header(header)
    assert ("error", str(raised.value)) == expected
    message = Message(channel="shell", header=header)
    with pytest.raises(LocalProtocolError, match="header cannot be sent as JSON"):
        V1.encode(message)


# -- trusted result constructors ----------------------------------------------------------


def test_trusted_result_constructors_build_what_the_keyword_ones_build() -> None:
    output = RichOutput(kind="display_data", data={"a": 1}, metadata={"m": 2}, display_id="d")
    fields: dict[str, Any] = {
        "msg_id": "m",
        "status": ExecutionStatus.INTERRUPTED,
        "execution_count": 3,
        "stdout": "out",
        "stderr": "err",
        "stdout_size": 4,
        "stderr_size": 5,
        "stdout_truncated": True,
        "stderr_truncated": False,
        "result": "2",
        "outputs": (output,),
        "error": ErrorInfo(ename="E", evalue="v"),
        "user_expressions": {"x": {}},
        "output_dropped": True,
        "recovery": Recovery.INTERRUPTED,
        "generation": 6,
        "detail": "d",
    }
    assert set(fields) == {field.name for field in attrs.fields(ExecutionResult)}
    built, expected = _execution_result(**fields), ExecutionResult(**fields)
    assert type(built) is ExecutionResult
    assert built == expected
    assert repr(built) == repr(expected)
    made = _rich_output("display_data", {"a": 1}, {"m": 2}, "d")
    assert type(made) is RichOutput
    assert (made, repr(made)) == (output, repr(output))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.detail = "other"  # type: ignore[misc]  # still frozen
