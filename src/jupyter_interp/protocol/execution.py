"""One execute_request's state machine: kernel messages in, events out, one result.

Strategy: an ``ExecutionTracker`` is created per ``execute_request``. The I/O layer feeds
it every message whose parent is that request (``receive``); it answers with typed
events (``events``) and folds the same information into an ``ExecutionResult``. It
never waits: when only one of the two completion signals arrived it says so
(``awaiting_grace``) and the I/O layer calls ``finish_incomplete()`` after its grace
period, or ``fail()`` on a deadline, kernel death, lost connection or cancellation.

Theory of operation:

* Completion is the shell ``execute_reply`` AND the iopub ``status: idle`` of our request,
  in either order (they travel on different sockets). ``ExecutionFinished`` is emitted
  exactly once, as the last event; later messages for our ``msg_id`` are ignored
  (background threads may still print after idle). Other parents are always ignored.
* ``_TRANSITIONS`` lists every legal (state, input) pair. Every kernel input is listed for
  every live state (duplicates are tolerated), so only local misuse is unlisted
  (``finish_incomplete``/``fail`` at the wrong time, ``fail(OK)``): it raises
  ``LocalProtocolError`` and poisons the tracker; afterwards every call raises except the
  ``msg_id``/``state``/``done`` properties.
* A field of the wrong type raises ``RemoteProtocolError`` *before* anything changes, so
  remote garbage does not poison: the caller may ``fail()`` the tracker (the connection
  does, with status ERROR and a ``detail``).
* Reply ``ok`` -> OK; ``error`` -> ERROR (INTERRUPTED for ``KeyboardInterrupt``); ``abort``
  (bash_kernel/IRkernel, interrupted) -> INTERRUPTED; ``aborted`` -> ABORTED; anything else
  -> ERROR with a ``detail``. ``error`` comes from the iopub ``error`` message, else from
  the reply; xeus' bare ``{"status": "error"}`` leaves it None and says so in ``detail``.
  Idle without a reply ends as NO_REPLY (through ``finish_incomplete``).
* Streams merge per name into ``stdout``/``stderr`` (other names go to ``stdout``). Past
  the ``OutputBudget`` cap the first and last halves are kept around a one-line
  ``[... N bytes of output omitted ...]`` marker; memory stays proportional to the cap.
* The server's rate-limit notice (stderr starting "IOPub data/message rate exceeded") is
  not user output: it becomes ``OutputDropped``, sets ``output_dropped`` and puts its
  first line in ``detail``, never in ``stderr``.
* ``clear_output`` clears rich ``outputs`` only; streams are the agent's log and are kept.
  ``wait=True`` defers the clear to the next stream, display, result or error.
  ``update_display_data`` replaces the bundle of every output with its ``display_id``.
  ``result`` is ``text/plain`` of ``execute_result``: None for IRkernel, which shows
  values as ``display_data`` (they are in ``outputs``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import LocalProtocolError, RemoteProtocolError
from .budget import HeadTail, OutputBudget
from .events import (
    ClearOutput,
    DisplayData,
    DisplayUpdate,
    ExecuteInput,
    ExecuteResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionFinished,
    InputRequested,
    OutputDropped,
    StreamText,
)
from .messages import Message
from .result import ErrorInfo, ExecutionResult, ExecutionStatus, Recovery, RichOutput

__all__ = ["ExecutionTracker", "TrackerState"]

_RATE_LIMIT_PREFIXES = ("IOPub data rate exceeded", "IOPub message rate exceeded")


_UNLIMITED = OutputBudget()


class TrackerState(enum.Enum):
    """Where an ``ExecutionTracker`` stands."""

    #: sent, nothing seen yet
    PENDING = "pending"
    #: ``busy`` or some output seen
    RUNNING = "running"
    #: ``execute_reply`` seen, ``idle`` missing
    REPLY_SEEN = "reply_seen"
    #: ``idle`` seen, ``execute_reply`` missing
    IDLE_SEEN = "idle_seen"
    #: finished; ``result`` is available
    DONE = "done"
    #: poisoned by a local misuse
    ERROR = "error"

    # Identity hashing (equality is identity for enums anyway): ``Enum.__hash__`` is a
    # Python-level call, and the transition table is looked up for every message.
    __hash__ = object.__hash__


class _Input(enum.Enum):
    BUSY = "busy"
    OUTPUT = "output"
    REPLY = "reply"
    IDLE = "idle"
    FINISH_INCOMPLETE = "finish_incomplete"
    FAIL = "fail"

    __hash__ = object.__hash__  # as for TrackerState


_S, _I = TrackerState, _Input
_TRANSITIONS: dict[tuple[TrackerState, _Input], TrackerState] = {
    **{
        (state, _I.FAIL): _S.DONE for state in (_S.PENDING, _S.RUNNING, _S.REPLY_SEEN, _S.IDLE_SEEN)
    },
    **{(state, _I.BUSY): _S.RUNNING for state in (_S.PENDING, _S.RUNNING)},
    **{(state, _I.OUTPUT): _S.RUNNING for state in (_S.PENDING, _S.RUNNING)},
    **{(state, _I.REPLY): _S.REPLY_SEEN for state in (_S.PENDING, _S.RUNNING)},
    **{(state, _I.IDLE): _S.IDLE_SEEN for state in (_S.PENDING, _S.RUNNING)},
    (_S.REPLY_SEEN, _I.BUSY): _S.REPLY_SEEN,
    (_S.REPLY_SEEN, _I.OUTPUT): _S.REPLY_SEEN,
    (_S.REPLY_SEEN, _I.REPLY): _S.REPLY_SEEN,  # a duplicate reply: the first one wins
    (_S.REPLY_SEEN, _I.IDLE): _S.DONE,
    (_S.REPLY_SEEN, _I.FINISH_INCOMPLETE): _S.DONE,
    (_S.IDLE_SEEN, _I.BUSY): _S.IDLE_SEEN,
    (_S.IDLE_SEEN, _I.OUTPUT): _S.IDLE_SEEN,
    (_S.IDLE_SEEN, _I.IDLE): _S.IDLE_SEEN,
    (_S.IDLE_SEEN, _I.REPLY): _S.DONE,
    (_S.IDLE_SEEN, _I.FINISH_INCOMPLETE): _S.DONE,
}


def _bad(msg_type: str, what: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"{msg_type} message: {what}")


def _text(content: Mapping[str, Any], key: str, msg_type: str, default: str | None) -> str:
    value = content.get(key, default)
    if not isinstance(value, str):
        raise _bad(msg_type, f"{key!r} must be a string")
    return value


def _mapping(content: Mapping[str, Any], key: str, msg_type: str) -> Mapping[str, Any]:
    value = content.get(key, {})
    if not isinstance(value, Mapping):
        raise _bad(msg_type, f"{key!r} must be an object")
    return value


def _count(content: Mapping[str, Any], msg_type: str) -> int | None:
    value = content.get("execution_count")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _bad(msg_type, "'execution_count' must be an integer")
    return value


def _display_id(content: Mapping[str, Any], msg_type: str) -> str | None:
    value = _mapping(content, "transient", msg_type).get("display_id")
    if value is not None and not isinstance(value, str):
        raise _bad(msg_type, "'transient.display_id' must be a string")
    return value


class ExecutionTracker:
    """Tracks one ``execute_request`` from send to ``ExecutionFinished``.

    Args:
        request: the ``execute_request`` message that was (or will be) sent.
        budget: caps on the stream text kept in the result.
        generation: the kernel generation the request was sent in (copied to the result).

    Raises:
        LocalProtocolError: ``request`` is not an ``execute_request``.
    """

    def __init__(
        self, request: Message, *, budget: OutputBudget = _UNLIMITED, generation: int = 0
    ) -> None:
        if request.msg_type != "execute_request":
            raise LocalProtocolError(f"cannot track a {request.msg_type!r}; need execute_request")
        self._msg_id = request.msg_id
        self._generation = generation
        self._state = TrackerState.PENDING
        self._streams = {"stdout": HeadTail(budget.max_stream_bytes)}
        self._streams["stderr"] = HeadTail(budget.max_stream_bytes)
        self._outputs: list[RichOutput] = []
        self._clear_pending = False
        self._result_text: str | None = None
        self._error: ErrorInfo | None = None
        self._input_count: int | None = None
        self._reply: Mapping[str, Any] | None = None
        self._dropped_notice = ""
        self._result: ExecutionResult | None = None

    @property
    def msg_id(self) -> str:
        """The ``msg_id`` of the tracked ``execute_request``."""
        return self._msg_id

    @property
    def state(self) -> TrackerState:
        return self._state

    @property
    def done(self) -> bool:
        """True once ``ExecutionFinished`` was emitted."""
        return self._state is TrackerState.DONE

    @property
    def awaiting_grace(self) -> bool:
        """True when only one of reply/idle arrived: wait briefly, then ``finish_incomplete()``."""
        return self._state in (TrackerState.REPLY_SEEN, TrackerState.IDLE_SEEN)

    @property
    def result(self) -> ExecutionResult:
        """The aggregate result.

        Raises:
            LocalProtocolError: the execution is not finished yet (or the tracker is poisoned).
        """
        self._check_usable()
        if self._result is None:
            raise LocalProtocolError("the execution has not finished yet")
        return self._result

    def receive(self, message: Message) -> list[ExecutionEvent]:
        """Digest one kernel message; messages for other parents are ignored.

        Returns:
            The events for this message, in order; ``ExecutionFinished`` comes last.

        Raises:
            LocalProtocolError: the tracker is poisoned.
            RemoteProtocolError: a field has the wrong type (the tracker is left unchanged).
        """
        state = self._state
        if state is TrackerState.ERROR:
            self._check_usable()
        # ``parent_msg_id`` inlined (hot path): only our own, non-empty msg_id matches
        parent = message.parent_header.get("msg_id")
        if not parent or parent != self._msg_id or state is TrackerState.DONE:
            return []
        msg_type = message.header.msg_type
        if msg_type == "status":
            return self._on_status(message)
        if msg_type == "execute_reply":
            return self._on_reply(message)
        event = _parse_output(self._msg_id, message)
        return [] if event is None else self._apply(event)

    def finish_incomplete(self) -> list[ExecutionEvent]:
        """End after the grace period: from the reply alone, or as NO_REPLY after idle alone.

        Raises:
            LocalProtocolError: not ``awaiting_grace`` (this poisons the tracker).
        """
        self._advance(_Input.FINISH_INCOMPLETE)
        if self._reply is not None:
            return self._finish(*self._reply_outcome(self._reply))
        return self._finish(
            ExecutionStatus.NO_REPLY, self._error, "the kernel went idle but sent no execute_reply"
        )

    def fail(
        self, status: ExecutionStatus, *, detail: str = "", recovery: Recovery | None = None
    ) -> list[ExecutionEvent]:
        """End now with ``status``, keeping the partial output.

        Used for timeouts, kernel death or restart, lost connections, cancellation and
        unanswerable input requests.

        Raises:
            LocalProtocolError: already finished, or ``status`` is OK (this poisons the tracker).
        """
        self._check_usable()
        if status is ExecutionStatus.OK:
            self._poison("fail() needs a failure status, not OK")
        self._advance(_Input.FAIL)
        return self._finish(status, self._error, detail, recovery)

    # -- state machine -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is TrackerState.ERROR:
            raise LocalProtocolError("this ExecutionTracker is poisoned by an earlier misuse")

    def _poison(self, reason: str) -> None:
        self._state = TrackerState.ERROR
        raise LocalProtocolError(reason)

    def _advance(self, event: _Input) -> None:
        self._check_usable()
        new_state = _TRANSITIONS.get((self._state, event))
        if new_state is None:
            self._poison(f"cannot handle {event.value} in state {self._state.value}")
        else:
            self._state = new_state

    # -- message handlers (validate first, then advance, then mutate) -------------------

    def _on_status(self, message: Message) -> list[ExecutionEvent]:
        state = _text(message.content, "execution_state", "status", None)
        if state == "busy":
            self._advance(_Input.BUSY)
        elif state == "idle":
            self._advance(_Input.IDLE)
            if self._state is TrackerState.DONE:
                assert self._reply is not None  # only REPLY_SEEN goes to DONE on idle
                return self._finish(*self._reply_outcome(self._reply))
        return []

    def _on_reply(self, message: Message) -> list[ExecutionEvent]:
        content = message.content
        _count(content, "execute_reply")
        _mapping(content, "user_expressions", "execute_reply")
        self._advance(_Input.REPLY)
        if self._reply is None:
            self._reply = content
        if self._state is TrackerState.DONE:
            return self._finish(*self._reply_outcome(content))
        return []

    def _apply(self, event: ExecutionEvent) -> list[ExecutionEvent]:
        self._advance(_Input.OUTPUT)
        if isinstance(event, OutputDropped):
            self._dropped_notice = self._dropped_notice or event.text.splitlines()[0]
            return [event]
        if isinstance(event, ClearOutput):
            self._clear_pending = event.wait
            if not event.wait:
                self._outputs.clear()
            return [event]
        if self._clear_pending and isinstance(event, _CLEAR_TRIGGERS):
            self._clear_pending = False
            self._outputs.clear()
        if isinstance(event, StreamText):
            self._streams.get(event.name, self._streams["stdout"]).append(event.text)
        elif isinstance(event, DisplayUpdate):
            self._outputs = [
                attrs.evolve(out, data=event.data, metadata=event.metadata)
                if out.display_id == event.display_id
                else out
                for out in self._outputs
            ]
        elif isinstance(event, DisplayData):
            self._outputs.append(
                RichOutput(
                    kind="display_data",
                    data=event.data,
                    metadata=event.metadata,
                    display_id=event.display_id,
                )
            )
        elif isinstance(event, ExecuteResult):
            self._outputs.append(
                RichOutput(kind="execute_result", data=event.data, metadata=event.metadata)
            )
            plain = event.data.get("text/plain")
            self._result_text = plain if isinstance(plain, str) else None
            if self._input_count is None:
                self._input_count = event.execution_count
        elif isinstance(event, ExecuteInput):
            self._input_count = event.execution_count
        elif isinstance(event, ExecutionError) and self._error is None:
            self._error = event.error
        return [event]

    # -- aggregation ----------------------------------------------------------------------

    def _reply_outcome(
        self, reply: Mapping[str, Any]
    ) -> tuple[ExecutionStatus, ErrorInfo | None, str]:
        status = reply.get("status")
        if status == "ok":
            return ExecutionStatus.OK, self._error, ""
        if status == "abort":
            return ExecutionStatus.INTERRUPTED, self._error, ""
        if status == "aborted":
            return ExecutionStatus.ABORTED, self._error, ""
        if status != "error":
            return ExecutionStatus.ERROR, self._error, f"unknown execute_reply status {status!r}"
        has_details = any(key in reply for key in ("ename", "evalue", "traceback"))
        error = self._error or (ErrorInfo.from_content(reply) if has_details else None)
        if error is None:
            return ExecutionStatus.ERROR, None, "the kernel reported an error without details"
        if "KeyboardInterrupt" in (error.ename, reply.get("ename")):
            return ExecutionStatus.INTERRUPTED, error, ""
        return ExecutionStatus.ERROR, error, ""

    def _finish(
        self,
        status: ExecutionStatus,
        error: ErrorInfo | None,
        detail: str,
        recovery: Recovery | None = None,
    ) -> list[ExecutionEvent]:
        reply = self._reply or {}
        reply_count = reply.get("execution_count")  # validated by _on_reply
        stdout, stdout_cut = self._streams["stdout"].take()  # releases what it kept
        stderr, stderr_cut = self._streams["stderr"].take()
        self._result = ExecutionResult(
            msg_id=self._msg_id,
            status=status,
            execution_count=self._input_count if reply_count is None else reply_count,
            stdout=stdout,
            stderr=stderr,
            stdout_size=self._streams["stdout"].size,
            stderr_size=self._streams["stderr"].size,
            stdout_truncated=stdout_cut,
            stderr_truncated=stderr_cut,
            result=self._result_text,
            outputs=tuple(self._outputs),
            error=error,
            user_expressions=dict(reply.get("user_expressions", {})),
            output_dropped=bool(self._dropped_notice),
            recovery=recovery,
            generation=self._generation,
            detail="; ".join(part for part in (detail, self._dropped_notice) if part),
        )
        return [ExecutionFinished(msg_id=self._msg_id, result=self._result)]


def _flag(content: Mapping[str, Any], key: str, msg_type: str) -> bool:
    value = content.get(key, False)
    if not isinstance(value, bool):
        raise _bad(msg_type, f"{key!r} must be a boolean")
    return value


def _parse_output(msg_id: str, message: Message) -> ExecutionEvent | None:
    """The event for an output-like message (None for types we ignore)."""
    content, msg_type = message.content, message.msg_type
    if msg_type == "stream":
        name = _text(content, "name", msg_type, None)
        text = _text(content, "text", msg_type, None)
        if name == "stderr" and text.startswith(_RATE_LIMIT_PREFIXES):
            return OutputDropped(msg_id=msg_id, text=text)
        return StreamText(msg_id=msg_id, name=name, text=text)
    if msg_type in ("display_data", "update_display_data", "execute_result"):
        data = _mapping(content, "data", msg_type)
        metadata = _mapping(content, "metadata", msg_type)
        if msg_type == "execute_result":
            count = _count(content, msg_type)
            return ExecuteResult(msg_id=msg_id, execution_count=count, data=data, metadata=metadata)
        display_id = _display_id(content, msg_type)
        if msg_type == "display_data":
            return DisplayData(msg_id=msg_id, data=data, metadata=metadata, display_id=display_id)
        if display_id is None:
            raise _bad(msg_type, "'transient.display_id' is required")
        return DisplayUpdate(msg_id=msg_id, data=data, metadata=metadata, display_id=display_id)
    if msg_type == "clear_output":
        return ClearOutput(msg_id=msg_id, wait=_flag(content, "wait", msg_type))
    if msg_type == "execute_input":
        code = _text(content, "code", msg_type, "")
        return ExecuteInput(msg_id=msg_id, code=code, execution_count=_count(content, msg_type))
    if msg_type == "error":
        return ExecutionError(msg_id=msg_id, error=ErrorInfo.from_content(content))
    if msg_type == "input_request":
        prompt = _text(content, "prompt", msg_type, "")
        password = _flag(content, "password", msg_type)
        return InputRequested(
            msg_id=msg_id, prompt=prompt, password=password, request=message.header
        )
    return None


_CLEAR_TRIGGERS = (StreamText, DisplayData, ExecuteResult, ExecutionError)
