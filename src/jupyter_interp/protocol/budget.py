"""Output budgets: how much of one execution's streams the client keeps.

Strategy: a stream is kept whole up to a byte cap; past it, only a head and a tail
(about half the cap each) are kept around a one-line marker, so an agent sees how the
output began and how it ended while client memory stays proportional to the cap,
not to the output.

Invariants: sizes are counted in UTF-8 bytes; cuts fall on character boundaries; the
original size is always known, so a result can say how much was dropped.
"""

from __future__ import annotations

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


def _char_start(data: bytes | bytearray, position: int) -> int:
    """The nearest UTF-8 character start at or before ``position`` (< ``len(data)``)."""
    while position > 0 and data[position] & 0xC0 == 0x80:
        position -= 1
    return position


class HeadTail:
    """Stream text kept whole up to a byte cap, then as a head and a tail around a gap.

    Until the cap is exceeded everything sits in the head. At the first overflow the head
    is cut back to its share (on a character boundary, spilling into the tail); from then
    on only the tail moves, trimmed from the front (amortized O(1) for a ``bytearray``).
    """

    def __init__(self, cap: int | None) -> None:
        self._cap = cap
        self._head_cap = 0 if cap is None else cap - cap // 2
        self._tail_cap = 0 if cap is None else cap // 2
        self._head = bytearray()
        self._tail = bytearray()
        self._head_open = True
        self.size = 0

    def append(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        self.size += len(data)
        if self._head_open:
            if self._cap is None or self.size <= self._cap:
                self._head += data
                return
            self._head_open = False
            if len(self._head) > self._head_cap:
                cut = _char_start(self._head, self._head_cap)
                self._tail += self._head[cut:]
                del self._head[cut:]
            else:
                cut = _char_start(data, self._head_cap - len(self._head))
                self._head += data[:cut]
                data = data[cut:]
        self._tail += data[max(0, len(data) - self._tail_cap) :]
        excess = len(self._tail) - self._tail_cap
        if excess > 0:
            del self._tail[:excess]

    def render(self) -> tuple[str, bool]:
        """The kept text (with a marker where the middle was cut) and whether it was cut."""
        start = 0
        while start < len(self._tail) and self._tail[start] & 0xC0 == 0x80:
            start += 1
        head = self._head.decode("utf-8", "surrogatepass")
        tail = self._tail[start:].decode("utf-8", "surrogatepass")
        dropped = self.size - len(self._head) - (len(self._tail) - start)
        if not dropped:
            return head + tail, False
        return f"{head}\n[... {dropped} bytes of output omitted ...]\n{tail}", True
