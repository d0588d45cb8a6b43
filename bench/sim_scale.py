"""10,000 live sessions in one client process, against the simulated server.

Method: ``bench.sim_server`` runs in a child process (thousands of simulated kernels,
no kernel processes), so this process is only the client. Sessions are opened in
levels (1k, then up to 5k, then up to 10k; ``START_CONCURRENCY`` starts at a time),
either from one ``Client`` (``--via client``) or through the gateway provider
(``--via provider``: ``start_session``/``execute`` of ``JupyterCodeInterpreterProvider``);
run without ``--via``, both run, each in its own process so neither's memory pollutes
the other's. At each level, with every session open and idle:

* **RSS per session**: (VmRSS now - VmRSS before the first session) / sessions, after
  a garbage collection;
* **open fds**: entries of ``/proc/self/fd``;
* **start-up time** of the level's new sessions, and starts per second;
* then a **steady request rate**: ``RATE`` executions per second, each on a session
  drawn at random, for ``DURATION`` seconds (open loop: a slow client does not lower
  the offered load). Latency p50/p99 per execution, and **CPU per execute** = this
  process's CPU time over the phase / executions (idle sessions' own costs, such as
  keep-alive pings, fall into it: that is the point).

The curve "bends" at the first level whose CPU per execute or p99 exceeds 1.5x the
first level's. Targets: the last level's sessions all live in one process; <= 64 KiB
RSS per idle session; CPU per execute within 1.5x from the first level to the last.
The fd limit is raised to the hard limit first (one socket per session).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio

from jupyter_interp.client import Client
from jupyter_interp.config import ClientConfig
from jupyter_interp.errors import JupyterInterpError
from jupyter_interp.provider import JupyterCodeInterpreterProvider

from ._harness import Report
from .sim_server import raise_fd_limit, sim_server

LEVELS = (1000, 5000, 10000)
SMOKE_LEVELS = (10, 30)
RATE = 200.0
DURATION = 15.0
START_CONCURRENCY = 64
OUTPUT_SIZE = 64
CODE = "simulate()"  # not understood by the simulator: prints OUTPUT_SIZE bytes
RSS_TARGET = 64 * 1024
CPU_RATIO_TARGET = 1.5
TOKEN = "sim-scale"
PING_INTERVAL = ClientConfig(base_url="http://127.0.0.1/").ping_interval or math.inf


def _rss() -> int:
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Sessions:
    """Open and use sessions through one path (a Client, or the provider)."""

    def __init__(self, open_one: Callable[[], Awaitable[Callable[[], Awaitable[bool]]]]) -> None:
        self._open_one = open_one
        self.runs: list[Callable[[], Awaitable[bool]]] = []
        #: starts that raised (reported per level; the level goes on without them)
        self.start_failures: list[str] = []

    async def grow(self, count: int) -> None:
        limiter = anyio.CapacityLimiter(START_CONCURRENCY)

        async def start() -> None:
            async with limiter:
                try:
                    self.runs.append(await self._open_one())
                except JupyterInterpError as exc:
                    self.start_failures.append(f"{type(exc).__name__}: {exc}")

        async with anyio.create_task_group() as tg:
            for _ in range(count - len(self.runs)):
                tg.start_soon(start)


def _via_client(client: Client) -> _Sessions:
    async def open_one() -> Callable[[], Awaitable[bool]]:
        session = await client.start_session()

        async def run() -> bool:
            return (await session.execute(CODE)).ok

        return run

    return _Sessions(open_one)


def _via_provider(provider: JupyterCodeInterpreterProvider) -> _Sessions:
    async def open_one() -> Callable[[], Awaitable[bool]]:
        session_id = (await provider.start_session())["session_id"]

        async def run() -> bool:
            return bool((await provider.execute(session_id, CODE))["status"] == "ok")

        return run

    return _Sessions(open_one)


async def _steady(
    sessions: _Sessions, rate: float, duration: float
) -> tuple[list[float], float, int, list[float]]:
    """Latencies, CPU seconds, failures and garbage-collection pauses of one open-loop
    phase at ``rate`` executions per second."""
    samples: list[float] = []
    failures = 0
    pick = random.Random(27)

    async def one(run: Callable[[], Awaitable[bool]]) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            ok = await run()
        except JupyterInterpError:
            ok = False
        samples.append(time.perf_counter() - started)
        failures += not ok

    cpu = time.process_time()
    start = anyio.current_time()
    with _GcPauses() as pauses:
        async with anyio.create_task_group() as tg:
            for index in range(int(rate * duration)):
                await anyio.sleep_until(start + index / rate)
                tg.start_soon(one, pick.choice(sessions.runs))
    return samples, time.process_time() - cpu, failures, pauses.pauses


class _GcPauses:
    """CPU time of each garbage-collector pass while the block runs (``gc.callbacks``;
    thread CPU time, so preemption by other processes on a busy machine is left out)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def _observe(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.pauses.append(time.thread_time() - self._started)

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._observe)


async def _levels(
    report: Report,
    sessions: _Sessions,
    levels: Sequence[int],
    rate: float,
    duration: float,
    cpu_per: dict[int, float],
    p99: dict[int, float],
) -> tuple[int, float]:
    """Open each level's sessions, measure it, fill ``cpu_per`` and ``p99``; returns the
    sessions live and the RSS per session at the last level."""
    baseline, fds = _rss(), _fds()
    start_total = 0.0
    rss_per = 0.0
    for level in levels:
        started, before = time.perf_counter(), len(sessions.runs)
        await sessions.grow(level)
        took = time.perf_counter() - started
        start_total += took
        live = len(sessions.runs)
        rss_per = (_rss() - baseline) / live
        if sessions.start_failures:
            report.figure(f"{level}.start.failures", len(sessions.start_failures), "")
            print(f"# first start failure: {sessions.start_failures[0]}", flush=True)
            sessions.start_failures.clear()
        report.figure(f"{level}.start.seconds", took, "s", f"{level - before} new")
        report.figure(f"{level}.start.per_second", (level - before) / took, "1/s")
        report.figure(f"{level}.start_all.seconds", start_total, "s", f"all {level}")
        report.figure(f"{level}.rss_per_session", rss_per / 1024, "KiB")
        report.figure(f"{level}.open_fds", _fds() - fds, "fds", "over the baseline")
        samples, cpu, failures, pauses = await _steady(sessions, rate, duration)
        summary = report.timing(f"{level}.execute", samples)
        cpu_per[level], p99[level] = cpu / len(samples), summary.p99
        report.figure(f"{level}.cpu_per_execute", cpu_per[level] * 1e3, "ms")
        report.figure(f"{level}.failures", failures, "")
        report.figure(f"{level}.gc.pause_max", max(pauses, default=0.0) * 1e3, "ms")
        report.figure(f"{level}.gc.pause_total", sum(pauses) * 1e3, "ms", f"{len(pauses)} passes")
        report.figure(f"{level}.pings_per_second", level / PING_INTERVAL, "1/s", "keep-alive")
    return len(sessions.runs), rss_per


async def _run(via: str, levels: Sequence[int], rate: float, duration: float, smoke: bool) -> None:
    report = Report(f"sim_scale.{via}", smoke=smoke)
    report.figure("fd_limit", raise_fd_limit(), "fds", "raised to the hard limit")
    cpu_per: dict[int, float] = {}
    p99: dict[int, float] = {}
    async with (
        sim_server(token=TOKEN, output_size=OUTPUT_SIZE) as url,
        Client(url, token=TOKEN) as client,
    ):
        provider = None
        if via == "provider":
            provider = JupyterCodeInterpreterProvider(base_url=url, token=TOKEN, idle_timeout=None)
        sessions = _via_client(client) if provider is None else _via_provider(provider)
        try:
            live, last_rss = await _levels(report, sessions, levels, rate, duration, cpu_per, p99)
        finally:
            if provider is not None:
                await provider.close()
    first, last = levels[0], levels[-1]
    bends = [
        level
        for level in levels
        if cpu_per[level] > CPU_RATIO_TARGET * cpu_per[first] or p99[level] > 1.5 * p99[first]
    ]
    report.figure("bend", bends[0] if bends else 0, "sessions", "0: no bend up to the last level")
    report.target(f"{last} live sessions in one process", live == last, f"{live} open, {via}")
    report.target(
        "<= 64 KiB client RSS per idle session",
        last_rss <= RSS_TARGET,
        f"{last_rss / 1024:.1f} KiB at {last} sessions ({via})",
    )
    ratio = cpu_per[last] / cpu_per[first]
    report.target(
        f"CPU per execute within {CPU_RATIO_TARGET}x from {first} to {last} sessions",
        ratio <= CPU_RATIO_TARGET,
        f"{ratio:.2f}x ({cpu_per[first] * 1e3:.2f} -> {cpu_per[last] * 1e3:.2f} ms, {via})",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="two tiny levels, one second each")
    parser.add_argument("--via", choices=("client", "provider"), help="default: both")
    parser.add_argument("--levels", default="", help="comma-separated session counts")
    parser.add_argument("--rate", type=float, default=None, help="executions per second")
    args = parser.parse_args(argv)
    if args.via is None:
        for via in ("client", "provider"):
            command = [
                sys.executable,
                "-m",
                "bench.sim_scale",
                "--via",
                via,
                *(argv or sys.argv[1:]),
            ]
            subprocess.run(command, check=True)
        return 0
    levels = [int(n) for n in args.levels.split(",") if n] or (
        SMOKE_LEVELS if args.smoke else LEVELS
    )
    rate = args.rate or (50.0 if args.smoke else RATE)
    duration = 1.0 if args.smoke else DURATION
    anyio.run(_run, args.via, levels, rate, duration, args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
