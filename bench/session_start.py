"""Target 2: session start, cold and from a warm ``KernelPool``.

Method: one private Jupyter Server; per round, interleaved with rotating order, each
contender starts one kernel session and the time until it is usable is recorded:

* ``raw``: the floor through a server: POST ``api/kernels``, open the kernel WebSocket,
  one ``kernel_info`` round trip, over a kept-alive HTTP client (``peers.RawStarter``);
* ``jupyter_interp``: ``Client.start_session`` (the same steps plus the Session's
  reader task, keep-alive and bookkeeping);
* ``pool``: ``KernelPool.start_session`` with one warm kernel per kernelspec (includes
  its liveness probe, ``GET api/kernels/<id>``).

Shutting the kernel down, and waiting for the pool to refill, happen after the timed
part of each call. Targets: ``jupyter_interp`` median <= 1.05x ``raw``; ``pool``
median <= 20 ms.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from jupyter_interp.client import Client
from jupyter_interp.pool import KernelPool
from jupyter_interp.session import Session

from ._harness import Options, Report, interleave, jupyter_server, parse_options
from .peers import RawKernel, raw_starter

KERNEL = "python3"
COLD_RATIO = 1.05
POOL_MEDIAN = 0.020


async def _run(options: Options) -> None:
    report = Report("session_start", smoke=options.smoke)
    rounds, warmup = (1, 0) if options.smoke else (40, 2)
    async with (
        jupyter_server() as server,
        raw_starter(server.url, server.token) as raw,
        Client(server.url, token=server.token) as client,
        KernelPool(client, {KERNEL: 1}) as pool,
    ):
        with anyio.fail_after(120):
            await pool.wait_ready()

        async def stop_raw(kernel: RawKernel) -> None:
            await raw.stop(kernel)

        async def stop_session(session: Session) -> None:
            await session.shutdown()

        async def stop_pooled(session: Session) -> None:
            await session.shutdown()
            with anyio.fail_after(120):
                await pool.wait_ready()

        contenders: dict[str, Any] = {
            "raw": lambda: raw.start(KERNEL),
            "jupyter_interp": lambda: client.start_session(KERNEL),
            "pool": lambda: pool.start_session(KERNEL),
        }
        after: dict[str, Any] = {
            "raw": stop_raw,
            "jupyter_interp": stop_session,
            "pool": stop_pooled,
        }
        samples = await interleave(contenders, rounds=rounds, warmup=warmup, after=after)
    medians = {name: report.timing(name, values).median for name, values in samples.items()}
    ratio = medians["jupyter_interp"] / medians["raw"]
    report.figure("ratio_vs_raw", ratio, "x")
    report.target(
        f"2 cold start_session median <= {COLD_RATIO}x raw POST+WebSocket+kernel_info",
        ratio <= COLD_RATIO,
        f"{ratio:.3f}x ({medians['jupyter_interp'] * 1e3:.1f} ms vs {medians['raw'] * 1e3:.1f} ms)",
    )
    report.target(
        f"2 pooled start_session median <= {POOL_MEDIAN * 1e3:.0f} ms",
        medians["pool"] <= POOL_MEDIAN,
        f"{medians['pool'] * 1e3:.2f} ms",
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_run, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
