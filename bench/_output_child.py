"""Child process of ``bench.output``: one execution printing a lot, with its peak RSS.

Usage: ``python -m bench._output_child OUTPUT_BYTES BUDGET|none`` with ``BENCH_URL``
and ``BENCH_TOKEN`` in the environment. Prints one JSON line: peak RSS over the
baseline taken right before the execution, seconds, the stdout size the result counted
and the size of the stdout text it kept.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

import anyio

from jupyter_interp.client import Client
from jupyter_interp.protocol.budget import OutputBudget

from ._harness import peak_rss_over_baseline, reset_peak_rss

PIECE = 64 * 1024
CODE = """\
import sys
piece = "x" * {piece_chars} + "\\n"
for _ in range({pieces}):
    sys.stdout.write(piece)
    sys.stdout.flush()
sys.stdout.write("x" * {rest})
"""


async def _run(output: int, cap: int | None) -> dict[str, object]:
    pieces, rest = divmod(output, PIECE)
    code = CODE.format(piece_chars=PIECE - 1, pieces=pieces, rest=rest)
    budget = OutputBudget(max_stream_bytes=cap)
    client = Client(os.environ["BENCH_URL"], token=os.environ["BENCH_TOKEN"], output_budget=budget)
    async with client, client.session() as session:
        warm = await session.execute(CODE.format(piece_chars=PIECE - 1, pieces=4, rest=0))
        del warm
        gc.collect()
        baseline = reset_peak_rss()
        started = time.perf_counter()
        result = await session.execute(code)
        seconds = time.perf_counter() - started
        peak = peak_rss_over_baseline(baseline)
    if not result.ok:
        raise RuntimeError(f"the printing execution failed: {result.describe()}")
    return {
        "peak_rss": peak,
        "seconds": seconds,
        "counted": result.stdout_size,
        "kept": len(result.stdout),
    }


def main() -> int:
    output = int(sys.argv[1])
    cap = None if sys.argv[2] == "none" else int(sys.argv[2])
    print(json.dumps(anyio.run(_run, output, cap)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
