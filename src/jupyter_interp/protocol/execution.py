"""One execute_request's state machine: kernel messages in, events out, one result.

Strategy: an ``ExecutionTracker`` is created per ``execute_request``. The I/O layer feeds
it every message whose parent is that request (``receive``); it answers with typed
events (``events``) and folds the same information into an ``ExecutionResult``. It
never waits: when only one of the two completion signals arrived it says so
(``awaiting_grace``) and the I/O layer calls ``finish_incomplete()`` after its grace
period, or ``fail()`` on a deadline, kernel death, lost connection or cancellation.

Theory of operation:

* Completion is the shell ``execute_reply`` AND the iopub ``status: idle`` of our request,
  in either order (they travel on different sockets); a ``settle`` tracker then stays
  ``SETTLING`` and takes late output until the I/O layer's short window ends it through
  ``finish_incomplete`` (Deno publishes some output after idle). ``ExecutionFinished``
  is emitted exactly once, as the last event; later messages for our ``msg_id`` are ignored
  (background threads may still print after idle). Other parents are always ignored.
* ``_TRANSITIONS`` (``execution_states``, with ``TrackerState``) lists every legal
  (state, input) pair. Every kernel input is listed for every live state (duplicates
  are tolerated), so only local misuse is unlisted (``finish_incomplete``/``fail`` at
  the wrong time, ``fail(OK)``): it raises ``LocalProtocolError`` and poisons the
  tracker; afterwards every call raises except the ``msg_id``/``state``/``done``
  properties.
* A field of the wrong type raises ``RemoteProtocolError`` *before* anything changes, so
  remote garbage does not poison: the caller may ``fail()`` the tracker (the connection
  does, with status ERROR and a ``detail``).
* Reply ``ok`` -> OK; ``error`` -> ERROR (INTERRUPTED for ``KeyboardInterrupt``); ``abort``
  (bash_kernel/IRkernel, interrupted) -> INTERRUPTED; ``aborted`` -> ABORTED; anything else
  -> ERROR with a ``detail``. ``error`` comes from the iopub ``error`` message, else from
  the reply; xeus' bare ``{"status": "error"}`` leaves it None and says so in ``detail``.
  Idle without a reply ends as NO_REPLY (through ``finish_incomplete``).
* Content is validated into events by ``kernel_output`` (``VALUE_DISPLAY_PARSERS`` for
  a ``values_as_displays`` tracker, so IRkernel's values arrive as ``ExecuteResult``);
  ``execution_output`` folds the
  output events into the result's fields (streams under the ``OutputBudget``, rich
  outputs, the result text). The server's rate-limit notice becomes ``OutputDropped``:
  it sets ``output_dropped`` and puts its first line in ``detail``, never in ``stderr``.
  ``note_lost_messages`` (the connection's gap check after a reconnect) sets the same
  flag and appends its own sentence to ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import LocalProtocolError
from .budget import OutputBudget
from .events import ExecutionEvent, _execution_finished
from .execution_output import FOLD, OutputFold
from .execution_states import (
    _AFTER_BUSY,
    _AFTER_OUTPUT,
    _DONE,
    _ERROR,
    _IDLE,
    _PENDING,
    _REPLY,
    _SETTLING,
    _TRANSITIONS,
    TrackerState,
    _Input,
)
from .kernel_output import (
    OUTPUT_PARSERS,
    VALUE_DISPLAY_PARSERS,
    count_field,
    mapping_field,
    text_field,
)
from .messages import Message
from .result import ErrorInfo, ExecutionResult, ExecutionStatus, Recovery, _execution_result

__all__ = ["ExecutionTracker", "TrackerState"]

_UNLIMITED = OutputBudget()
_NOT_CUT = ("", False)
_OK = ExecutionStatus.OK


class ExecutionTracker:
    """Tracks one ``execute_request`` from send to ``ExecutionFinished``.

    Args:
        request: the ``execute_request`` message that was (or will be) sent.
        budget: caps on the stream text kept in the result.
        generation: the kernel generation the request was sent in (copied to the result).
        settle: the kernel may publish output after its reply and idle (Deno): once both
            are in, stay ``SETTLING`` (``awaiting_grace``) and take output until
            ``finish_incomplete`` instead of finishing at once.
        values_as_displays: the kernel publishes values as ``display_data`` (IRkernel,
            see ``kernel_output.shows_values_as_displays``): such a display is the result.

    Raises:
        LocalProtocolError: ``request`` is not an ``execute_request``.
    """

    __slots__ = (
        "_generation",
        "_msg_id",
        "_output",
        "_parsers",
        "_reply",
        "_result",
        "_settle",
        "_state",
    )

    def __init__(
        self,
        request: Message,
        *,
        budget: OutputBudget = _UNLIMITED,
        generation: int = 0,
        settle: bool = False,
        values_as_displays: bool = False,
    ) -> None:
        header = request.header
        if header.msg_type != "execute_request":
            raise LocalProtocolError(f"cannot track a {header.msg_type!r}; need execute_request")
        self._msg_id = header.msg_id
        self._generation = generation
        self._settle = settle
        self._parsers = VALUE_DISPLAY_PARSERS if values_as_displays else OUTPUT_PARSERS
        self._state = _PENDING
        self._output = OutputFold(budget.max_stream_bytes)
        self._reply: Mapping[str, Any] | None = None
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
        return self._state is _DONE

    @property
    def awaiting_grace(self) -> bool:
        """True when only one of reply/idle arrived, or while ``settling``: wait briefly,
        then ``finish_incomplete()``."""
        return self._state in (TrackerState.REPLY_SEEN, TrackerState.IDLE_SEEN, _SETTLING)

    @property
    def settling(self) -> bool:
        """True once reply and idle are in for a ``settle`` tracker: late output is taken."""
        return self._state is _SETTLING

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
        if state is _ERROR:
            self._check_usable()
        # ``parent_msg_id`` inlined (hot path): only our own, non-empty msg_id matches
        parent = message.parent_header.get("msg_id")
        if not parent or parent != self._msg_id or state is _DONE:
            return []
        return self._digest(message, message.header.msg_type)

    def _digest(self, message: Message, msg_type: str) -> list[ExecutionEvent]:
        """``receive`` for a message of ours while live (the connection checked both)."""
        if msg_type == "status":
            return self._on_status(message)
        if msg_type == "execute_reply":
            return self._on_reply(message)
        parse = self._parsers.get(msg_type)
        if parse is None:  # comms, debug events, ...: not part of the result
            return []
        event = parse(self._msg_id, message)
        self._state = _AFTER_OUTPUT[self._state]  # listed for every live state
        FOLD[type(event)](self._output, event)
        return [event]

    def finish_incomplete(self) -> list[ExecutionEvent]:
        """End after the grace period: from the reply alone, or as NO_REPLY after idle alone.

        Raises:
            LocalProtocolError: not ``awaiting_grace`` (this poisons the tracker).
        """
        self._advance(_Input.FINISH_INCOMPLETE)
        if self._reply is not None:
            return self._finish(*self._reply_outcome(self._reply))
        return self._finish(
            ExecutionStatus.NO_REPLY,
            self._output.error,
            "the kernel went idle but sent no execute_reply",
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
        if status is _OK:
            self._poison("fail() needs a failure status, not OK")
        self._advance(_Input.FAIL)
        return self._finish(status, self._output.error, detail, recovery)

    def note_lost_messages(self, count: int) -> ExecutionResult:
        """Flag the finished result: ``count`` kernel messages were lost while reconnecting.

        Sets ``output_dropped`` (so ``ok`` is false) and appends to ``detail``, keeping a
        rate-limit notice already there.

        Returns:
            The flagged result (also what ``result`` returns from now on).

        Raises:
            LocalProtocolError: the execution has not finished yet.
        """
        result = self.result
        if count == 1:
            note = "1 kernel message was lost while reconnecting"
        else:
            note = f"{count} kernel messages were lost while reconnecting"
        detail = f"{result.detail}; {note}" if result.detail else note
        self._result = attrs.evolve(result, output_dropped=True, detail=detail)
        return self._result

    # -- state machine -------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._state is _ERROR:
            raise LocalProtocolError("this ExecutionTracker is poisoned by an earlier misuse")

    def _poison(self, reason: str) -> None:
        self._state = _ERROR
        raise LocalProtocolError(reason)

    def _advance(self, event: _Input) -> None:
        new_state = _TRANSITIONS.get((self._state, event))
        if new_state is None:
            self._check_usable()  # no transition leaves ERROR
            self._poison(f"cannot handle {event.value} in state {self._state.value}")
        else:
            self._state = new_state

    # -- message handlers (validate first, then advance, then mutate) -------------------

    def _on_status(self, message: Message) -> list[ExecutionEvent]:
        state = message.content.get("execution_state")
        if type(state) is not str:  # the slow path names the problem (or takes a subclass)
            state = text_field(message.content, "execution_state", "status", None)
        if state == "busy":  # ``_advance(_BUSY)``, inlined: listed for every live state
            self._state = _AFTER_BUSY[self._state]
        elif state == "idle":
            self._advance(_IDLE)
            if self._state is _DONE:
                assert self._reply is not None  # only REPLY_SEEN goes to DONE on idle
                return self._complete(self._reply)
        return []

    def _on_reply(self, message: Message) -> list[ExecutionEvent]:
        content = message.content
        count_field(content, "execute_reply")
        mapping_field(content, "user_expressions", "execute_reply")
        self._advance(_REPLY)
        if self._reply is None:
            self._reply = content
        if self._state is _DONE:
            return self._complete(content)
        return []

    def _complete(self, reply: Mapping[str, Any]) -> list[ExecutionEvent]:
        """Reply and idle are both in: finish, or settle first (``settle`` trackers)."""
        if self._settle:
            self._state = _SETTLING  # ``finish_incomplete`` ends it from the reply
            return []
        return self._finish(*self._reply_outcome(reply))

    # -- aggregation ----------------------------------------------------------------------

    def _reply_outcome(
        self, reply: Mapping[str, Any]
    ) -> tuple[ExecutionStatus, ErrorInfo | None, str]:
        status = reply.get("status")
        error = self._output.error
        if status == "ok":
            return _OK, error, ""
        if status == "abort":
            return ExecutionStatus.INTERRUPTED, error, ""
        if status == "aborted":
            return ExecutionStatus.ABORTED, error, ""
        if status != "error":
            return ExecutionStatus.ERROR, error, f"unknown execute_reply status {status!r}"
        has_details = any(key in reply for key in ("ename", "evalue", "traceback"))
        error = error or (ErrorInfo.from_content(reply) if has_details else None)
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
        output = self._output
        reply = self._reply or {}
        reply_count = reply.get("execution_count")  # validated by _on_reply
        stdout_stream, stderr_stream = output.streams.get("stdout"), output.streams.get("stderr")
        # ``take`` releases the kept pieces as it joins them: no second copy of the text
        stdout, stdout_cut = _NOT_CUT if stdout_stream is None else stdout_stream.take()
        stderr, stderr_cut = _NOT_CUT if stderr_stream is None else stderr_stream.take()
        notice = output.dropped_notice
        if notice:
            detail = f"{detail}; {notice}" if detail else notice
        expressions = reply.get("user_expressions")
        self._result = _execution_result(
            msg_id=self._msg_id,
            status=status,
            execution_count=output.input_count if reply_count is None else reply_count,
            stdout=stdout,
            stderr=stderr,
            stdout_size=0 if stdout_stream is None else stdout_stream.size,
            stderr_size=0 if stderr_stream is None else stderr_stream.size,
            stdout_truncated=stdout_cut,
            stderr_truncated=stderr_cut,
            result=output.result_text,
            outputs=tuple(output.outputs),
            error=error,
            user_expressions=dict(expressions) if expressions else {},
            output_dropped=bool(notice),
            recovery=recovery,
            generation=self._generation,
            detail=detail,
        )
        return [_execution_finished(self._msg_id, self._result)]
