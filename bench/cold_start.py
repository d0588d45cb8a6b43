"""Start-up: the one-shot ``jupyter-interp exec`` on the embedded default, cold each time.

Method: interleaved round by round, with rotating order, each contender is a fresh
process timed from spawn to exit (what a user waits for at a shell prompt):

* ``exec``: ``jupyter-interp exec 'print(1)'`` with no server URL in the environment, so
  it starts its private Jupyter Server, one kernel, runs the cell, shuts both down;
* ``jupyter_execute``: ``jupyter execute`` (nbclient) on a notebook of that one cell: it
  starts the kernel itself over ZMQ, with no server.

No server or kernel outlives a round. After the race, the same steps run in this process
with timers (``where_the_time_goes``): interpreter start and imports (a separate
``python -c 'import jupyter_interp.cli'``), the server's start, the kernel's, the cell,
the kernel's shutdown and the server's stop. Target: ``exec`` median <= 0.6x
``jupyter_execute`` median.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import nbformat

from jupyter_interp.local import local_server

from ._harness import Options, Report, interleave, parse_options

TARGET = 0.6
CELL = "print(1)"


def _environment() -> dict[str, str]:
    """Ours, without a server to use: both contenders start cold."""
    return {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(command: list[str], cwd: str) -> None:
    subprocess.run(
        command,
        env=_environment(),
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as scratch:
        notebook = nbformat.v4.new_notebook()
        notebook.cells.append(nbformat.v4.new_code_cell(CELL))
        nbformat.write(notebook, str(Path(scratch) / "one.ipynb"))
        commands = {
            "exec": [_bin("jupyter-interp"), "exec", CELL],
            "jupyter_execute": [_bin("jupyter"), "execute", "one.ipynb"],
        }
        contenders = {
            name: (lambda command=command: anyio.to_thread.run_sync(_run, command, scratch))
            for name, command in commands.items()
        }
        samples = await interleave(contenders, rounds=rounds, warmup=warmup)
    medians = {name: report.timing(name, values).median for name, values in samples.items()}
    ratio = medians["exec"] / medians["jupyter_execute"]
    report.figure("ratio_vs_jupyter_execute", ratio, "x")
    ours, theirs = medians["exec"] * 1e3, medians["jupyter_execute"] * 1e3
    report.target(
        f"cold one-shot exec median <= {TARGET}x jupyter execute",
        ratio <= TARGET,
        f"{ratio:.3f}x ({ours:.0f} ms vs {theirs:.0f} ms)",
    )
    await _where_the_time_goes(report, 1 if options.smoke else 5)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_race, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
