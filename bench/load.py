"""Load: N agents started at once through Client and through the provider; none fails.

Each agent (``_agents.run_agent``) starts a session, runs ``x += 1; print(x)`` ten
times (each answer checked), uploads and downloads 256 KiB (checked), and stops. All
agents start together: concurrent kernel starts are where servers race for ZMQ ports
(issue #25). Runs on a private Jupyter Server with its default TCP kernel transport,
then on Enterprise Gateway (its defaults) if its venv is built; on each, through one
shared ``Client`` and through ``JupyterCodeInterpreterProvider``.

Prints, per server and path: failures by type, execute latency p50/p99, client CPU per
execute (this process's CPU time over the run; the servers and kernels are other
processes), RSS after the run and its peak, and whether any kernel is left; then one
PASS/FAIL line for "zero failures, no kernel left". ``--smoke``: 3 agents, 3 cells,
16 KiB, Jupyter Server only (seconds). ``--kernel-history memory`` gives the private
Jupyter Server's ipykernels an in-memory IPython history (a fresh ``IPYTHONDIR``), the
setting docs/operations.md recommends; the default, ``file``, is the user's own history
file that every kernel of the server shares. The Jupyter Server's log (its kernels write
their stderr there too) is copied out before the server is stopped, to ``--keep-log``
when given, else to a temporary directory when a phase failed, and its path printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from jupyter_interp.client import Client
from jupyter_interp.provider import JupyterCodeInterpreterProvider

from ._agents import (
    FILE_BYTES,
    ClientDriver,
    Driver,
    ProviderDriver,
    Tally,
    agents_parser,
    counting_retries,
    kernels_left,
    process_sample,
    run_agent,
)
from ._gateways import enterprise_gateway
from ._harness import Report, jupyter_server, peak_rss_over_baseline, reset_peak_rss

AGENTS = 100
CELLS = 10
#: Jupyter Server's default: what users run (our embedded server would pick IPC)
TCP_TRANSPORT = "--KernelManager.transport=tcp"
#: an IPython profile whose kernels keep their history in memory
MEMORY_HISTORY = 'c.HistoryManager.hist_file = ":memory:"\n'


@asynccontextmanager
async def client_driver(url: str, token: str) -> AsyncIterator[Driver]:
    async with Client(url, token=token) as client:
        yield ClientDriver(client)


@asynccontextmanager
async def provider_driver(url: str, token: str) -> AsyncIterator[Driver]:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as file_root:
        provider = JupyterCodeInterpreterProvider(
            base_url=url, token=token, execution_timeout="60", file_root=file_root
        )
        try:
            yield ProviderDriver(provider)
        finally:
            with anyio.CancelScope(shield=True):
                await provider.close()


PATHS = {"client": client_driver, "provider": provider_driver}


async def run_agents(
    driver: Driver, agents: int, cells: int, file_bytes: int
) -> tuple[Tally, float, float]:
    """All agents at once; the tally, the wall time and this process's CPU time."""
    tally = Tally()
    wall, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(agents):
            tg.start_soon(lambda: run_agent(driver, tally, cells=cells, file_bytes=file_bytes))
    return tally, time.perf_counter() - wall, time.process_time() - cpu


async def _measure(
    report: Report, server: str, path: str, url: str, token: str, agents: int, cells: int,
    file_bytes: int,
) -> bool:  # fmt: skip
    """Run one phase and report it; returns whether it passed."""
    name = f"{server}.{path}"
    baseline = reset_peak_rss()
    with counting_retries() as counter:
        async with PATHS[path](url, token) as driver:
            tally, wall, cpu = await run_agents(driver, agents, cells, file_bytes)
        after = process_sample()
    async with Client(url, token=token) as checker:
        left = await kernels_left(checker, tally.kernels)
    report.figure(f"{name}.agents_ok", tally.agents_ok, f"of {agents}")
    report.figure(f"{name}.wall", wall, "s")
    if tally.latencies:
        report.timing(f"{name}.execute", tally.latencies)
        report.figure(f"{name}.client_cpu_per_execute", cpu / len(tally.latencies) * 1e3, "ms")
    report.figure(f"{name}.rss_peak_over_start", peak_rss_over_baseline(baseline) / 2**20, "MiB")
    report.figure(f"{name}.rss_after", after["rss_mib"], "MiB")
    report.figure(f"{name}.fds_after", after["fds"], "")
    report.figure(f"{name}.start_retries", counter.retries, "", "transient start failures absorbed")
    for example in counter.examples:
        report.note(f"{name}.start_retry", example)
    report.figure(f"{name}.kernels_left", len(left), "")
    report.figure(f"{name}.noisy_cells", tally.noisy, "", tally.noise_example or "none")
    passed = not tally.failures and not left and tally.agents_ok == agents
    report.target(
        f"{name}: {agents} concurrent agents, zero failures, no kernel left",
        passed,
        f"{tally.agents_ok}/{agents} ok in {wall:.1f} s; failures: "
        f"{tally.describe_failures()}; kernels left: {len(left)}",
    )
    return passed


def _keep_server_log(pid: int, keep_in: str | None) -> str:
    """Copy the log of the local server ``pid`` (its stderr: the launcher sends it to a
    file in a private directory that is removed with the server); returns the copy."""
    directory = keep_in or tempfile.mkdtemp(prefix="bench-load-log-")
    os.makedirs(directory, exist_ok=True)
    copy = os.path.join(directory, f"jupyter_server-{pid}.log")
    shutil.copyfile(os.readlink(f"/proc/{pid}/fd/2"), copy)
    return copy


@asynccontextmanager
async def _kernel_history(where: str) -> AsyncIterator[dict[str, str]]:
    """The server's extra environment: none, or a fresh ``IPYTHONDIR`` whose kernel
    profile keeps history in memory."""
    if where == "file":
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="bench-load-ipython-") as ipython_dir:
        profile = anyio.Path(ipython_dir) / "profile_default"
        await profile.mkdir()
        await (profile / "ipython_kernel_config.py").write_text(MEMORY_HISTORY)
        yield {"IPYTHONDIR": ipython_dir}


async def _run(args: argparse.Namespace) -> None:
    report = Report("load", smoke=args.smoke)
    agents, cells, file_bytes = (
        (3, 3, 16 * 1024) if args.smoke else (args.agents, CELLS, FILE_BYTES)
    )
    servers = args.servers.split(",")
    if "jupyter_server" in servers:
        async with (
            _kernel_history(args.kernel_history) as env,
            jupyter_server([TCP_TRANSPORT], env) as server,
        ):
            passed = [
                await _measure(
                    report, "jupyter_server_tcp", path, server.url, server.token, agents, cells,
                    file_bytes,
                )
                for path in args.paths.split(",")
            ]  # fmt: skip
            if args.keep_log is not None or not all(passed):
                log = _keep_server_log(server.pid, args.keep_log)
                print(f"note load: the Jupyter Server's log, with its kernels' stderr: {log}")
    gateway_label = f"enterprise_gateway: {agents} concurrent agents, zero failures"
    if args.smoke or "enterprise_gateway" not in servers:
        report.target(gateway_label, None, "skipped (smoke run, or not in --servers)")
        return
    async with enterprise_gateway() as gateway:
        if gateway is None:
            why = "the Enterprise Gateway venv (tests/integration/gateway_env.py) is not built"
            report.target(gateway_label, None, why)
            return
        for path in args.paths.split(","):
            await _measure(
                report, "enterprise_gateway", path, gateway.url, gateway.token, agents, cells,
                file_bytes,
            )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = agents_parser(__doc__, agents=AGENTS, smoke="3 agents, seconds")
    parser.add_argument("--paths", default="client,provider", help="client,provider")
    parser.add_argument("--servers", default="jupyter_server,enterprise_gateway")
    parser.add_argument(
        "--kernel-history",
        choices=("file", "memory"),
        default="file",
        help="the private Jupyter Server's IPython history: the shared file, or in memory",
    )
    parser.add_argument(
        "--keep-log",
        metavar="DIR",
        help="copy the Jupyter Server's log here (else only a failed phase's, to a temp dir)",
    )
    args = parser.parse_args(argv)
    anyio.run(_run, args, backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
