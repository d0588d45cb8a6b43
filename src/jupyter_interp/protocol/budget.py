"""Output budgets: how much of one execution's streams the client keeps.

Strategy: a stream is kept whole up to a byte cap; past it, only a head and a tail
(about half the cap each) are kept around a one-line marker, so an agent sees how the
output began and how it ended while client memory stays proportional to the cap,
not to the output.

Invariants: sizes are counted in UTF-8 bytes; cuts fall on character boundaries; the
original size is always known, so a result can say how much was dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain

import attrs

from ..errors import LocalProtocolError

__all__ = ["HeadTail", "OutputBudget"]


def _check_cap(_instance: object, _attribute: object, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise LocalProtocolError(f"max_stream_bytes must be None or an int >= 0, not {value!r}")


@attrs.frozen(kw_only=True)
class OutputBudget:
    """Caps on what one execution keeps. ``max_stream_bytes`` is per stream, in UTF-8 bytes."""

    max_stream_bytes: int | None = attrs.field(default=None, validator=_check_cap)


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _char_start(data: bytes, position: int) -> int:
    """The nearest UTF-8 character start at or before ``position`` (< ``len(data)``)."""
    while position > 0 and data[position] & 0xC0 == 0x80:
        position -= 1
    return position


def _split(text: str, position: int) -> tuple[str, str]:
    """``text`` cut at the character start at or before UTF-8 byte ``position``."""
    if text.isascii():
        return text[:position], text[position:]
    data = text.encode("utf-8", "surrogatepass")
    cut = _char_start(data, position)
    return data[:cut].decode("utf-8", "surrogatepass"), data[cut:].decode("utf-8", "surrogatepass")


def _drop_front(text: str, count: int) -> str:
    """``text`` without its first ``count`` UTF-8 bytes and the rest of a character cut there."""
    if text.isascii():
        return text[count:]
    data = text.encode("utf-8", "surrogatepass")
    while count < len(data) and data[count] & 0xC0 == 0x80:
        count += 1
    return data[count:].decode("utf-8", "surrogatepass")


class HeadTail:
    """Stream text kept whole up to a byte cap, then as a head and a tail around a gap.

    Text is kept as the ``str`` pieces it arrived in (sizes counted in UTF-8 bytes);
    ``take`` appends them to one string in place, releasing each as it goes, so the
    result costs no second copy. Until the cap
    is exceeded every piece sits in the head. At the first overflow the head is cut back
    to its share (on a character boundary, spilling into the tail); from then on only the
    tail moves: new pieces are appended, whole pieces fall off its front and the first
    remaining piece is trimmed to the next character start.
    """

    def __init__(self, cap: int | None) -> None:
        self._cap = cap
        self._head_cap = 0 if cap is None else cap - cap // 2
        self._tail_cap = 0 if cap is None else cap // 2
        self._head: list[str] = []
        self._head_size = 0
        self._tail: deque[tuple[str, int]] = deque()
        self._tail_size = 0
        self._head_open = True
        self.size = 0

    def append(self, text: str) -> None:
        size = _utf8_size(text)
        self.size += size
        if not self._head_open:
            self._push_tail(text, size)
            return
        if self._cap is None or self.size <= self._cap:
            self._head.append(text)
            self._head_size += size
            return
        self._head_open = False
        pieces, self._head, self._head_size = [*self._head, text], [], 0
        index = 0  # the pieces exceed the cap, so one of them crosses the head's share
        while self._head_size + (piece_size := _utf8_size(pieces[index])) <= self._head_cap:
            self._head.append(pieces[index])
            self._head_size += piece_size
            index += 1
        kept, spilled = _split(pieces[index], self._head_cap - self._head_size)
        if kept:
            self._head.append(kept)
            self._head_size += _utf8_size(kept)
        for rest in (spilled, *pieces[index + 1 :]):
            self._push_tail(rest, _utf8_size(rest))

    def _push_tail(self, text: str, size: int) -> None:
        if size >= self._tail_cap:  # everything before it falls out of the tail
            self._tail.clear()
            self._tail_size = 0
            text = _drop_front(text, size - self._tail_cap)
            size = _utf8_size(text)
        if not size:
            return
        self._tail.append((text, size))
        self._tail_size += size
        excess = self._tail_size - self._tail_cap
        while excess > 0:
            first, first_size = self._tail[0]
            if first_size <= excess:
                self._tail.popleft()
                self._tail_size -= first_size
                excess -= first_size
                continue
            trimmed = _drop_front(first, excess)
            trimmed_size = _utf8_size(trimmed)
            self._tail[0] = (trimmed, trimmed_size)
            self._tail_size -= first_size - trimmed_size
            excess = 0

    def render(self) -> tuple[str, bool]:
        """The kept text (with a marker where the middle was cut) and whether it was cut."""
        marker = self._marker()
        if marker is None:
            return "".join(self._head), False
        return "".join([*self._head, marker, *(text for text, _ in self._tail)]), True

    def take(self) -> tuple[str, bool]:
        """``render``, emptying this object while the text is built, piece by piece.

        Each piece is released as soon as it is appended, so memory stays near what is
        kept (CPython grows a string it alone references in place) instead of twice it.
        Call it once, last: afterwards only ``size`` is meaningful.
        """
        marker = self._marker()
        head, self._head = self._head, []
        tail, self._tail = self._tail, deque()
        head.reverse()
        if marker is None:
            return _append_all(_drain(head)), False
        pieces = chain(_drain(head), (marker,), (piece for piece, _ in _drain_left(tail)))
        return _append_all(pieces), True

    def _marker(self) -> str | None:
        dropped = self.size - self._head_size - self._tail_size
        return f"\n[... {dropped} bytes of output omitted ...]\n" if dropped else None


def _append_all(pieces: Iterable[str]) -> str:
    """The concatenation of ``pieces``, grown in place (one loop, so it stays specialised)."""
    text = ""
    for piece in pieces:
        text += piece
    return text


def _drain(pieces: list[str]) -> Iterator[str]:
    """Pop ``pieces`` from the end, so the caller holds the only reference to each."""
    while pieces:
        yield pieces.pop()


def _drain_left(pieces: deque[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    while pieces:
        yield pieces.popleft()
