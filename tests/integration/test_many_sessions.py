"""A Client with many sessions closes them all, a bounded number at a time.

Unbounded, a Client holding 1,000 sessions sent 1,000 DELETEs at once on exit; they
queued in httpx's pool and the tail outlived the exit's 30 s bound, leaking kernels
(``bench/sim_scale.py``). The simulated server (``bench.sim_server``, in this event
loop) takes ``latency`` seconds per kernel delete and records the most deletes it had
in flight at once: that peak must not exceed ``CLOSE_CONCURRENCY``, and every kernel
must be gone.
"""

from __future__ import annotations

import anyio
import pytest
from bench.sim_server import SimServer, serving

from jupyter_interp.client import CLOSE_CONCURRENCY, Client

pytestmark = pytest.mark.anyio

SESSIONS = 3 * CLOSE_CONCURRENCY


async def test_exit_closes_sessions_a_bounded_number_at_a_time() -> None:
    sim = SimServer(token="many", latency=0.05)
    async with serving(sim) as url:
        async with Client(url, token="many") as client, anyio.create_task_group() as tg:
            for _ in range(SESSIONS):
                tg.start_soon(client.start_session)
        assert not sim.kernels
        assert 1 < sim.peak_deleting <= CLOSE_CONCURRENCY
