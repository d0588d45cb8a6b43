"""Target 5: 100 concurrent sessions on one Client in one process.

Method: a private Jupyter Server; one ``Client`` starts ``SESSIONS`` kernel sessions
(at most 8 starts at a time). Two kinds of phase, on the same sessions, alternate
single / concurrent / single:

* **single**: one session executes ``pass`` back to back while the others stay
  connected and idle: the single-session latency;
* **concurrent**: every session executes ``pass`` in a loop with a think time, each
  starting one execution per ``PERIOD`` seconds at its own phase offset, for
  ``DURATION`` seconds: ``SESSIONS / PERIOD`` executions per second offered in total.

A think time is needed for the target to mean anything: with none, 100 sessions keep
the server and 100 kernels saturated on 2 cores and latency is set by throughput
(Little's law), whatever the client does; that closed-loop figure is printed too, for
information. CPU per execute is the client process's CPU time (``time.process_time``:
this process is only the client; server and kernels are other processes) over the
concurrent phase divided by the executions in it. Target: concurrent p50 <= 2x the
single-session p50.
"""

from __future__ import annotations

import random
import sys
import time

import anyio

from jupyter_interp.client import Client
from jupyter_interp.session import Session

from ._harness import Options, Report, jupyter_server, parse_options, stats

SESSIONS = 100
PERIOD = 4.0
DURATION = 40.0
SINGLE_ROUNDS = 200
START_CONCURRENCY = 8
TARGET_RATIO = 2.0


async def _execute(session: Session, samples: list[float]) -> None:
    started = time.perf_counter()
    result = await session.execute("pass")
    samples.append(time.perf_counter() - started)
    if not result.ok:
        raise RuntimeError(f"execution failed: {result.describe()}")


async def _single(session: Session, rounds: int) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        await _execute(session, samples)
    return samples


async def _paced(
    session: Session, offset: float, period: float, until: float, out: list[float]
) -> None:
    await anyio.sleep(offset)
    while (now := anyio.current_time()) < until:
        await _execute(session, out)
        await anyio.sleep(max(0.0, period - (anyio.current_time() - now)))


async def _concurrent(
    sessions: list[Session], period: float, duration: float
) -> tuple[list[float], float, float]:
    """Latencies, client CPU seconds and wall seconds of one paced phase."""
    samples: list[float] = []
    phases = random.Random(6).sample(range(1000), len(sessions))
    cpu, wall = time.process_time(), time.perf_counter()
    until = anyio.current_time() + duration
    async with anyio.create_task_group() as tg:
        for session, phase in zip(sessions, phases, strict=True):
            tg.start_soon(_paced, session, period * phase / 1000, period, until, samples)
    return samples, time.process_time() - cpu, time.perf_counter() - wall


async def _start_all(client: Client, count: int) -> list[Session]:
    sessions: list[Session] = []
    limiter = anyio.CapacityLimiter(START_CONCURRENCY)

    async def start() -> None:
        async with limiter:
            sessions.append(await client.start_session())

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(start)
    return sessions


async def _shutdown_all(sessions: list[Session]) -> None:
    limiter = anyio.CapacityLimiter(START_CONCURRENCY)

    async def stop(session: Session) -> None:
        async with limiter:
            await session.shutdown()

    with anyio.CancelScope(shield=True):
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(stop, session)


async def _run(options: Options) -> None:
    report = Report("scale", smoke=options.smoke)
    if options.smoke:
        count, period, duration, rounds = 3, 0.5, 2.0, 5
    else:
        count, period, duration, rounds = SESSIONS, PERIOD, DURATION, SINGLE_ROUNDS
    async with jupyter_server() as server, Client(server.url, token=server.token) as client:
        started = time.perf_counter()
        sessions = await _start_all(client, count)
        try:
            report.figure("sessions", count, "")
            report.figure("start_all.seconds", time.perf_counter() - started, "s")
            for session in sessions:  # every kernel warm before anything is timed
                await session.execute("pass")
            single = await _single(sessions[0], rounds)
            paced, cpu, wall = await _concurrent(sessions, period, duration)
            single += await _single(sessions[0], rounds)
            closed, closed_cpu, closed_wall = await _concurrent(sessions, 0.0, duration / 4)
        finally:
            await _shutdown_all(sessions)
    one = report.timing("single", single)
    many = report.timing(f"concurrent_{count}x_every_{period:g}s", paced)
    report.figure("concurrent.executions_per_second", len(paced) / wall, "1/s")
    report.figure("concurrent.client_cpu_per_execute", cpu / len(paced) * 1e3, "ms")
    report.figure("concurrent.client_cpu_share", cpu / wall * 100, "%")
    closed_stats = stats(closed)
    report.figure("closed_loop.median", closed_stats.median * 1e3, "ms", "no think time")
    report.figure("closed_loop.executions_per_second", len(closed) / closed_wall, "1/s")
    report.figure("closed_loop.client_cpu_per_execute", closed_cpu / len(closed) * 1e3, "ms")
    ratio = many.median / one.median
    report.figure("ratio_vs_single", ratio, "x")
    report.target(
        f"5 {count} concurrent sessions p50 <= {TARGET_RATIO}x single-session p50",
        ratio <= TARGET_RATIO,
        f"{ratio:.2f}x ({many.median * 1e3:.2f} ms vs {one.median * 1e3:.2f} ms); "
        f"client CPU {cpu / len(paced) * 1e3:.2f} ms per execute",
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_run, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
