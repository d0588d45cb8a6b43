"""KeepAlive: one task pings a Client's silent sessions and checks kernels of busy ones.

The sessions here are stand-ins with the narrow surface ``KeepAliveHost`` names (a
WebSocket that counts pings, a link whose kernel may be gone); visits are driven with
explicit times, so nothing depends on the machine's speed. Real sessions on real servers
are pinged and checked in the integration suite (``test_recovery``).
"""

from __future__ import annotations

import gc
import weakref
from typing import Any, cast

import anyio
import pytest

from jupyter_interp.errors import JupyterInterpError, KernelNotFound, KernelUnavailable
from jupyter_interp.session.keepalive import KeepAlive, KeepAliveHost

pytestmark = pytest.mark.anyio

INTERVAL = 30.0


class _Socket:
    def __init__(self) -> None:
        self.activity = 0
        self.sending = False
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1


class _Connection:
    in_flight = 0


class _Link:
    def __init__(self, gone: bool) -> None:
        self.gone = gone
        self.asked = anyio.Event()

    async def model(self) -> dict[str, Any]:
        self.asked.set()
        if self.gone:
            raise KernelNotFound("404: no such kernel")
        return {}


class _Host:
    def __init__(self, *, gone: bool = False) -> None:
        self.kernel_id = "k"
        self._ws: Any = _Socket()
        self._ready = anyio.Event()
        self._ready.set()
        self._stopped = anyio.Event()
        self._conn = _Connection()
        self._link = _Link(gone)
        self.given_up: list[JupyterInterpError] = []

    async def _give_up(self, error: JupyterInterpError) -> None:
        self.given_up.append(error)


def _add(keep_alive: KeepAlive, *hosts: _Host) -> None:
    for host in hosts:
        keep_alive.add(cast(KeepAliveHost, host))


async def _visit(keep_alive: KeepAlive, intervals: float) -> None:
    """Run the visits due ``intervals`` intervals from now."""
    await keep_alive._visit_due(anyio.current_time() + intervals * INTERVAL + 0.001)


async def test_a_silent_session_is_pinged_every_interval_and_not_before() -> None:
    keep_alive, host = KeepAlive(INTERVAL), _Host()
    _add(keep_alive, host)
    await _visit(keep_alive, 0.5)
    assert host._ws.pings == 0
    await _visit(keep_alive, 1)
    assert host._ws.pings == 1
    await _visit(keep_alive, 2)  # the pong that answered it is not the server talking
    assert host._ws.pings == 2


async def test_a_session_the_server_talks_on_is_not_pinged() -> None:
    keep_alive, talking, sending = KeepAlive(INTERVAL), _Host(), _Host()
    _add(keep_alive, talking, sending)
    for visit in range(1, 4):
        talking._ws.activity += 1
        sending._ws.sending = True
        await _visit(keep_alive, visit)
    assert talking._ws.pings == sending._ws.pings == 0
    await _visit(keep_alive, 4)  # silent since the last visit: pinged
    assert talking._ws.pings == 1


async def test_a_session_not_yet_ready_or_between_sockets_is_not_pinged() -> None:
    keep_alive, connecting, dropped = KeepAlive(INTERVAL), _Host(), _Host()
    connecting._ready = anyio.Event()
    _add(keep_alive, connecting, dropped)
    socket, dropped._ws = dropped._ws, None
    await _visit(keep_alive, 1)
    assert connecting._ws.pings == socket.pings == 0


async def test_a_discarded_session_is_not_visited_and_a_dropped_one_is_not_kept() -> None:
    keep_alive, kept, discarded = KeepAlive(INTERVAL), _Host(), _Host()
    _add(keep_alive, kept, discarded)
    keep_alive.discard(cast(KeepAliveHost, discarded))
    dropped = _Host()
    _add(keep_alive, dropped)
    freed = weakref.ref(dropped)
    gc.disable()  # freed by its reference count, not by a collection
    try:
        del dropped
        assert freed() is None
    finally:
        gc.enable()
    await _visit(keep_alive, 1)
    assert (kept._ws.pings, discarded._ws.pings) == (1, 0)
    assert len(keep_alive._due) == 1


async def test_a_busy_session_whose_kernel_is_gone_is_given_up_and_one_that_is_not_goes_on() -> (
    None
):
    keep_alive, gone, alive = KeepAlive(INTERVAL), _Host(gone=True), _Host()
    for host in (gone, alive):
        host._conn.in_flight = 1
    _add(keep_alive, gone, alive)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_alive.run)
            await anyio.wait_all_tasks_blocked()
            await _visit(keep_alive, 1)
            await gone._link.asked.wait()
            await alive._link.asked.wait()
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert [type(error) for error in gone.given_up] == [KernelUnavailable]
    assert "kernel k is gone" in str(gone.given_up[0])
    assert alive.given_up == []
