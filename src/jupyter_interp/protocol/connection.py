"""The multiplexer for one kernel WebSocket: routes messages, notices restarts.

Strategy: a ``KernelConnection`` sits between the framing codecs (``wire``) and the
trackers. The I/O layer asks it for requests to send (``execute``, ``request``) and feeds
it every decoded ``Message`` (``receive``); it answers with events (``events``). It owns
no socket and never waits.

Theory of operation:

* Routing is by ``parent_header.msg_id`` only: a message whose parent is one of our
  in-flight executions goes to that ``ExecutionTracker``; the reply (``*_reply``, any
  channel) to a registered non-execute request becomes ``ReplyReceived``; iopub
  ``status`` messages for our requests or with no parent also become ``KernelStatus``
  (before the tracker's events, so ``ExecutionFinished`` stays last). Everything else
  (other clients, other parents, comms, late output of finished executions) yields ``[]``.
* A message whose ``header.msg_id`` was already processed is ignored: after a reconnect
  the server replays what it buffered. The memory of ids is bounded (at least the last
  4096, at most twice that).
* Kernel restarts are noticed three ways, each bumping ``generation`` and failing every
  in-flight execution before ``KernelRestarted`` is emitted: the server's parentless
  ``status: restarting`` (the kernel died; status KERNEL_DIED), a REST restart the I/O
  layer reports with ``notice_restart`` (KERNEL_RESTARTED), and a change of the kernel's
  ``header.session`` (KERNEL_RESTARTED). ``status: dead`` fails them with KERNEL_DIED and
  emits ``KernelDead``.
* The kernel's session is learned only from messages that cannot be someone else's:
  ``header.session`` non-empty, not our own session (server-synthesized messages carry
  ours, and IRkernel/IJulia copy the request's session into their replies), and a parent
  that is empty or one of our requests sent in the current generation (kernels that copy
  sessions would otherwise show another client's session; late output of the old kernel
  would show the old one). After a restart the old session is retired and never
  re-learned. When the message revealing a new session answers an in-flight request,
  that request reached the new kernel and is spared.
* Malformed content for an in-flight execution (``RemoteProtocolError`` from its
  tracker) ends that execution with status ERROR and a ``detail``; the connection stays
  usable. A malformed parentless status raises ``RemoteProtocolError`` (nothing to fail).
* Trackers that finished (through ``receive``, ``fail``, ``finish_incomplete``, or a
  direct call on the tracker) or were poisoned are unregistered; their request ids stay
  known so late status messages are still ours.
* Loss across a reconnect is detected, not only de-duplicated (a server forgets what
  it wrote to a socket that died before it noticed): every message's ``msg_id`` goes
  to ``MessageCounters`` (``counters``), which reads jupyter_client's per-kernel message
  counter in it. ``notice_reconnect`` marks the executions in flight whose requests
  went out on the old socket; when a marked one finishes (reply and idle, or
  ``finish_incomplete``), a missing counter inside its span sets ``output_dropped``
  and ``detail`` says how many messages were lost.
  Executions ended by ``fail`` are not checked (their status already says why).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import LocalProtocolError, RemoteProtocolError
from .budget import OutputBudget
from .counters import MessageCounters
from .events import (
    Event,
    ExecutionFinished,
    KernelDead,
    KernelRestarted,
    ReplyReceived,
    _kernel_status,
)
from .execution import ExecutionTracker, TrackerState
from .message_factory import MessageFactory
from .messages import Message
from .recent import Recent
from .result import ExecutionStatus, Recovery

__all__ = ["KernelConnection"]

_RECENT_LIMIT = 4096
_RETIRED_LIMIT = 16
_UNLIMITED = OutputBudget()
_FINISHED = (TrackerState.DONE, TrackerState.ERROR)


class KernelConnection:
    """Routes the messages of one kernel WebSocket to trackers and connection events.

    Args:
        factory: builds our requests; its ``session`` is our client session id.
        budget: the output budget of every execution started here.

    Attributes:
        settle: executions started from now on wait for late output after their reply
            and idle (see ``ExecutionTracker``); set it for kernels that
            ``publishes_after_idle`` says do that.
        values_as_displays: executions started from now on take a value shown as
            ``display_data`` for their result; set it for kernels that
            ``shows_values_as_displays`` says do that.
    """

    def __init__(self, factory: MessageFactory, *, budget: OutputBudget = _UNLIMITED) -> None:
        self._factory = factory
        self._budget = budget
        self._trackers: dict[str, ExecutionTracker] = {}
        self._requests: dict[str, Message] = {}
        self._own = Recent(_RECENT_LIMIT)  # msg_id of our requests -> generation sent in
        # processed msg_ids, the newest in ``_seen`` and the ``_RECENT_LIMIT`` before them
        # in ``_seen_before``: a full ``_seen`` replaces it (at least the last
        # ``_RECENT_LIMIT`` are always known, at most twice that)
        self._seen: set[str] = set()
        self._seen_before: set[str] = set()
        self._retired = Recent(_RETIRED_LIMIT)
        self._generation = 0
        self._kernel_session: str | None = None
        self._counters = MessageCounters()
        self.settle = False
        self.values_as_displays = False

    @property
    def factory(self) -> MessageFactory:
        """The factory building our requests (use it for ``input_reply``, ``interrupt_request``)."""
        return self._factory

    @property
    def generation(self) -> int:
        """How many kernel restarts this connection has seen."""
        return self._generation

    @property
    def kernel_session(self) -> str | None:
        """The kernel's ``header.session`` as learned so far (None until seen or after restart)."""
        return self._kernel_session

    @property
    def in_flight(self) -> tuple[str, ...]:
        """The ``msg_id`` of every unfinished execution, oldest first."""
        self._prune()
        return tuple(self._trackers)

    @property
    def pending_requests(self) -> tuple[str, ...]:
        """The ``msg_id`` of every registered non-execute request still awaiting its reply."""
        return tuple(self._requests)

    def tracker(self, msg_id: str) -> ExecutionTracker | None:
        """The tracker of an unfinished execution, or None."""
        self._prune()
        return self._trackers.get(msg_id)

    def execute(self, code: str, **options: Any) -> tuple[ExecutionTracker, Message]:
        """Build an ``execute_request`` and start tracking it.

        Args:
            code: the source to run.
            **options: ``MessageFactory.execute_request`` options (``allow_stdin``, ...).

        Returns:
            The tracker and the message to send.

        Raises:
            LocalProtocolError: bad code/options, or the factory repeated a msg_id.
        """
        message = self._factory.execute_request(code, **options)
        msg_id = message.header.msg_id
        self._register(msg_id)
        tracker = ExecutionTracker(
            message,
            budget=self._budget,
            generation=self._generation,
            settle=self.settle,
            values_as_displays=self.values_as_displays,
        )
        self._prune()
        self._counters.start(msg_id, alone=not self._trackers)
        self._trackers[msg_id] = tracker
        return tracker, message

    def request(self, message: Message) -> Message:
        """Register a non-execute request; its reply comes back as ``ReplyReceived``.

        Returns:
            ``message`` itself, ready to send.

        Raises:
            LocalProtocolError: ``message`` is an ``execute_request`` (use ``execute``) or
                its msg_id is already registered.
        """
        if message.msg_type == "execute_request":
            raise LocalProtocolError("use execute() for execute_request")
        self._register(message.msg_id)
        self._requests[message.msg_id] = message
        return message

    def forget(self, msg_id: str) -> None:
        """Stop waiting for the reply to a request (no-op if unknown or already answered)."""
        self._requests.pop(msg_id, None)

    def receive(self, message: Message) -> list[Event]:
        """Route one message from the kernel WebSocket.

        Returns:
            The events it causes, in order (``[]`` for messages that are not ours).

        Raises:
            RemoteProtocolError: a parentless ``status`` without a string execution state.
        """
        header = message.header
        msg_id, msg_type = header.msg_id, header.msg_type
        if msg_id:  # remember recent ids (inlined: runs per message)
            seen = self._seen
            if msg_id in seen or msg_id in self._seen_before:
                return []
            seen.add(msg_id)
            if len(seen) >= _RECENT_LIMIT:
                self._seen_before, self._seen = seen, set()
        parent = message.parent_header.get("msg_id")  # ``parent_msg_id``, inlined
        if not isinstance(parent, str) or not parent:
            parent = None
        events: list[Event]
        if msg_type == "status" and parent is None:
            events = self._on_connection_status(message)
            self._counters.count(msg_id, header.session, self._kernel_session)  # after:
            # the status may have taught the kernel's session
            return events
        if header.session == self._kernel_session:  # the usual case: nothing to learn
            events = []
        else:
            events = self._observe_session(message, parent)
        tracker = None if parent is None else self._trackers.get(parent)
        if tracker is not None and tracker._state in _FINISHED:  # finished by a direct call
            self._prune()
            tracker = None
        execution = None if tracker is None else parent  # its span takes the counter
        counter = self._counters.count(msg_id, header.session, self._kernel_session, execution)
        if parent is None:
            return events
        if tracker is None and parent not in self._requests and parent not in self._own:
            if msg_type == "status" and counter is not None:  # its reply is not ours to see
                state = message.content.get("execution_state")
                self._counters.foreign_status(parent, state, counter)
            return events
        if msg_type == "status":
            state = message.content.get("execution_state")
            if isinstance(state, str):
                events.append(_kernel_status(state, parent))
                if state == "busy" and tracker is not None:
                    self._counters.busy(parent, counter)
        if tracker is not None:
            try:  # ``tracker.receive``: the parent is its request and it is live
                events += tracker._digest(message, msg_type)
            except RemoteProtocolError as exc:
                detail = f"the kernel sent a malformed message: {exc}"
                events.extend(tracker.fail(ExecutionStatus.ERROR, detail=detail))
            if tracker._state in _FINISHED:  # unregister it (others finished are pruned lazily)
                self._check_loss(tracker, events)
                del self._trackers[parent]
                self._counters.drop(parent)
        elif parent in self._requests and msg_type.endswith("_reply"):
            del self._requests[parent]
            events.append(ReplyReceived(request_msg_id=parent, message=message))
        return events

    def notice_restart(self, reason: str) -> list[Event]:
        """Record a restart the I/O layer performs (REST restart): fail in-flight work.

        Call it when the restart is issued, before the new kernel can speak, so that its
        session is learned as the current one rather than counted as a second restart.

        Returns:
            ``ExecutionFinished`` (KERNEL_RESTARTED) per in-flight execution, then
            ``KernelRestarted``.
        """
        return self._restart(ExecutionStatus.KERNEL_RESTARTED, reason)

    def notice_reconnect(self, sent: Iterable[str]) -> None:
        """Record that the WebSocket was reopened: messages may have been lost meanwhile.

        Args:
            sent: The executions whose requests went out on the old socket. Each of them
                still in flight is checked for gaps in the kernel's message counters when
                it finishes (see the module docstring); a gap sets ``output_dropped``.
                An execution still waiting to be sent is not: all of its messages come
                on the new socket, and a foreign request's reply inside its span (a
                server's nudge for the new socket) would be taken for a loss.
        """
        self._prune()
        trackers = self._trackers
        self._counters.mark(msg_id for msg_id in sent if msg_id in trackers)

    def finish_incomplete(self, msg_id: str) -> list[Event]:
        """``ExecutionTracker.finish_incomplete`` for an in-flight execution, then unregister it.

        Raises:
            LocalProtocolError: ``msg_id`` is not in flight, or the tracker is not awaiting
                its grace period (which poisons it).
        """
        tracker = self._in_flight_tracker(msg_id)
        incomplete = not tracker.settling  # settling: reply and idle both came
        events: list[Event] = list(tracker.finish_incomplete())
        self._check_loss(tracker, events, incomplete=incomplete)
        self._prune()
        return events

    def fail(
        self,
        msg_id: str,
        status: ExecutionStatus,
        *,
        detail: str = "",
        recovery: Recovery | None = None,
    ) -> list[Event]:
        """``ExecutionTracker.fail`` for an in-flight execution, then unregister it.

        Raises:
            LocalProtocolError: ``msg_id`` is not in flight, or ``status`` is OK.
        """
        tracker = self._in_flight_tracker(msg_id)
        events: list[Event] = list(tracker.fail(status, detail=detail, recovery=recovery))
        self._prune()
        return events

    def fail_all(self, status: ExecutionStatus, *, detail: str = "") -> list[Event]:
        """End every in-flight execution with ``status`` (e.g. CONNECTION_LOST).

        Raises:
            LocalProtocolError: ``status`` is OK.
        """
        if status is ExecutionStatus.OK:
            raise LocalProtocolError("fail_all() needs a failure status, not OK")
        return self._fail_trackers(status, detail)

    # -- internals ---------------------------------------------------------------------

    def _register(self, msg_id: str) -> None:
        if msg_id in self._trackers:
            self._prune()  # a tracker finished by a direct call does not hold its id
        if msg_id in self._trackers or msg_id in self._requests:
            raise LocalProtocolError(f"msg_id {msg_id!r} is already in flight")
        self._own.add(msg_id, self._generation)

    def _in_flight_tracker(self, msg_id: str) -> ExecutionTracker:
        tracker = self.tracker(msg_id)
        if tracker is None:
            raise LocalProtocolError(f"no execution {msg_id!r} is in flight")
        return tracker

    def _prune(self) -> None:
        if not self._trackers:  # the usual case at each ``execute``
            return
        for msg_id in [k for k, t in self._trackers.items() if t._state in _FINISHED]:
            del self._trackers[msg_id]
            self._counters.drop(msg_id)

    def _check_loss(
        self, tracker: ExecutionTracker, events: list[Event], *, incomplete: bool = False
    ) -> None:
        """Flag the result of a reconnect-spanning execution that misses messages."""
        lost = self._counters.lost(tracker.msg_id, incomplete=incomplete)
        if lost and events and isinstance(events[-1], ExecutionFinished):
            result = tracker.note_lost_messages(lost)
            events[-1] = ExecutionFinished(msg_id=tracker.msg_id, result=result)

    def _fail_trackers(
        self, status: ExecutionStatus, detail: str, *, spare: str | None = None
    ) -> list[Event]:
        self._prune()
        events: list[Event] = []
        for msg_id, tracker in list(self._trackers.items()):
            if msg_id != spare:
                events.extend(tracker.fail(status, detail=detail))
        self._prune()
        return events

    def _restart(
        self, status: ExecutionStatus, reason: str, *, spare: str | None = None
    ) -> list[Event]:
        self._generation += 1
        self._counters.new_kernel()
        if self._kernel_session is not None:
            self._retired.add(self._kernel_session)
            self._kernel_session = None
        events = self._fail_trackers(status, reason, spare=spare)
        events.append(KernelRestarted(generation=self._generation, reason=reason))
        return events

    def _on_connection_status(self, message: Message) -> list[Event]:
        state = message.content.get("execution_state")
        if not isinstance(state, str):
            raise RemoteProtocolError("status message: 'execution_state' must be a string")
        events: list[Event] = [_kernel_status(state, None)]
        if state == "restarting":
            reason = "the kernel died and the server is restarting it"
            events.extend(self._restart(ExecutionStatus.KERNEL_DIED, reason))
        elif state == "dead":
            reason = "the kernel died and the server gave up restarting it"
            events.extend(self._fail_trackers(ExecutionStatus.KERNEL_DIED, reason))
            events.append(KernelDead(generation=self._generation))
        else:
            events.extend(self._observe_session(message, None))
        return events

    def _observe_session(self, message: Message, parent: str | None) -> list[Event]:
        session = message.header.session
        if (
            not session
            or session == self._factory.session
            or session in self._retired
            or (parent is not None and self._own.get(parent) != self._generation)
        ):
            return []
        if self._kernel_session is None:
            self._kernel_session = session
            return []
        if session == self._kernel_session:
            return []
        events = self._restart(
            ExecutionStatus.KERNEL_RESTARTED,
            "the kernel was restarted (its session changed)",
            spare=parent,
        )
        self._kernel_session = session
        return events
