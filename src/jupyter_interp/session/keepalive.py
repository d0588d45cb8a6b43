"""A Session's keep-alive: pings, and while code runs, a check that the kernel exists.

Strategy: one task per Session (started by the channel when ``ping_interval`` is set)
pings the WebSocket every interval once it is ready, leaving a dead socket to the
reader to notice; while executions are in flight it also asks the server for the
kernel, and gives the session up (``KernelUnavailable``) when the server no longer
knows it. The channel hands itself in as the narrow ``KeepAliveHost``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Protocol

import anyio

from ..errors import JupyterInterpError, KernelNotFound, KernelUnavailable
from ..io.stop_signal import StopSignal

if TYPE_CHECKING:
    from ..io.websocket import WebSocket
    from ..protocol.connection import KernelConnection
    from .kernel_link import KernelLink

__all__ = ["KeepAliveHost", "keep_alive"]


class KeepAliveHost(Protocol):
    """What the keep-alive needs of its channel."""

    kernel_id: str
    _ws: WebSocket | None
    _ready: anyio.Event
    _stopped: anyio.Event
    _conn: KernelConnection
    _link: KernelLink

    async def _give_up(self, error: JupyterInterpError) -> None: ...


async def keep_alive(host: KeepAliveHost, interval: float, signal: StopSignal) -> None:
    """Ping every ``interval``; while code runs, also check the kernel still exists.
    Returns when ``signal`` asks it to.

    Jupyter Server keeps our WebSocket open and silent when the kernel is deleted or
    culled elsewhere, so without this an execution with no deadline would wait
    forever.
    """
    while await signal.pause(interval):
        ws = host._ws
        if ws is not None and host._ready.is_set():
            with contextlib.suppress(JupyterInterpError):
                await ws.ping()  # a dead socket is the reader's to notice
        if host._conn.in_flight and not host._stopped.is_set():
            try:
                await host._link.model()
            except KernelNotFound as exc:
                await host._give_up(KernelUnavailable(f"kernel {host.kernel_id} is gone: {exc}"))
                return
            except JupyterInterpError:
                pass  # unreachable server: the reader's reconnect decides
