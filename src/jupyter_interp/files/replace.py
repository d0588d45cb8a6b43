"""Putting a verified upload in place over the Contents API, and finishing a replace
that a crash interrupted: the I/O side of ``protocol.contents_swap``.

Strategy: ``Swapper`` runs the three renames ``contents_swap`` describes with the
callables ``ContentsTransfer`` gives it (rename, delete, list a directory), so it holds
no transport of its own. ``recover`` runs before every upload and whenever a download
or stat finds its target missing: it lists the target's directory once and carries out
``contents_swap.recovery``.

Invariants: a file moved aside is never emptied or rewritten, only renamed or deleted
(it may be a symlink, and writing to it would write wherever it points). When the swap
fails after the old file was moved aside, the old file is renamed back (shielded,
bounded); if even that fails it stays under its ``.old`` name, and the next upload,
download or stat of the target puts it back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import anyio

from ..errors import FileTransferError, JupyterInterpError
from ..protocol import contents_swap

__all__ = ["Swapper"]

_CLEANUP_TIMEOUT = 30.0
_log = logging.getLogger(__name__)


def _beside(target: str, name: str) -> str:
    parent = target.rpartition("/")[0]
    return f"{parent}/{name}" if parent else name


class Swapper:
    """Replaces and recovers files in one Contents API.

    Args:
        rename: ``rename(path, new_path)``: False when ``new_path`` exists.
        remove: ``remove(path)``: delete, shielded and bounded, errors only logged.
        names: ``names(directory)``: the names listed in it, None if it is missing.
    """

    def __init__(
        self,
        rename: Callable[[str, str], Awaitable[bool]],
        remove: Callable[[str], Awaitable[None]],
        names: Callable[[str], Awaitable[list[str] | None]],
    ) -> None:
        self._rename = rename
        self._remove = remove
        self._names = names

    async def replace(self, temp: str, target: str, transfer_id: str) -> None:
        """Rename ``temp`` onto ``target``, moving an existing target aside first."""
        if await self._rename(temp, target):
            return
        old = _beside(target, contents_swap.aside_name(target.rpartition("/")[2], transfer_id))
        if not await self._rename(target, old):
            raise FileTransferError(f"cannot move {target!r} aside: {old!r} exists")
        try:
            if not await self._rename(temp, target):
                raise FileTransferError(f"{target!r} was created again during the upload")
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                restored = False
                with contextlib.suppress(JupyterInterpError):
                    restored = await self._rename(old, target)
            if not restored:
                _log.error("upload to %r failed; the previous file is kept as %r", target, old)
            raise
        await self._remove(old)

    async def recover(self, target: str) -> bool:
        """Finish what crashed replaces of ``target`` left behind.

        Returns:
            True when a missing ``target`` was put back from its ``.old`` file.
        """
        parent, _, name = target.rpartition("/")
        listed = await self._names(parent)
        if listed is None:
            return False
        plan = contents_swap.recovery(name, name in listed, listed)
        restored = False
        remove = list(plan.remove)
        if plan.restore is not None:
            old = _beside(target, plan.restore)
            restored = await self._rename(old, target)
            if restored:
                _log.warning("put back %r from %r, left by an interrupted upload", target, old)
            else:  # the target appeared meanwhile: the old file is superfluous
                remove.append(plan.restore)
        for leftover in remove:
            await self._remove(_beside(target, leftover))
        return restored
