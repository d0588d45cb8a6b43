"""Soak: agents for many minutes, kernels killed and cells interrupted at random; no leak.

Strategy: ``--agents`` agents (default 20) share one ``Client`` on a private Jupyter
Server (TCP kernel transport, loopback only) for ``--minutes`` (default 30). Each agent
opens a session, does a random mix of actions with a short think time, stops it, and
opens the next: a counting cell (most), a file moved up and back, a cell interrupted
by its deadline (``time.sleep`` past ``timeout``), a kernel killed from inside
(``os._exit``; the server restarts it). A sampler records this process's RSS, open file
descriptors and live anyio tasks every ``--interval`` seconds and prints them as curves.

Verdicts (PASS/FAIL lines):

* flat after warm-up: over the samples after the first third of the run (warm-up),
  the least-squares slope times that span, i.e. the drift the line predicts, is at most
  5% of the mean plus a small slack (1 MiB of RSS, 2 fds, 2 tasks);
* no kernel left on the server at the end (it lists its kernels);
* every result typed: each execution ended with a status of ``ExecutionStatus`` and
  each exception raised was a ``JupyterInterpError`` (counted by type, not failures).

``--smoke``: 3 agents for 12 seconds, samples every second.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter

import anyio
import attrs

from jupyter_interp.client import Client
from jupyter_interp.errors import JupyterInterpError
from jupyter_interp.session import Session

from ._agents import agents_parser, process_sample
from ._harness import Report, jupyter_server
from .load import TCP_TRANSPORT

AGENTS = 20
MINUTES = 30.0
#: (action, weight)
ACTIONS = (("count", 80), ("file", 8), ("interrupt", 7), ("kill", 5))
ACTIONS_PER_SESSION = 25
COUNT = "x = globals().get('x', 0) + 1; print(x)"
#: per curve: what "flat" tolerates besides 5% of the mean, and the unit
SLACK = {"rss_mib": (1.0, "MiB"), "fds": (2.0, "fds"), "tasks": (2.0, "tasks")}


@attrs.define
class Soak:
    """What the agents saw and what the sampler measured."""

    statuses: Counter[str] = attrs.field(factory=Counter)
    typed_errors: Counter[str] = attrs.field(factory=Counter)
    untyped: list[str] = attrs.field(factory=list)
    actions: Counter[str] = attrs.field(factory=Counter)
    samples: list[tuple[float, dict[str, float]]] = attrs.field(factory=list)


async def _act(session: Session, action: str, soak: Soak, rng: random.Random) -> None:
    if action == "count":
        result = await session.execute(COUNT, timeout=60)
    elif action == "interrupt":
        result = await session.execute("import time; time.sleep(30)", timeout=0.5)
    elif action == "kill":
        result = await session.execute("import os; os._exit(1)", timeout=60)
    else:
        data = rng.randbytes(64 * 1024)
        name = f"soak-{session.kernel_id}.bin"
        await session.upload(name, data)
        if await session.download(name) != data:
            soak.untyped.append("a file came back changed")
        return
    soak.statuses[result.status.value] += 1


async def _agent(client: Client, soak: Soak, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    names = [name for name, _ in ACTIONS]
    weights = [weight for _, weight in ACTIONS]
    while anyio.current_time() < deadline:
        try:
            async with client.session() as session:
                for _ in range(ACTIONS_PER_SESSION):
                    if anyio.current_time() >= deadline:
                        break
                    action = rng.choices(names, weights)[0]
                    soak.actions[action] += 1
                    await _act(session, action, soak, rng)
                    await anyio.sleep(rng.uniform(0, 0.5))
        except JupyterInterpError as exc:
            soak.typed_errors[type(exc).__name__] += 1
        except Exception as exc:
            soak.untyped.append(f"{type(exc).__name__}: {exc}"[:200])


async def _sampler(soak: Soak, interval: float) -> None:
    started = anyio.current_time()
    while True:
        soak.samples.append((anyio.current_time() - started, process_sample()))
        await anyio.sleep(interval)


def drift(points: list[tuple[float, float]]) -> float:
    """What the least-squares line through ``points`` gains over their time span."""
    times = [t for t, _ in points]
    if len(points) < 2 or max(times) == min(times):
        return 0.0
    slope, _ = statistics.linear_regression(times, [v for _, v in points])
    return slope * (max(times) - min(times))


def _report(report: Report, soak: Soak, left: list[str]) -> None:
    for at, values in soak.samples:
        print(
            f"sample t={at:7.1f}s rss={values['rss_mib']:7.1f} MiB "
            f"fds={values['fds']:4.0f} tasks={values['tasks']:4.0f}",
            flush=True,
        )
    span = soak.samples[-1][0] if soak.samples else 0.0
    after = [(t, v) for t, v in soak.samples if t >= span / 3]
    flat = True
    details = []
    for key, (slack, unit) in SLACK.items():
        points = [(t, v[key]) for t, v in after]
        mean = statistics.fmean(v for _, v in points) if points else 0.0
        gained = drift(points)
        report.figure(f"{key}.drift_after_warmup", gained, unit, f"mean {mean:.1f}")
        flat &= gained <= 0.05 * mean + slack
        details.append(f"{key} {gained:+.2f} (mean {mean:.1f})")
    report.figure("executions", sum(soak.statuses.values()), "")
    print(f"actions: {dict(soak.actions)}", flush=True)
    print(f"execution statuses: {dict(soak.statuses)}", flush=True)
    print(f"typed errors: {dict(soak.typed_errors) or 'none'}", flush=True)
    report.target(
        "RSS, fds and tasks flat after warm-up", flat and len(after) >= 3, "; ".join(details)
    )
    report.target("no kernel left on the server", not left, f"{len(left)} left")
    report.target(
        "every result typed",
        not soak.untyped,
        f"{sum(soak.statuses.values())} results, {sum(soak.typed_errors.values())} typed "
        f"errors; untyped: {soak.untyped[:3] or 'none'}",
    )


async def _run(args: argparse.Namespace) -> None:
    report = Report("soak", smoke=args.smoke)
    agents, seconds, interval = (
        (3, 12.0, 1.0) if args.smoke else (args.agents, args.minutes * 60, args.interval)
    )
    soak = Soak()
    report.figure("agents", agents, "")
    report.figure("minutes", seconds / 60, "min")
    began = time.process_time()
    async with (
        jupyter_server([TCP_TRANSPORT]) as server,
        Client(server.url, token=server.token) as client,
    ):
        deadline = anyio.current_time() + seconds
        async with anyio.create_task_group() as tg:
            tg.start_soon(_sampler, soak, interval)
            async with anyio.create_task_group() as crowd:
                for seed in range(agents):
                    crowd.start_soon(_agent, client, soak, deadline, seed)
            tg.cancel_scope.cancel()
        left = [model.id for model in await client.list_kernels()]
    report.figure("client_cpu", time.process_time() - began, "s")
    _report(report, soak, left)


def main(argv: list[str] | None = None) -> int:
    parser = agents_parser(__doc__, agents=AGENTS, smoke="3 agents, 12 seconds")
    parser.add_argument("--minutes", type=float, default=MINUTES)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args(argv)
    anyio.run(_run, args, backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
