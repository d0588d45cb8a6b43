"""The rich outputs an MCP connection keeps for ``resources/read``.

Strategy: an insertion-ordered map from a URI under ``OUTPUT_URI_PREFIX`` (a counter
and the type's file suffix) to the output's MIME type and bytes. Imports nothing of the
MCP SDK, so a connection's sessions can be made while the SDK still loads.

Invariant: at most ``capacity`` outputs, the oldest evicted first.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["OUTPUT_URI_PREFIX", "OutputStore"]

OUTPUT_URI_PREFIX = "jupyter-interp://outputs/"
_SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}


class OutputStore:
    """Rich outputs kept for ``resources/read``, by URI, at most ``capacity`` of them."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._counter = 0

    def add(self, mime: str, data: bytes) -> str:
        self._counter += 1
        uri = f"{OUTPUT_URI_PREFIX}{self._counter}{_SUFFIXES.get(mime, '')}"
        self._items[uri] = (mime, data)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return uri

    def get(self, uri: str) -> tuple[str, bytes] | None:
        return self._items.get(uri)

    def items(self) -> list[tuple[str, str, int]]:
        """``(uri, mime, size)`` of every kept output, oldest first."""
        return [(uri, mime, len(data)) for uri, (mime, data) in self._items.items()]
