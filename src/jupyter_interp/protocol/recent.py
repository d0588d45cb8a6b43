"""``Recent``: a bounded, insertion-ordered map of message ids, the connection's memory
of what it has seen (for de-duplicating replays) and of executions it retired.

Strategy: a dict for lookups beside a deque for the order, so forgetting the oldest
entry past ``limit`` is O(1).
"""

from __future__ import annotations

from collections import deque

__all__ = ["Recent"]


class Recent:
    """An insertion-ordered map that forgets its oldest entries past ``limit``.

    The order lives in a deque, so forgetting the oldest entry is O(1) (finding the
    first key of a plain dict scans past the holes its earlier deletions left).
    """

    __slots__ = ("_items", "_limit", "_order")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: dict[str, int] = {}
        self._order: deque[str] = deque()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> int | None:
        return self._items.get(key)

    def add(self, key: str, value: int = 0) -> None:
        items = self._items
        if key not in items:
            self._order.append(key)
            if len(self._order) > self._limit:
                del items[self._order.popleft()]
        items[key] = value  # a known key keeps its place in the order
