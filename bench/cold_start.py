"""Start-up: the one-shot ``jupyter-interp exec`` on the embedded default, cold each time.

Method: interleaved round by round, with rotating order, each contender is a fresh
process timed from spawn to exit (what a user waits for at a shell prompt):

* ``exec``: ``jupyter-interp exec 'print(1)'`` with no server URL in the environment, so
  it starts its private Jupyter Server, one kernel, runs the cell, shuts both down;
* ``jupyter_execute``: ``jupyter execute`` (nbclient) on a notebook of that one cell: it
  starts the kernel itself over ZMQ, with no server;
* ``exec_shared``: the same ``exec`` once the user has started the shared local server
  (``jupyter-interp server start``, before the race; stopped after it): a fresh kernel
  per command, no server start.

No kernel outlives a round, and no server either but the shared one. After the race,
the same steps run in this process with timers (``where_the_time_goes``): interpreter
start and imports (a separate ``python -c 'import jupyter_interp.cli'``), the server's
start, the kernel's, the cell, the kernel's shutdown and the server's stop. Targets:
``exec`` median <= 0.6x ``jupyter_execute`` median, cold; and the same for
``exec_shared``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import nbformat

from jupyter_interp.local import local_server

from ._harness import Options, Report, embedded_environment, interleave, parse_options

TARGET = 0.6
CELL = "print(1)"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(command: list[str], cwd: Path, state_dir: Path) -> None:
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(command, env=embedded_environment(state_dir), cwd=cwd, check=True, **quiet)


async def _where_the_time_goes(report: Report, rounds: int) -> None:
    """Each step of ``exec``'s path, timed in this process (median of ``rounds``)."""
    steps: dict[str, list[float]] = {}

    def mark(step: str, started: float) -> float:
        now = time.perf_counter()
        steps.setdefault(step, []).append(now - started)
        return now

    for _ in range(rounds):
        started = time.perf_counter()
        await anyio.run_process([sys.executable, "-c", "import jupyter_interp.cli"])
        started = mark("interpreter_and_imports", started)
        async with local_server() as client:
            started = mark("server_start", started)
            session = await client.start_session()
            started = mark("kernel_start", started)
            await session.execute(CELL)
            started = mark("cell", started)
            await session.shutdown()
            started = mark("kernel_shutdown", started)
        mark("server_stop", started)
    for step, values in steps.items():
        report.timing(f"where_the_time_goes.{step}", values)


async def _race(options: Options) -> None:
    report = Report("cold_start", smoke=options.smoke)
    rounds, warmup = (1, 0) if options.smoke else (9, 1)
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as scratch_name:
        scratch = Path(scratch_name)
        notebook = nbformat.v4.new_notebook()
        notebook.cells.append(nbformat.v4.new_code_cell(CELL))
        nbformat.write(notebook, str(scratch / "one.ipynb"))
        no_shared, shared = scratch / "no-shared-server", scratch / "shared-server"
        server = [_bin("jupyter-interp"), "server"]
        runs = {
            "exec": ([_bin("jupyter-interp"), "exec", CELL], no_shared),
            "jupyter_execute": ([_bin("jupyter"), "execute", "one.ipynb"], no_shared),
            "exec_shared": ([_bin("jupyter-interp"), "exec", CELL], shared),
        }
        contenders = {
            name: (
                lambda command=command, state=state: anyio.to_thread.run_sync(
                    _run, command, scratch, state
                )
            )
            for name, (command, state) in runs.items()
        }
        await anyio.to_thread.run_sync(_run, [*server, "start"], scratch, shared)
        try:
            samples = await interleave(contenders, rounds=rounds, warmup=warmup)
        finally:
            await anyio.to_thread.run_sync(_run, [*server, "stop"], scratch, shared)
    medians = {name: report.timing(name, values).median for name, values in samples.items()}
    theirs = medians["jupyter_execute"]
    for name, label in (("exec", "cold"), ("exec_shared", "with the shared server")):
        ratio = medians[name] / theirs
        report.figure(f"{name}.ratio_vs_jupyter_execute", ratio, "x")
        report.target(
            f"one-shot exec ({label}) median <= {TARGET}x jupyter execute",
            ratio <= TARGET,
            f"{ratio:.3f}x ({medians[name] * 1e3:.0f} ms vs {theirs * 1e3:.0f} ms)",
        )
    await _where_the_time_goes(report, 1 if options.smoke else 5)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_race, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
