"""HeadTail: what a capped stream keeps, in both of its buffers, checked against a model.

The model states the budget's meaning on the whole output at once: the first
``cap - cap // 2`` bytes cut back to a character start, the last ``cap // 2`` bytes cut
forward to one, and a marker counting the rest. ``HeadTail`` must give exactly that
however the output arrives, with its bytes in a ``bytearray`` (small caps) or in a
memory map whose pages ``take`` gives back while it decodes.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_interp.protocol import budget
from jupyter_interp.protocol.budget import HeadTail

CHARACTERS = ["a", "\n", "é", "€", "😀", "\ud800"]  # 1 to 4 UTF-8 bytes, a lone surrogate


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def model(text: str, cap: int | None) -> tuple[str, bool]:
    data = _encode(text)
    if cap is None or len(data) <= cap:
        return text, False
    head = cap - cap // 2
    while head > 0 and data[head] & 0xC0 == 0x80:
        head -= 1
    tail = data[len(data) - cap // 2 :] if cap // 2 else b""
    skip = 0
    while skip < len(tail) and tail[skip] & 0xC0 == 0x80:
        skip += 1
    tail = tail[skip:]
    dropped = len(data) - head - len(tail)
    marker = f"\n[... {dropped} bytes of output omitted ...]\n"
    return _decode(data[:head]) + marker + _decode(tail), True


@contextmanager
def mapped() -> Iterator[None]:
    """Every cap from one byte up uses a memory map, decoded a page and a bit at a time
    (so that ``take`` gives pages back between steps)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(budget, "_MAPPED_FROM", 1)
        patch.setattr(budget, "_DECODE_STEP", mmap.PAGESIZE + 123)
        yield


pieces = st.lists(
    st.builds(lambda char, count: char * count, st.sampled_from(CHARACTERS), st.integers(0, 5000)),
    max_size=12,
)


def check(chunks: list[str], cap: int | None) -> None:
    kept = HeadTail(cap)
    for chunk in chunks:
        kept.append(chunk)
    expected = model("".join(chunks), cap)
    assert kept.render() == expected
    assert kept.render() == expected  # rendering leaves the object as it was
    assert kept.take() == expected
    assert kept.size == len(_encode("".join(chunks)))


@settings(max_examples=150, deadline=None)
@given(chunks=pieces, cap=st.none() | st.integers(min_value=0, max_value=6 * mmap.PAGESIZE))
def test_head_tail_keeps_what_the_model_keeps(chunks: list[str], cap: int | None) -> None:
    check(chunks, cap)


@settings(max_examples=150, deadline=None)
@given(chunks=pieces, cap=st.integers(min_value=1, max_value=6 * mmap.PAGESIZE))
def test_mapped_head_tail_keeps_what_the_model_keeps(chunks: list[str], cap: int) -> None:
    with mapped():
        check(chunks, cap)


@settings(max_examples=150, deadline=None)
@given(
    chunks=pieces,
    cap=st.none() | st.integers(min_value=0, max_value=6 * mmap.PAGESIZE),
    step=st.integers(min_value=1, max_value=600),
)
def test_long_pieces_encoded_in_steps_keep_what_the_model_keeps(
    chunks: list[str], cap: int | None, step: int
) -> None:
    """Steps of a few characters: most pieces are long, so middle steps are skipped."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(budget, "_ENCODE_STEP", step)
        check(chunks, cap)
        with mapped():
            check(chunks, cap or 1)


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(st.text(st.sampled_from(CHARACTERS), max_size=9), max_size=30),
    cap=st.integers(min_value=0, max_value=40),
)
def test_small_pieces_wrap_the_tail_ring(chunks: list[str], cap: int) -> None:
    check(chunks, cap)


MARKER = f"\n[... {7 * mmap.PAGESIZE} bytes of output omitted ...]\n"


def test_take_closes_the_map_and_keeps_only_the_size() -> None:
    with mapped():
        kept = HeadTail(3 * mmap.PAGESIZE)
        kept.append("x" * 10 * mmap.PAGESIZE)
    buffer = kept._buffer
    assert isinstance(buffer, mmap.mmap)
    text, cut = kept.take()
    assert cut
    assert text == "x" * (mmap.PAGESIZE + mmap.PAGESIZE // 2) + MARKER + "x" * (
        mmap.PAGESIZE * 3 // 2
    )
    assert buffer.closed
    assert kept.size == 10 * mmap.PAGESIZE
    assert kept._buffer is None  # nothing is kept twice


def test_budgets_from_the_threshold_up_use_a_map_and_smaller_ones_do_not() -> None:
    small, large = HeadTail(budget._MAPPED_FROM - 1), HeadTail(budget._MAPPED_FROM)
    text = "é" * budget._PIECES_UP_TO  # twice as many bytes: past the pieces
    for kept in (small, large):
        kept.append(text)
    assert isinstance(small._buffer, bytearray)
    assert isinstance(large._buffer, mmap.mmap)
    assert small.take() == large.take() == (text, False)


@pytest.mark.parametrize("cap", [0, 1, 10, budget._MAPPED_FROM])
def test_output_within_the_pieces_limit_makes_no_buffer(cap: int) -> None:
    kept = HeadTail(cap)
    text = "x" * min(cap, budget._PIECES_UP_TO)
    for piece in (text[:3], "", text[3:]):
        kept.append(piece)
    assert kept._buffer is None
    assert kept.take() == (text, False)
    past = HeadTail(cap)
    past.append(text)
    past.append("y")
    assert past._buffer is not None  # past the limit: a buffer of the cap's size
    assert past.size == len(text) + 1


def test_a_long_text_is_encoded_a_step_at_a_time_and_only_where_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ASCII is counted without encoding; other text is counted a step at a time."""
    encoded: list[str] = []

    def encode(text: str) -> bytes:
        encoded.append(text)
        return _encode(text)

    monkeypatch.setattr(budget, "_encode", encode)
    kept = HeadTail(10_000)
    text = "x" * 100_000 + "é" * 100_000
    kept.append(text)
    assert max(map(len, encoded)) <= budget._ENCODE_STEP
    assert sum(set(step) == {"x"} for step in encoded) == 1  # the one that fills the head
    assert kept.size == 300_000
    assert kept.take() == model(text, 10_000)
