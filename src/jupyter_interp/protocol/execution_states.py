"""The states of an ``ExecutionTracker`` and the table of its legal transitions.

Strategy: ``_TRANSITIONS`` maps every legal (state, input) pair to the next state; a
pair missing from it is local misuse (the tracker raises and poisons itself). Every
kernel input is listed for every live state, so remote messages never poison. Enum
members the hot paths read are bound to module names here (a member read off its
class costs a metaclass lookup, several per message), and ``execution`` imports them.
"""

from __future__ import annotations

import enum

__all__ = ["TrackerState"]


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
    #: reply and idle seen, but the kernel publishes some output late (Deno): output is
    #: still taken until ``finish_incomplete``
    SETTLING = "settling"
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


# A member read off its Enum class costs a metaclass attribute lookup (about 0.1 us on
# CPython 3.11, several per message); the hot paths read these module names instead.
_PENDING, _DONE, _ERROR = TrackerState.PENDING, TrackerState.DONE, TrackerState.ERROR
_SETTLING = TrackerState.SETTLING
_BUSY, _OUTPUT, _REPLY, _IDLE = _Input.BUSY, _Input.OUTPUT, _Input.REPLY, _Input.IDLE

_S, _I = TrackerState, _Input
_TRANSITIONS: dict[tuple[TrackerState, _Input], TrackerState] = {
    **{
        (state, _I.FAIL): _S.DONE
        for state in (_S.PENDING, _S.RUNNING, _S.REPLY_SEEN, _S.IDLE_SEEN, _S.SETTLING)
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
    # a tracker made with ``settle`` goes here instead of DONE when reply and idle are in
    **{(_S.SETTLING, kernel): _S.SETTLING for kernel in (_I.BUSY, _I.OUTPUT, _I.REPLY, _I.IDLE)},
    (_S.SETTLING, _I.FINISH_INCOMPLETE): _S.DONE,
}
#: the rows of ``_TRANSITIONS`` for the two inputs every message of a run brings (busy
#: and output), by state: one lookup without building a key per message
_AFTER_OUTPUT = {state: new for (state, event), new in _TRANSITIONS.items() if event is _OUTPUT}
_AFTER_BUSY = {state: new for (state, event), new in _TRANSITIONS.items() if event is _BUSY}
