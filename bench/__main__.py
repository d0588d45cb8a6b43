"""Run every benchmark in its own process and sum up the verdicts (``bench/run``).

Usage: ``python -m bench [--smoke] [--strict] [--only NAME,...]``. Each benchmark runs
as ``python -m bench.<name>`` (its own servers, its own memory), its lines are streamed
as they come, and a summary of every ``PASS``/``FAIL``/``NOT-MEASURED`` line follows.

Exit status: 1 if a benchmark crashed (or, with ``--strict``, if a target failed),
else 0. Smoke runs (one iteration, tiny sizes) prove the benchmarks still run; their
verdicts are not measurements, so CI should run ``bench/run --smoke`` without
``--strict``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHMARKS = (
    "core",
    "latency",
    "session_start",
    "cold_start",
    "transfer",
    "output",
    "scale",
    "sim_scale",
    "mcp_start",
    "mcp_latency",
    "load",
    "soak",
)
VERDICTS = ("PASS ", "FAIL ", "NOT-MEASURED ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one iteration, tiny sizes")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args(argv)
    chosen = [name for name in args.only.split(",") if name] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    verdicts: list[str] = []
    crashed: list[str] = []
    started = time.monotonic()
    for name in chosen:
        print(f"== bench.{name}", flush=True)
        command = [sys.executable, "-m", f"bench.{name}", *(["--smoke"] if args.smoke else [])]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
            assert process.stdout is not None
            for line in process.stdout:
                print(line, end="", flush=True)
                if line.startswith(VERDICTS):
                    verdicts.append(line.rstrip("\n"))
        if process.returncode != 0:
            crashed.append(name)
            print(f"!! bench.{name} exited with {process.returncode}", flush=True)
    print(f"== summary ({time.monotonic() - started:.0f} s{', smoke' if args.smoke else ''})")
    for line in verdicts:
        print(line)
    failed = [line for line in verdicts if line.startswith("FAIL ")]
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
        return 1
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
