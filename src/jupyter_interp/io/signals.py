"""Operating-system signals turned into cancellation.

Strategy: a task waits for the first of the given signals and cancels a scope, so the
code in that scope unwinds through its clean-up (kernels shut down, a private server
stopped) instead of the process ending where it stands, as Python's default SIGTERM
ends it. anyio installs and removes the handlers (the main thread only).
"""

from __future__ import annotations

from signal import Signals

import anyio

__all__ = ["cancel_on_signals"]


async def cancel_on_signals(scope: anyio.CancelScope, *signals: Signals) -> None:
    """Cancel ``scope`` when the process first receives one of ``signals``; run it as a
    task inside ``scope`` and cancel it when the work ends."""
    with anyio.open_signal_receiver(*signals) as received:
        async for _ in received:
            scope.cancel()
            return
