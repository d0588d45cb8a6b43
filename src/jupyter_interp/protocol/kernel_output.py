"""Kernel output messages to validated execution events: one parser per message type.

Strategy: ``ExecutionTracker`` looks the type of every output-like message of its
request (stream, display, result, clear, input echo, error, input request) up in
``OUTPUT_PARSERS``, a table built once, and the parser returns one typed event; types
without a parser (comms, debug events, ...) are not part of an execution's result.

Invariants:

* Every field an event carries is checked before the event exists; a field of the
  wrong type raises ``RemoteProtocolError`` naming the message type and the field, so
  the tracker can refuse the message without changing any state.
* Absent optional fields take the spec's defaults; ``update_display_data`` must carry
  ``transient.display_id``.
* The server's rate-limit notice (stderr starting "IOPub data/message rate exceeded")
  is not user output: it becomes ``OutputDropped``, never ``StreamText``.
* ``publishes_after_idle`` names, from ``kernel_info``, the kernels whose output may
  arrive after their ``idle`` status (Deno's results, displays and console output, about
  one execution in ten here), so that their executions wait for it.
* ``shows_values_as_displays`` names, from ``kernel_info``, the kernels that publish a
  cell's value as ``display_data`` (IRkernel); their trackers parse with
  ``VALUE_DISPLAY_PARSERS``, where a display that has ``text/plain``, no picture
  (``image/*``, ``application/pdf``: IRkernel's plots carry one) and no ``display_id``
  becomes an ``ExecuteResult`` (count None). On the wire IRkernel's value and an explicit
  ``IRdisplay::display(x)`` are the same message, so the latter counts as a value too;
  every other kernel keeps ``OUTPUT_PARSERS``, where only ``execute_result`` is a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import RemoteProtocolError
from .events import (
    ClearOutput,
    DisplayData,
    DisplayUpdate,
    ExecutionError,
    ExecutionEvent,
    InputRequested,
    OutputDropped,
    _execute_input,
    _execute_result,
    _stream_text,
)
from .messages import Message
from .result import ErrorInfo

__all__ = [
    "OUTPUT_PARSERS",
    "VALUE_DISPLAY_PARSERS",
    "count_field",
    "mapping_field",
    "publishes_after_idle",
    "shows_values_as_displays",
    "text_field",
]

#: ``implementation`` prefixes (``kernel_info_reply``) of kernels that publish late
_LATE_PUBLISHERS = ("Deno",)
#: ``implementation`` names of kernels that publish values as ``display_data``
_VALUE_DISPLAYERS = ("IRkernel",)
#: MIME type prefixes of pictures: a display carrying one is never a value
_PICTURES = ("image/", "application/pdf")


def publishes_after_idle(kernel_info: Mapping[str, Any]) -> bool:
    """Whether the kernel that gave this ``kernel_info_reply`` content may publish an
    execution's output after its ``idle`` status."""
    implementation = kernel_info.get("implementation")
    return isinstance(implementation, str) and implementation.startswith(_LATE_PUBLISHERS)


def shows_values_as_displays(kernel_info: Mapping[str, Any]) -> bool:
    """Whether the kernel that gave this ``kernel_info_reply`` content publishes a cell's
    value as ``display_data`` instead of ``execute_result``."""
    return kernel_info.get("implementation") in _VALUE_DISPLAYERS


_RATE_LIMIT_PREFIXES = ("IOPub data rate exceeded", "IOPub message rate exceeded")


def _bad(msg_type: str, what: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"{msg_type} message: {what}")


def text_field(content: Mapping[str, Any], key: str, msg_type: str, default: str | None) -> str:
    """``content[key]`` as a string (``default`` when absent; None: required).

    Raises:
        RemoteProtocolError: absent without a default, or not a string.
    """
    value = content.get(key, default)
    if type(value) is not str and not isinstance(value, str):
        raise _bad(msg_type, f"{key!r} must be a string")
    return value


def mapping_field(content: Mapping[str, Any], key: str, msg_type: str) -> Mapping[str, Any]:
    """``content[key]`` as an object (``{}`` when absent).

    Raises:
        RemoteProtocolError: present but not an object.
    """
    value = content.get(key, {})
    if type(value) is not dict and not isinstance(value, Mapping):  # the exact type first: fast
        raise _bad(msg_type, f"{key!r} must be an object")
    return value


def count_field(content: Mapping[str, Any], msg_type: str) -> int | None:
    """``content["execution_count"]`` (None when absent or null).

    Raises:
        RemoteProtocolError: present but not an integer (booleans are refused).
    """
    value = content.get("execution_count")
    if (
        value is not None
        and type(value) is not int
        and (isinstance(value, bool) or not isinstance(value, int))
    ):
        raise _bad(msg_type, "'execution_count' must be an integer")
    return value


def _flag(content: Mapping[str, Any], key: str, msg_type: str) -> bool:
    value = content.get(key, False)
    if not isinstance(value, bool):
        raise _bad(msg_type, f"{key!r} must be a boolean")
    return value


def _display_id(content: Mapping[str, Any], msg_type: str) -> str | None:
    value = mapping_field(content, "transient", msg_type).get("display_id")
    if value is not None and not isinstance(value, str):
        raise _bad(msg_type, "'transient.display_id' must be a string")
    return value


def _parse_stream(msg_id: str, message: Message) -> ExecutionEvent:
    content = message.content
    name, text = content.get("name"), content.get("text")
    if type(name) is not str or type(text) is not str:  # the checks below name the problem
        name = text_field(content, "name", "stream", None)
        text = text_field(content, "text", "stream", None)
    if name == "stderr" and text.startswith(_RATE_LIMIT_PREFIXES):
        return OutputDropped(msg_id=msg_id, text=text)
    return _stream_text(msg_id, name, text)


def _parse_execute_result(msg_id: str, message: Message) -> ExecutionEvent:
    content = message.content
    data, metadata = content.get("data"), content.get("metadata")
    count = content.get("execution_count")
    if not (type(data) is type(metadata) is dict and (type(count) is int or count is None)):
        data = mapping_field(content, "data", "execute_result")  # checked in this order
        metadata = mapping_field(content, "metadata", "execute_result")
        count = count_field(content, "execute_result")
    return _execute_result(msg_id, count, data, metadata)


def _parse_display_data(msg_id: str, message: Message) -> DisplayData:
    content = message.content
    data = mapping_field(content, "data", "display_data")
    metadata = mapping_field(content, "metadata", "display_data")
    display_id = _display_id(content, "display_data")
    return DisplayData(msg_id=msg_id, data=data, metadata=metadata, display_id=display_id)


def _parse_value_display(msg_id: str, message: Message) -> ExecutionEvent:
    """``display_data`` on a kernel that shows values that way: a value is an
    ``ExecuteResult``, anything else stays a ``DisplayData``."""
    event = _parse_display_data(msg_id, message)
    data = event.data
    if (
        event.display_id is None
        and "text/plain" in data
        and not any(mime.startswith(_PICTURES) for mime in data)
    ):
        return _execute_result(msg_id, None, data, event.metadata)
    return event


def _parse_update_display_data(msg_id: str, message: Message) -> ExecutionEvent:
    content, msg_type = message.content, "update_display_data"
    data = mapping_field(content, "data", msg_type)
    metadata = mapping_field(content, "metadata", msg_type)
    display_id = _display_id(content, msg_type)
    if display_id is None:
        raise _bad(msg_type, "'transient.display_id' is required")
    return DisplayUpdate(msg_id=msg_id, data=data, metadata=metadata, display_id=display_id)


def _parse_clear_output(msg_id: str, message: Message) -> ExecutionEvent:
    return ClearOutput(msg_id=msg_id, wait=_flag(message.content, "wait", "clear_output"))


def _parse_execute_input(msg_id: str, message: Message) -> ExecutionEvent:
    content = message.content
    code, count = content.get("code"), content.get("execution_count")
    if type(code) is not str or not (type(count) is int or count is None):
        code = text_field(content, "code", "execute_input", "")  # checked in this order
        count = count_field(content, "execute_input")
    return _execute_input(msg_id, code, count)


def _parse_error(msg_id: str, message: Message) -> ExecutionEvent:
    return ExecutionError(msg_id=msg_id, error=ErrorInfo.from_content(message.content))


def _parse_input_request(msg_id: str, message: Message) -> ExecutionEvent:
    content = message.content
    prompt = text_field(content, "prompt", "input_request", "")
    password = _flag(content, "password", "input_request")
    return InputRequested(msg_id=msg_id, prompt=prompt, password=password, request=message.header)


#: the parser of each output-like message type: ``parse(msg_id, message) -> event``
OUTPUT_PARSERS: dict[str, Callable[[str, Message], ExecutionEvent]] = {
    "stream": _parse_stream,
    "execute_result": _parse_execute_result,
    "display_data": _parse_display_data,
    "update_display_data": _parse_update_display_data,
    "clear_output": _parse_clear_output,
    "execute_input": _parse_execute_input,
    "error": _parse_error,
    "input_request": _parse_input_request,
}
#: ``OUTPUT_PARSERS`` for kernels that ``shows_values_as_displays``
VALUE_DISPLAY_PARSERS = {**OUTPUT_PARSERS, "display_data": _parse_value_display}
