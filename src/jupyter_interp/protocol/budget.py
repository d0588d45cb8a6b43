"""Output budgets: how much of one execution's streams the client keeps.

Strategy: a stream is kept whole up to a byte cap; past it, only a head and a tail
(about half the cap each) are kept around a one-line marker, so an agent sees how the
output began and how it ended while client memory stays proportional to the cap,
not to the output.

Invariants: sizes are counted in UTF-8 bytes; cuts fall on character boundaries; the
original size is always known, so a result can say how much was dropped.
"""

from __future__ import annotations

import codecs
import mmap
from collections.abc import Iterable, Iterator

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


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _steps(text: str) -> Iterator[str]:
    """``text`` in slices of ``_ENCODE_STEP`` characters."""
    step = _ENCODE_STEP
    return (text[start : start + step] for start in range(0, len(text), step))


def _utf8_size(text: str) -> int:
    """UTF-8 size of ``text``, encoding at most ``_ENCODE_STEP`` characters at a time."""
    if text.isascii():
        return len(text)
    if len(text) <= _ENCODE_STEP:
        return len(_encode(text))
    return sum(len(_encode(piece)) for piece in _steps(text))


#: Text goes into the buffer encoded this many characters at a time, so no encoded
#: copy of a long text exists whole; a step that later bytes of the same text
#: overwrite in the tail anyway is only counted, never encoded.
_ENCODE_STEP = 16 * 1024
#: Kept bytes are decoded this many at a time when the result is built, so a decoded
#: copy of what is kept never exists whole beside it.
_DECODE_STEP = 64 * 1024
#: Budgets from this size up keep their bytes in an anonymous memory map: its pages
#: cost memory only once written, and ``take`` gives them back as it goes.
_MAPPED_FROM = 64 * 1024
#: With a cap, text stays in the ``str`` pieces it came in until it passes this many
#: bytes (or the cap): most executions print less and never make a buffer.
_PIECES_UP_TO = 4096
_RELEASE = getattr(mmap, "MADV_DONTNEED", None) if hasattr(mmap.mmap, "madvise") else None


class HeadTail:
    """Stream text kept whole up to a byte cap, then as a head and a tail around a gap.

    Without a cap the text is kept as the ``str`` pieces it arrived in; with one too,
    until it passes ``_PIECES_UP_TO`` bytes or the cap. From then on it is kept UTF-8
    encoded in one buffer of exactly ``cap`` bytes, written in place: bytes
    fill it in order until it is full; from then on the buffer's first ``cap - cap // 2``
    bytes are the head (cut back to a character start) and the rest is the tail, a ring
    that new bytes overwrite oldest first (its first bytes up to the next character
    start are dropped). So what is kept never moves and never needs converting, however
    many pieces arrive. A long text is encoded a step at a time, and a step whose bytes
    the rest of the same text pushes out of the tail is only counted, never encoded.
    ``take`` builds the result by growing one string in place a
    decoded step at a time and, where the buffer is a memory map, returns each step's
    whole pages to the system right away, so the result costs about one step more than
    what was kept, not twice it.
    """

    def __init__(self, cap: int | None) -> None:
        self._cap = cap
        self._pieces: list[str] = []  # until there is a buffer: everything, as it came
        self._buffer: bytearray | mmap.mmap | None = None  # with a cap: once past the pieces
        self._filled = 0  # bytes written in order, up to the cap
        self._head_cap = 0 if cap is None else cap - cap // 2
        self._head_end: int | None = None  # where the head stops, once the cap was passed
        self._ring_next = self._head_cap  # the tail's next (and oldest) byte, once full
        self.size = 0

    def append(self, text: str) -> None:
        if not text:
            return
        cap = self._cap
        buffer = self._buffer
        if buffer is None:
            # a text of more characters than the pieces take has more bytes, too
            size = _utf8_size(text) if cap is None or len(text) <= _PIECES_UP_TO else -1
            if cap is None or 0 <= size <= min(cap, _PIECES_UP_TO) - self.size:
                self._pieces.append(text)
                self.size += size
                return
            buffer = self._buffer = mmap.mmap(-1, cap) if cap >= _MAPPED_FROM else bytearray(cap)
            pieces, self._pieces = self._pieces, []
            for piece in pieces:  # at most min(cap, _PIECES_UP_TO) bytes: they fit
                self._write(buffer, _encode(piece))
        if len(text) <= _ENCODE_STEP:  # the usual piece
            data = _encode(text)
            self.size += len(data)
            self._write(buffer, data)
            return
        tail_cap, left = len(buffer) - self._head_cap, len(text)
        for piece in _steps(text):
            left -= len(piece)
            if self._head_end is not None and left >= tail_cap:  # at least as many bytes
                self.size += _utf8_size(piece)  # follow: none of this one would be kept
                continue
            data = _encode(piece)
            self.size += len(data)
            self._write(buffer, data)

    def _write(self, buffer: bytearray | mmap.mmap, data: bytes) -> None:
        """Write ``data`` after what the buffer holds (into the tail's ring once full)."""
        with memoryview(data) as view:
            filled, cap = self._filled, len(buffer)
            if filled < cap:
                count = min(len(view), cap - filled)
                buffer[filled : filled + count] = view[:count]
                self._filled = filled + count
                if count == len(view):
                    return
            self._overflow(buffer, view[cap - filled :])

    def _overflow(self, buffer: bytearray | mmap.mmap, view: memoryview) -> None:
        """Write bytes past a full buffer into the tail's ring."""
        cap, head_cap = len(buffer), self._head_cap
        if self._head_end is None:  # the first byte past the head decides where it stops
            after = buffer[head_cap] if head_cap < cap else view[0]
            head_end = head_cap
            while head_end > 0 and after & 0xC0 == 0x80:
                head_end -= 1
                after = buffer[head_end]
            self._head_end = head_end
        tail_cap = cap - head_cap
        if len(view) >= tail_cap:  # everything before its last bytes falls out of the tail
            buffer[head_cap:cap] = view[len(view) - tail_cap :]
            self._ring_next = head_cap
            return
        position = self._ring_next
        first = min(len(view), cap - position)
        buffer[position : position + first] = view[:first]
        rest = len(view) - first
        buffer[head_cap : head_cap + rest] = view[first:]
        self._ring_next = position + first if rest == 0 else head_cap + rest
        if self._ring_next == cap:
            self._ring_next = head_cap

    def _spans(self, buffer: bytearray | mmap.mmap) -> tuple[list[tuple[int, int]], int]:
        """The kept byte ranges of the buffer in order (head, then the tail's two parts)
        and how many bytes they hold."""
        head_end = self._head_end
        if head_end is None:
            return [(0, self._filled)], self._filled
        cap, head_cap = self._filled, self._head_cap
        start = self._ring_next
        tail = [(start, cap), (head_cap, start)] if start > head_cap else [(head_cap, cap)]
        skip = 0  # a character cut off at the tail's start
        for first, stop in tail:
            while first < stop and buffer[first] & 0xC0 == 0x80:
                first += 1
                skip += 1
            if first < stop:
                break
        spans = [(0, head_end)]
        for first, stop in tail:
            lost = min(skip, stop - first)
            skip -= lost
            spans.append((first + lost, stop))
        return spans, sum(stop - first for first, stop in spans)

    def _texts(self, buffer: bytearray | mmap.mmap, release: bool) -> Iterator[str]:
        """The kept text, decoded ``_DECODE_STEP`` bytes at a time, marker in place."""
        spans, kept = self._spans(buffer)
        marker = self._marker(kept)
        decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        mapped = buffer if release and isinstance(buffer, mmap.mmap) else None
        with memoryview(buffer) as view:
            for index, (first, stop) in enumerate(spans):
                if index == 1 and marker is not None:
                    yield decoder.decode(b"", final=True)
                    yield marker
                for step in range(first, stop, _DECODE_STEP):
                    end = min(step + _DECODE_STEP, stop)
                    yield decoder.decode(view[step:end])
                    if mapped is not None and _RELEASE is not None:
                        _release(mapped, _RELEASE, step, end)
        yield decoder.decode(b"", final=True)

    def render(self) -> tuple[str, bool]:
        """The kept text (with a marker where the middle was cut) and whether it was cut."""
        buffer = self._buffer
        if buffer is None:
            return "".join(self._pieces), False
        return "".join(self._texts(buffer, release=False)), self._head_end is not None

    def take(self) -> tuple[str, bool]:
        """``render``, emptying this object while the text is built.

        The result is grown in place (CPython grows a string it alone references) from
        pieces released as soon as they are appended, so memory stays near what is
        kept instead of twice it. Call it once, last: afterwards only ``size`` is
        meaningful.
        """
        buffer = self._buffer
        if buffer is None:
            pieces, self._pieces = self._pieces, []
            if len(pieces) == 1:  # the usual short output: nothing to join
                return pieces.pop(), False
            pieces.reverse()
            return _append_all(_drain(pieces)), False
        cut = self._head_end is not None
        text = _append_all(self._texts(buffer, release=True))
        self._buffer = None
        if isinstance(buffer, mmap.mmap):
            buffer.close()
        return text, cut

    def _marker(self, kept: int) -> str | None:
        dropped = self.size - kept
        return f"\n[... {dropped} bytes of output omitted ...]\n" if dropped else None


def _release(mapped: mmap.mmap, advice: int, first: int, stop: int) -> None:
    """Give back the pages that lie wholly inside the decoded range ``first:stop``."""
    page = mmap.PAGESIZE
    start, end = -(-first // page) * page, stop // page * page
    if end > start:
        mapped.madvise(advice, start, end - start)


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
