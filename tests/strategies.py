"""Hypothesis strategies for Jupyter headers, messages and WebSocket frames.

Shared by the protocol test modules. Everything generated is strict JSON that
survives a round trip unchanged: text without lone surrogates, finite floats, and
header ``extra`` keys that never shadow a standard header field.
"""

from __future__ import annotations

from hypothesis import strategies as st

from jupyter_interp.protocol.messages import CHANNELS, Header, Message
from jupyter_interp.protocol.wire import Codec

__all__ = [
    "HEADER_FIELDS",
    "channels",
    "encoded_frames",
    "headers",
    "json_objects",
    "json_values",
    "messages",
    "mutated_frames",
    "texts",
]

HEADER_FIELDS = frozenset({"msg_id", "msg_type", "session", "username", "date", "version"})

texts = st.text(st.characters(codec="utf-8"), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(texts, json_values, max_size=4)
channels = st.sampled_from(sorted(CHANNELS))

headers = st.builds(
    Header,
    msg_id=texts,
    msg_type=texts,
    session=texts,
    username=texts,
    date=texts,
    version=texts,
    extra=st.dictionaries(
        texts.filter(lambda key: key not in HEADER_FIELDS), json_values, max_size=3
    ),
)


def messages(*, min_buffers: int = 0, max_buffers: int = 3) -> st.SearchStrategy[Message]:
    """Messages on any channel with JSON-safe parts and ``min_buffers..max_buffers`` buffers."""
    return st.builds(
        Message,
        channel=channels,
        header=headers,
        parent_header=json_objects,
        metadata=json_objects,
        content=json_objects,
        buffers=st.lists(st.binary(max_size=32), min_size=min_buffers, max_size=max_buffers),
    )


def encoded_frames(codec: Codec, *, max_buffers: int = 3) -> st.SearchStrategy[str | bytes]:
    """Frames ``codec`` produced from generated messages."""
    return messages(max_buffers=max_buffers).map(codec.encode)


def _mutate(frame: str | bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    data = bytearray(frame.encode("utf-8") if isinstance(frame, str) else frame)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data[:cut] if cut is not None else data)


def mutated_frames(codec: Codec) -> st.SearchStrategy[bytes]:
    """Valid frames with a few bytes overwritten and possibly truncated: fuzz input that
    gets past the first length checks, unlike uniformly random bytes."""
    return st.builds(
        _mutate,
        encoded_frames(codec),
        st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
        st.none() | st.integers(min_value=0, max_value=400),
    )
