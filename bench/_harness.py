"""What every benchmark shares: options, statistics, interleaving, reporting, memory.

Strategy:

* **Interleaving.** ``interleave`` runs the contenders round-robin (A B C, then B C A,
  then C A B, ...) so that noise from other processes on the machine, CPU frequency and
  cache state falls on all of them alike; each sample is one call timed with
  ``time.perf_counter``. Warm-up rounds are run and discarded first.
* **Statistics.** Medians and nearest-rank p99 of the samples; a ratio is ours divided
  by the peer's (below 1 is better for times, above 1 for speeds).
* **Reporting.** One ``figure <name> <value> <unit>`` line per number and one
  ``PASS``/``FAIL``/``NOT-MEASURED`` line per target, flushed at once so ``bench/run``
  can stream them. In smoke mode (``--smoke``: one iteration, tiny sizes) the numbers
  only prove that the benchmark still runs.
* **Memory.** Peak RSS is measured in a child process (``run_child``) so the parent's
  servers and buffers never pollute it: the child resets the kernel's high-water mark
  (``/proc/self/clear_refs``), notes its RSS as the baseline, does the work, and reports
  ``VmHWM`` minus the baseline.

Invariants: every server, kernel and child started here is stopped before the
benchmark returns (``async with`` everywhere, shielded cleanup); only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import attrs

from jupyter_interp.local import LocalJupyterServer, launch_jupyter_server

__all__ = [
    "REPO_ROOT",
    "Options",
    "Report",
    "Stats",
    "embedded_environment",
    "interleave",
    "jupyter_server",
    "parse_options",
    "peak_rss_over_baseline",
    "reset_peak_rss",
    "run_child",
    "stats",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
Contender = Callable[[], Awaitable[object] | object]


@attrs.frozen(kw_only=True)
class Options:
    """Command-line options every benchmark accepts."""

    smoke: bool
    backend: str


def parse_options(description: str, argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="one iteration, tiny sizes")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args(argv)
    return Options(smoke=args.smoke, backend=args.backend)


@attrs.frozen(kw_only=True)
class Stats:
    """Summary of timing samples, in seconds."""

    n: int
    median: float
    p99: float
    mean: float


def stats(samples: Sequence[float]) -> Stats:
    """Median, nearest-rank p99 and mean of ``samples`` (at least one)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.99 * len(ordered)))
    return Stats(
        n=len(ordered),
        median=statistics.median(ordered),
        p99=ordered[rank - 1],
        mean=statistics.fmean(ordered),
    )


async def _call(contender: Callable[[], Any]) -> Any:
    outcome = contender()
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return outcome


async def interleave(
    contenders: Mapping[str, Contender],
    *,
    rounds: int,
    warmup: int,
    after: Mapping[str, Callable[[Any], Awaitable[object]]] | None = None,
) -> dict[str, list[float]]:
    """Time each contender once per round, rotating the order every round.

    Args:
        contenders: name -> a callable (sync or async) doing one timed operation.
        rounds: timed rounds.
        warmup: untimed rounds first.
        after: name -> untimed clean-up, given what the timed call returned.

    Returns:
        Seconds per call, per contender name (warm-up rounds excluded).
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            outcome = await _call(contenders[name])
            elapsed = time.perf_counter() - started
            if after and name in after:
                await after[name](outcome)
            if index >= warmup:
                samples[name].append(elapsed)
    return samples


class Report:
    """Prints figures and target verdicts as they are known."""

    def __init__(self, bench: str, *, smoke: bool) -> None:
        self.bench = bench
        self.smoke = smoke
        self.verdicts: list[tuple[str, bool | None]] = []

    def figure(self, name: str, value: float, unit: str, note: str = "") -> None:
        if isinstance(value, float):
            text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        else:
            text = str(value)
        suffix = f"  ({note})" if note else ""
        print(f"figure {self.bench}.{name} {text} {unit}{suffix}", flush=True)

    def note(self, name: str, text: str) -> None:
        """A line of context for a figure (what happened, not a measurement)."""
        print(f"note {self.bench}.{name}: {text}", flush=True)

    def timing(self, name: str, samples: Sequence[float]) -> Stats:
        """Print median and p99 (milliseconds) of ``samples``; return them."""
        summary = stats(samples)
        self.figure(f"{name}.median", summary.median * 1e3, "ms", f"n={summary.n}")
        self.figure(f"{name}.p99", summary.p99 * 1e3, "ms")
        return summary

    def target(self, label: str, passed: bool | None, detail: str) -> None:
        """One verdict line; ``passed=None`` means the target could not be measured."""
        word = "NOT-MEASURED" if passed is None else ("PASS" if passed else "FAIL")
        if self.smoke and passed is not None:
            detail += "; smoke run: not a measurement"
        self.verdicts.append((label, passed))
        print(f"{word} {self.bench}: {label}: {detail}", flush=True)


@asynccontextmanager
async def jupyter_server(
    extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> AsyncIterator[LocalJupyterServer]:
    """A private Jupyter Server on 127.0.0.1 (this interpreter's kernelspecs), stopped after;
    ``env`` is layered over this process's environment for the server and its kernels."""
    async with launch_jupyter_server(extra_args=extra_args, env=env, startup_timeout=120) as server:
        yield server


# -- memory (Linux /proc; getrusage elsewhere) ------------------------------------------


def embedded_environment(state_dir: Path) -> dict[str, str]:
    """This environment without a server URL or token, and with ``state_dir`` (empty
    unless the benchmark starts the shared server there) for the shared local server's
    state: a ``jupyter-interp`` command run with it starts the embedded server, whatever
    the user has running."""
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_URL", "JUPYTER_TOKEN")}
    env["JUPYTER_INTERP_STATE_DIR"] = str(state_dir)
    return env


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> int:
    """Reset the peak-RSS mark where the OS allows it; return the current RSS in bytes."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    current = _status_kib("VmRSS")
    if current is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return current * 1024


def peak_rss_over_baseline(baseline: int) -> int:
    """Peak RSS since ``reset_peak_rss`` minus its ``baseline``, in bytes."""
    peak = _status_kib("VmHWM")
    if peak is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    return peak * 1024 - baseline


async def run_child(
    module: str, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float
) -> dict[str, Any]:
    """Run ``python -m <module> <args>`` and return the JSON object on its last stdout line.

    Secrets go through ``env``, never ``args`` (``ps`` shows command lines).

    Raises:
        RuntimeError: the child failed or printed no JSON (its stderr tail is included).
    """
    command = [sys.executable, "-m", module, *args]
    with anyio.fail_after(timeout):
        done = await anyio.run_process(
            command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, check=False
        )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.decode(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{module} child exited with {done.returncode}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
