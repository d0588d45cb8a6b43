"""Target 4: client memory while 10 MB of output is printed.

Method: a private Jupyter Server with its IOPub data-rate limit switched off
(``--ZMQChannelsWebsocketConnection.limit_rate=False``; otherwise the server drops most of the
output before any client sees it). A child process (``bench._output_child``, so the
parent's own memory never counts) runs one execution whose kernel prints 10 MB in
64 KiB pieces, each flushed (so it arrives as ~160 stream messages rather than one
message of whatever size the kernel's buffer reached), once with
``OutputBudget(max_stream_bytes=1_000_000)`` and once without a budget. The child
resets its peak RSS right before the execution and reports the peak over that
baseline. Targets: with the 1 MB budget <= 2x the budget; without a budget <= 3x the
output size. Both runs check that the output's size was counted in full.
"""

from __future__ import annotations

import sys

import anyio

from ._harness import Options, Report, jupyter_server, parse_options, run_child

OUTPUT_BYTES = 10 * 1024 * 1024
BUDGET = 1_000_000
RATE_LIMITED = "ZMQChannelsWebsocketConnection"


async def _run(options: Options) -> None:
    report = Report("output", smoke=options.smoke)
    output = 256 * 1024 if options.smoke else OUTPUT_BYTES
    budget = 64 * 1024 if options.smoke else BUDGET
    async with jupyter_server([f"--{RATE_LIMITED}.limit_rate=False"]) as server:
        env = {"BENCH_URL": server.url, "BENCH_TOKEN": server.token}
        for label, cap in (("budget", budget), ("unbounded", None)):
            args = [str(output), "none" if cap is None else str(cap)]
            figures = await run_child("bench._output_child", args, env=env, timeout=600)
            peak = figures["peak_rss"]
            report.figure(f"{label}.peak_rss_over_baseline", peak / 1e6, "MB")
            report.figure(f"{label}.seconds", figures["seconds"], "s")
            report.figure(f"{label}.kept_stdout", figures["kept"] / 1e6, "MB")
            complete = figures["counted"] == output
            if cap is None:
                limit, what = 3 * output, f"<= 3x the output ({3 * output / 1e6:.1f} MB)"
            else:
                limit, what = 2 * cap, f"<= 2x the budget ({2 * cap / 1e6:.1f} MB)"
            report.target(
                f"4 {output / 1e6:.1f} MB printed, {label}: client peak RSS {what}",
                complete and peak <= limit,
                f"+{peak / 1e6:.2f} MB over baseline, {figures['counted']} bytes counted",
            )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    anyio.run(_run, options, backend=options.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
