"""A Session's first WebSocket: opened again after an early hang-up, given up at once
when the kernel dies meanwhile.

Strategy: ``open_first`` runs the connect (``_open_with_retries``) beside a watch
(``_watch_opening``) that looks the kernel up over REST every ``_OPENING_CHECK``
seconds. A WebSocket the server hangs up before readiness is opened again, a few times
and only within ``handshake_timeout`` of the first opening (nothing has run yet);
refusals and timeouts are raised at once (a kernel that never answers kernel_info
within ``handshake_timeout``: ``TransportTimeout``). A kernel the server dropped or
reports dead ends the opening with ``KernelDied`` at once (the server would hold the
upgrade for a minute). The channel hands itself in as the narrow ``OpeningHost``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import anyio

from ..errors import ConnectError, ConnectionClosed, KernelDied, TransportTimeout
from ..io.stop_signal import StopSignal

if TYPE_CHECKING:
    from ..config import ClientConfig
    from .kernel_link import KernelLink

__all__ = ["OpeningHost", "open_first"]

logger = logging.getLogger("jupyter_interp.session")

#: how often a session's first WebSocket is opened before a drop fails ``start_session``
_OPEN_ATTEMPTS = 3
#: seconds between checks that the kernel still exists while the first WebSocket opens
_OPENING_CHECK = 2.0


class OpeningHost(Protocol):
    """What the first opening needs of its channel."""

    kernel_id: str
    _config: ClientConfig
    _link: KernelLink

    async def _connect(self, *, patient: bool = False) -> None: ...

    async def _close_ws(self) -> None: ...


async def open_first(host: OpeningHost) -> None:
    """First connect, while ``_watch_opening`` checks the kernel still exists.

    Errors are raised bare (not in an exception group); the watch's ``KernelDied``
    wins over the error the cancelled connect would have raised.
    """
    gone: list[KernelDied] = []
    failure: Exception | None = None
    watch = StopSignal()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_opening, host, tg.cancel_scope, gone, watch)
        try:
            await _open_with_retries(host)
        except Exception as exc:  # re-raised below, outside the task group
            failure = exc
        if not watch.stop():  # a pausing watch ends by itself (see ``io.stop_signal``)
            tg.cancel_scope.cancel()
    if gone:
        raise gone[0] from failure
    if failure is not None:
        raise failure


async def _watch_opening(
    host: OpeningHost, opening: anyio.CancelScope, gone: list[KernelDied], signal: StopSignal
) -> None:
    """Every ``_OPENING_CHECK`` s until ``signal`` stops it, ask the server for the
    kernel; if it dropped the kernel or reports it dead, record ``KernelDied`` and
    cancel ``opening``.

    Why: a kernel that keeps dying at start-up (jupyter_client restarts it on the
    same ports, so one taken port kills it for good) is dropped by the server after
    a few restarts, but Jupyter Server holds our WebSocket upgrade for its
    kernel_info timeout, a minute, before answering 404. Other errors of the check
    are left to the connect.
    """
    why = None
    while why is None:
        if not await signal.pause(_OPENING_CHECK):
            return
        why = await host._link.gone()
    gone.append(
        KernelDied(
            f"kernel {host.kernel_id} died before it answered ({why}); the server's log says why"
        )
    )
    opening.cancel()


async def _open_with_retries(host: OpeningHost) -> None:
    """Connect; a WebSocket the server hangs up before readiness is reopened.

    A quick hang-up (a proxy or server dropping the socket) need not fail the
    start: nothing has run yet, so opening again is safe. Refusals (401, 404...) and
    timeouts are not retried, and the last drop is raised. A new attempt starts
    only within ``handshake_timeout`` of the first: a server that hangs up after a
    long wait (a kernel that never answers) fails the start as soon as it did
    without retries.
    """
    delay = 0.1
    timeout = host._config.handshake_timeout
    retry_until = anyio.current_time() + timeout
    for attempt in range(1, _OPEN_ATTEMPTS + 1):
        try:
            await host._connect()
            return
        except TimeoutError as exc:  # the connect's own deadline raises it untyped
            if isinstance(exc, TransportTimeout):
                raise
            raise TransportTimeout(
                f"kernel {host.kernel_id} did not answer kernel_info within {timeout:g} s "
                "(handshake_timeout)"
            ) from exc
        except (ConnectError, ConnectionClosed) as exc:
            await host._close_ws()
            if attempt == _OPEN_ATTEMPTS or anyio.current_time() + delay > retry_until:
                raise
            logger.warning(
                "kernel %s: opening attempt %d failed, opening again: %s",
                host.kernel_id,
                attempt,
                exc,
            )
        await anyio.sleep(delay)
        delay *= 2
