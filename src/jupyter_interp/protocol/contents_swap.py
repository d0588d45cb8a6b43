"""Replacing a file through the Contents API: the names of its steps, and the plan that
finishes what a crashed replace left behind.

What the server allows (jupyter_server 2.21, read from its source): a ``PATCH`` rename
refuses an existing target (409), unless both names are already the same file; a
``PUT`` of a whole file rewrites the target in place (it copies the old bytes to a
hidden ``.~<name>`` first, and only puts them back if the write fails inside the
server); checkpoints are restored by copying in place. No request swaps a new file onto
an existing name in one step, so a replace is three renames of whole files, each one
atomic (``os.rename`` on the server):

1. the verified upload ``temp_name`` -> the target: done if the target did not exist;
2. else the target -> ``aside_name`` (the target name is absent from here ...)
3. ``temp_name`` -> the target (... to here), then ``aside_name`` is deleted.

A crash (the client killed, the network gone) between two steps leaves the old file as
``aside_name`` (between 2 and 3) or a stray ``aside_name`` beside the new file (after
3). Both names are derived from the target's name: ``<name[:32]>.<tag>-<id>.old`` and
``.part``, where ``tag`` is 8 hex digits of the sha256 of the whole name and ``id`` the
transfer's 32 hex digits, so ``recovery`` finds exactly the leftovers of one target in
a listing of its directory.

Invariants of ``recovery``: it never deletes the only copy of a file. A missing target
gets one ``.old`` renamed back (the crashed replace is undone); every other ``.old`` of
the target is then superfluous and removed, with the ``.part`` of the same transfer (its
swap had begun, so its owner is gone or will fail). A ``.part`` without an ``.old`` may
be an upload in flight and is left alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import attrs

__all__ = ["SwapRecovery", "aside_name", "recovery", "temp_name"]

_LEFTOVER = re.compile(
    r"(?P<stem>.*)\.(?P<tag>[0-9a-f]{8})-(?P<id>[0-9a-f]{32})\.(?P<kind>part|old)"
)


def _prefix(name: str) -> str:
    return f"{name[:32]}.{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def temp_name(name: str, transfer_id: str) -> str:
    """Where the upload of transfer ``transfer_id`` to ``name`` is written and verified."""
    return f"{_prefix(name)}-{transfer_id}.part"


def aside_name(name: str, transfer_id: str) -> str:
    """Where that transfer moves an existing ``name`` while it swaps the new file in."""
    return f"{_prefix(name)}-{transfer_id}.old"


@attrs.frozen
class SwapRecovery:
    """What to do in the target's directory: rename ``restore`` (if any) onto the
    target, then delete ``remove`` (names in the same directory)."""

    restore: str | None = None
    remove: tuple[str, ...] = ()


def recovery(name: str, target_exists: bool, listed: Iterable[str]) -> SwapRecovery:
    """The plan for the leftovers of replaces of ``name`` among the ``listed`` names of
    its directory (``target_exists``: whether ``name`` is there)."""
    prefix = _prefix(name)
    olds: dict[str, str] = {}
    parts: dict[str, str] = {}
    for entry in sorted(listed):
        match = _LEFTOVER.fullmatch(entry)
        if match is None or f"{match['stem']}.{match['tag']}" != prefix:
            continue
        (olds if match["kind"] == "old" else parts)[match["id"]] = entry
    if not olds:
        return SwapRecovery()
    restore = None if target_exists else olds[next(iter(olds))]
    remove = [old for old in olds.values() if old != restore]
    remove += [parts[transfer] for transfer in olds if transfer in parts]
    return SwapRecovery(restore=restore, remove=tuple(remove))
