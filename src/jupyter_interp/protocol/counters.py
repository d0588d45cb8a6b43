"""Detecting kernel messages lost across a reconnect, from jupyter_client's counters.

Strategy: jupyter_client's ``Session`` (used by ipykernel) numbers every message the
kernel sends, on every channel, in its ``msg_id``: ``{session}_{pid}_{n}`` (jupyter_client
>= 7) or ``{session}_{n}`` (6.x). ``MessageCounters`` logs the counters of the kernel's
messages and, per in-flight execution, the span of counters it covers; an execution
that spanned a reconnect (``mark``) is then checked when it finishes (``lost``).

Theory of operation:

* Only ids of the kernel's session are read: ``header.session`` is the learned kernel
  session and the ``msg_id`` is that session, optionally ``_<pid>``, then ``_<digits>``.
  A new prefix (a new kernel, another process) starts a new log; spans counted under
  the old one become unknown and are not checked. Other id formats (xeus, Deno, ...)
  are never checked.
* The log keeps the highest counter and the holes below it (``_CounterLog``): memory
  follows the holes, not the traffic. Holes are forgotten whenever an execution starts
  with nothing else in flight; past ``_HOLE_LIMIT`` they collapse into one range that is
  counted as missing entirely (conservative: it may flag, never hide, a loss).
* An execution's span starts at its ``busy`` (the kernel's first message for it: the
  connection reports it with ``busy``) or, if that never came, after the highest
  counter known when it was registered (its messages can only come later), or before
  its first counted message if none was known (or the counters restarted). It ends at
  its highest own counter: ending it at the highest counter seen when the reconnect
  began would take in the replies a server gets to its own requests around a
  reconnect, and flag them. Channels are separate sockets, so counters arrive out of
  order; when the execution finished (reply and idle) all of its messages that will
  ever come are in, and a hole inside the span is a lost message.
* Requests that are not ours (another client's, a server's own: the ``kernel_info``
  nudge a server sends for a new WebSocket on shell and on control, a gateway's
  interrupt) use counters too, and their replies never reach us. ipykernel answers
  control requests in a thread of its own, so such a reply can fall inside a running
  cell's span. Their ``busy`` and ``idle`` are broadcast, so ``foreign_status`` keeps
  each such request's (busy, idle) pair: when exactly one counter between the two is
  missing, it is that reply and not a loss. With more missing, none is excused
  (conservative: it may flag, never hide, a loss). Unmarked executions are never
  checked.
* On every kernel, whatever its ids, a marked execution must have had its own
  ``busy`` (every kernel sends one before anything else of an execution) and, unless
  it ended incomplete, its reply and idle: each one missing is a lost message of
  ours, never another client's.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MessageCounters"]

#: holes kept before they are merged into one conservative range
_HOLE_LIMIT = 4096
#: requests not ours remembered between their busy and idle, and (busy, idle) pairs kept
_FOREIGN_LIMIT = 64


class _CounterLog:
    """The message counters seen under one ``msg_id`` prefix: the highest one + holes."""

    __slots__ = ("high", "holes", "wide")

    def __init__(self, first: int) -> None:
        self.high = first
        self.holes: set[int] = set()
        self.wide: list[tuple[int, int]] = []  # (low, high) ranges counted as missing

    def add(self, counter: int) -> None:
        high = self.high
        if counter > high:
            if counter - high > _HOLE_LIMIT:
                self.wide.append((high + 1, counter - 1))
            else:
                self.holes.update(range(high + 1, counter))
            self.high = counter
            if len(self.holes) > _HOLE_LIMIT:
                self.wide.append((min(self.holes), max(self.holes)))
                self.holes.clear()
        else:
            self.holes.discard(counter)  # late (another channel) or a duplicate

    def missing_between(self, low: int, high: int) -> int:
        """How many counters strictly between ``low`` and ``high`` were never seen."""
        count = sum(1 for hole in self.holes if low < hole < high)
        for start, end in self.wide:
            count += max(0, min(end, high - 1) - max(start, low + 1) + 1)
        return count


class MessageCounters:
    """The counter log of a ``KernelConnection`` and the spans of its executions."""

    __slots__ = (
        "_busy",
        "_firsts",
        "_foreign",
        "_foreign_busy",
        "_head",
        "_lasts",
        "_log",
        "_marked",
    )

    def __init__(self) -> None:
        self._head = ""  # the current prefix and its "_" (the fast path), "" for none
        self._log: _CounterLog | None = None
        # per execution in flight: the counter its span starts after (None: unknown)
        self._firsts: dict[str, int | None] = {}
        # per execution in flight: its highest counter so far (absent: none yet)
        self._lasts: dict[str, int] = {}
        self._marked: set[str] = set()  # executions in flight at a reconnect
        self._busy: set[str] = set()  # executions in flight whose ``busy`` came
        self._foreign_busy: dict[str, int] = {}  # request not ours -> its busy's counter
        self._foreign: list[tuple[int, int]] = []  # (busy, idle) counters of such requests

    def start(self, msg_id: str, *, alone: bool) -> None:
        """Begin the span of a new execution (``alone``: nothing else is in flight)."""
        log = self._log
        if log is None:
            self._firsts[msg_id] = None
            return
        if alone:
            log.holes.clear()
            log.wide.clear()
            self._foreign.clear()  # all below this span
        self._firsts[msg_id] = log.high

    def busy(self, msg_id: str, counter: int | None) -> None:
        """The ``busy`` of in-flight execution ``msg_id`` came, with ``counter`` if the
        kernel numbers its messages: its span starts there."""
        if counter is not None:
            self._firsts[msg_id] = counter
        self._busy.add(msg_id)

    def foreign_status(self, request: str, state: object, counter: int) -> None:
        """A ``status`` with ``counter`` for ``request``, which is not ours: its unseen
        reply lies between its ``busy`` and its ``idle``."""
        if state == "busy":
            if len(self._foreign_busy) >= _FOREIGN_LIMIT:  # idles lost: start afresh
                self._foreign_busy.clear()
            self._foreign_busy[request] = counter
        elif state == "idle":
            busy = self._foreign_busy.pop(request, None)
            if busy is not None and busy < counter:
                foreign = self._foreign
                foreign.append((busy, counter))
                if len(foreign) > _FOREIGN_LIMIT:
                    del foreign[0]

    def mark(self, msg_ids: Iterable[str]) -> None:
        """These executions spanned a reconnect: check them when they finish."""
        self._marked.update(msg_ids)

    def drop(self, msg_id: str) -> None:
        """Forget a finished execution."""
        self._firsts.pop(msg_id, None)
        self._lasts.pop(msg_id, None)
        self._marked.discard(msg_id)
        self._busy.discard(msg_id)

    def new_kernel(self) -> None:
        """The kernel restarted: its next message starts a new log."""
        self._head = ""

    def count(
        self, msg_id: str, session: str, kernel_session: str | None, execution: str | None = None
    ) -> int | None:
        """Log the counter of a message if the kernel's Session numbered it; return it.

        ``execution``: the in-flight execution the message belongs to, whose span the
        counter widens (both in one call: this runs for every message).
        """
        head = self._head
        number = msg_id[len(head) :] if head and msg_id.startswith(head) else ""
        counter: int | None
        if number.isdigit() and number.isascii():  # the usual case: the current kernel's
            counter = int(number)
            log = self._log
            assert log is not None  # set with the head
            if counter == log.high + 1:
                log.high = counter
            else:
                log.add(counter)
        else:
            counter = self._count_new_prefix(msg_id, session, kernel_session)
        if execution is not None and counter is not None:
            last = self._lasts.get(execution)
            if last is None:  # its first counted message
                self._lasts[execution] = counter
                if self._firsts.get(execution, 0) is None:  # nothing known before it
                    self._firsts[execution] = counter - 1
            elif counter > last:
                self._lasts[execution] = counter
        return counter

    def _count_new_prefix(
        self, msg_id: str, session: str, kernel_session: str | None
    ) -> int | None:
        prefix, sep, number = msg_id.rpartition("_")
        if (
            not sep
            or not session
            or session != kernel_session
            or not (number.isascii() and number.isdigit())
            or not (prefix == session or prefix.startswith(f"{session}_"))
        ):
            return None
        counter = int(number)  # a new prefix (the fast path takes the current one)
        # the first log: spans of executions registered before it start before this
        # counter; a later prefix makes every span counted so far unknown
        start = counter - 1 if self._log is None else None
        self._head = f"{prefix}_"
        self._log = _CounterLog(counter)
        self._foreign_busy.clear()
        self._foreign.clear()
        firsts = self._firsts
        for execution in firsts:
            firsts[execution] = start
        if start is None:
            self._lasts.clear()
        return counter

    def lost(self, msg_id: str, *, incomplete: bool = False) -> int:
        """How many messages of marked execution ``msg_id`` are missing (0 when it is
        not marked).

        On any kernel, its own ``busy`` (and, when it ended ``incomplete``, its reply or
        its idle) must have come: each of them missing counts. Where the kernel numbers
        its messages, the counters missing inside its span count too (see the module
        docstring); the larger of the two counts is returned, as a lost ``busy`` is
        also a missing counter.
        """
        if msg_id not in self._marked:
            return 0
        own = (msg_id not in self._busy) + incomplete
        first, last, log = self._firsts.get(msg_id), self._lasts.get(msg_id), self._log
        if first is None or last is None or log is None:
            return own
        missing = log.missing_between(first, last)
        for busy, idle in self._foreign if missing else ():
            if busy < last and first < idle and log.missing_between(busy, idle) == 1:
                reply = next((hole for hole in log.holes if busy < hole < idle), None)
                if reply is not None and first < reply < last:
                    missing -= 1  # that request's own reply, never sent to us
        return max(own, missing)
