"""Typed events the core emits while it digests kernel messages.

Strategy: ``ExecutionTracker`` and ``KernelConnection`` turn each incoming ``Message``
into zero or more of these frozen values. The same events feed both ways of consuming
an execution: ``Session.stream()`` yields them as they arrive, and the tracker folds them
into the ``ExecutionResult`` carried by the final ``ExecutionFinished``.

Invariants: events that belong to an execution carry that request's ``msg_id`` (so one
reader can route them); connection-level events (kernel status, restart, death) do not.
Every event is immutable; none holds a reference to mutable core state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import attrs

from .messages import Header, Message
from .result import ErrorInfo, ExecutionResult

__all__ = [
    "ClearOutput",
    "DisplayData",
    "DisplayUpdate",
    "Event",
    "ExecuteInput",
    "ExecuteResult",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionFinished",
    "InputRequested",
    "KernelDead",
    "KernelRestarted",
    "KernelStatus",
    "OutputDropped",
    "ReplyReceived",
    "StreamText",
]


@attrs.frozen(kw_only=True)
class StreamText:
    """A chunk of ``stdout`` or ``stderr`` text (chunks are not line-aligned)."""

    msg_id: str
    name: str
    text: str


@attrs.frozen(kw_only=True)
class DisplayData:
    """A rich output (MIME bundle); ``display_id`` lets later updates target it."""

    msg_id: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    display_id: str | None = None


@attrs.frozen(kw_only=True)
class DisplayUpdate:
    """Replace the bundle of every earlier output with ``display_id``."""

    msg_id: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    display_id: str


@attrs.frozen(kw_only=True)
class ClearOutput:
    """Clear the outputs so far (``wait``: only when the next output arrives)."""

    msg_id: str
    wait: bool = False


@attrs.frozen(kw_only=True)
class ExecuteInput:
    """The kernel echoed the code and assigned it an execution count."""

    msg_id: str
    code: str
    execution_count: int | None = None


@attrs.frozen(kw_only=True)
class ExecuteResult:
    """The value of the last expression (``text/plain`` is usually present)."""

    msg_id: str
    execution_count: int | None
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ExecutionError:
    """The user code raised."""

    msg_id: str
    error: ErrorInfo


@attrs.frozen(kw_only=True)
class InputRequested:
    """The code called ``input()``; answer with ``MessageFactory.input_reply(parent=request)``."""

    msg_id: str
    prompt: str
    password: bool
    request: Header


@attrs.frozen(kw_only=True)
class OutputDropped:
    """The server's IOPub rate limiter dropped output (its notice text is kept)."""

    msg_id: str
    text: str


@attrs.frozen(kw_only=True)
class ExecutionFinished:
    """The execution is over; ``result`` is the aggregate. Always the last event."""

    msg_id: str
    result: ExecutionResult


@attrs.frozen(kw_only=True)
class KernelStatus:
    """A kernel ``status`` message (``busy``, ``idle``, ``starting``, ...)."""

    execution_state: str
    parent_msg_id: str | None = None


@attrs.frozen(kw_only=True)
class KernelRestarted:
    """The kernel was restarted (crash + auto-restart, or a new kernel session seen).

    ``generation`` is the connection's counter after the bump.
    """

    generation: int
    reason: str


@attrs.frozen(kw_only=True)
class KernelDead:
    """The server gave up on the kernel (``status: dead``); it will not come back."""

    generation: int


@attrs.frozen(kw_only=True)
class ReplyReceived:
    """A reply to a non-execute request we sent (``kernel_info_reply``, ...)."""

    request_msg_id: str
    message: Message


# -- trusted constructors for the hot path ---------------------------------------------
#
# The core builds these events for every kernel message from values it has already
# checked, so it writes their slots through the slot descriptors: that skips the frozen
# ``__setattr__`` of the attrs ``__init__`` and costs half as much. Users build events
# with the ordinary keyword constructors.

_new = object.__new__


def _slot_setters(cls: type, *names: str) -> tuple[Callable[[object, object], None], ...]:
    return tuple(vars(cls)[name].__set__ for name in names)


_STREAM_TEXT = _slot_setters(StreamText, "msg_id", "name", "text")
_EXECUTE_INPUT = _slot_setters(ExecuteInput, "msg_id", "code", "execution_count")
_EXECUTE_RESULT = _slot_setters(ExecuteResult, "msg_id", "execution_count", "data", "metadata")
_FINISHED = _slot_setters(ExecutionFinished, "msg_id", "result")
_KERNEL_STATUS = _slot_setters(KernelStatus, "execution_state", "parent_msg_id")


def _stream_text(msg_id: str, name: str, text: str) -> StreamText:
    event: StreamText = _new(StreamText)
    set_msg_id, set_name, set_text = _STREAM_TEXT
    set_msg_id(event, msg_id)
    set_name(event, name)
    set_text(event, text)
    return event


def _execute_input(msg_id: str, code: str, execution_count: int | None) -> ExecuteInput:
    event: ExecuteInput = _new(ExecuteInput)
    set_msg_id, set_code, set_count = _EXECUTE_INPUT
    set_msg_id(event, msg_id)
    set_code(event, code)
    set_count(event, execution_count)
    return event


def _execute_result(
    msg_id: str, execution_count: int | None, data: Mapping[str, Any], metadata: Mapping[str, Any]
) -> ExecuteResult:
    event: ExecuteResult = _new(ExecuteResult)
    set_msg_id, set_count, set_data, set_metadata = _EXECUTE_RESULT
    set_msg_id(event, msg_id)
    set_count(event, execution_count)
    set_data(event, data)
    set_metadata(event, metadata)
    return event


def _execution_finished(msg_id: str, result: ExecutionResult) -> ExecutionFinished:
    event: ExecutionFinished = _new(ExecutionFinished)
    set_msg_id, set_result = _FINISHED
    set_msg_id(event, msg_id)
    set_result(event, result)
    return event


def _kernel_status(execution_state: str, parent_msg_id: str | None) -> KernelStatus:
    event: KernelStatus = _new(KernelStatus)
    set_state, set_parent = _KERNEL_STATUS
    set_state(event, execution_state)
    set_parent(event, parent_msg_id)
    return event


ExecutionEvent: TypeAlias = (
    StreamText
    | DisplayData
    | DisplayUpdate
    | ClearOutput
    | ExecuteInput
    | ExecuteResult
    | ExecutionError
    | InputRequested
    | OutputDropped
    | ExecutionFinished
)

Event: TypeAlias = ExecutionEvent | KernelStatus | KernelRestarted | KernelDead | ReplyReceived
