"""Target 1: execute round trip (``pass`` and ``1+1``), sequential, median.

Method: one process starts a private Jupyter Server and local kernels of the same
kernelspec for jupyter_client, then times, interleaved round by round, one execution by:

* ``jupyter_interp``: ``Session.execute`` through the server (v1 subprotocol);
* ``jupyter_client_zmq``: jupyter_client over ZMQ straight to its kernels (no server);
* ``websockets`` (asyncio only): a plain ``websockets`` client through the same server,
  timed in a separate interleaved run against ``jupyter_interp`` alone: in the same
  rotation, whichever contender ran right after its 45 ms calls (jupyter_interp, three
  rounds in four) came out 0.3-0.6 ms slower;
* ``io_floor``: this library's WebSocket adapter and codec alone, no Session
  (``peers.RawKernel``): the difference to ``jupyter_interp`` is what the Session costs.

Each call counts from sending the request until both the execute_reply and the ``idle``
status are in. The target is ``jupyter_interp`` median <= 1.25x the ZMQ median. The
asyncio phase and the trio phase each start their own server and kernels. When the
Enterprise Gateway test venv exists (``tests/integration/gateway_env.py``), the same
comparison runs through Enterprise Gateway too, against a ZMQ kernel of the gateway
venv's own interpreter and ipykernel. Smoke runs do the asyncio phase only, without
the gateway.

Each contender runs on two kernels of its own, one call on each in turn: how the
scheduler places one kernel process on the two cores moved one contender's median by
up to 12 % for a whole run while the others kept theirs (a 1.33x run whose io_floor,
through the same gateway, sat at 1.18x). A blocking raw-socket client (no event loop,
its own minimal framing) measured the same medians as ``io_floor`` through Jupyter
Server and Enterprise Gateway alike, so what remains above ZMQ is the server's hop.

Each server's first kernel is started first and left idle, unmeasured: a server's
first kernel ran 0.15-0.4 ms slower per execution than the kernels started after it
(two io_floor kernels side by side, Jupyter Server, both backends; the cause is in the
server and was not found), so the contender that got it (always jupyter_interp) lost
that much.
"""

from __future__ import annotations

import importlib.util
import itertools
import statistics
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial

import anyio

from jupyter_interp.client import Client
from jupyter_interp.session import Session

from ._gateways import enterprise_gateway
from ._harness import Contender, Options, Report, interleave, jupyter_server, parse_options
from .peers import ZmqKernel, raw_starter, websockets_kernel, zmq_kernel

TARGET_RATIO = 1.25
CODES = {"pass": "pass", "one_plus_one": "1+1"}
_TCP_KERNELS = ("--KernelManager.transport=tcp",)


def _alternating(*calls: Contender) -> Contender:
    """One of ``calls`` per call, in turn (see the module docstring)."""
    turns = itertools.cycle(calls)
    return lambda: next(turns)()


def _ours(session: Session, code: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        result = await session.execute(code)
        if not result.ok:
            raise RuntimeError(f"jupyter_interp execution failed: {result.status}")

    return run


def _zmq(kernel: ZmqKernel, code: str) -> Callable[[], None]:
    def run() -> None:
        reply = kernel.execute(code)
        if reply["content"]["status"] != "ok":
            raise RuntimeError("jupyter_client execution failed")

    return run


async def _compare(
    report: Report,
    where: str,
    contenders_for: Callable[[str], dict[str, Contender]],
    *,
    rounds: int,
    warmup: int,
    plain_for: Callable[[str], Contender] | None = None,
) -> None:
    for label, code in CODES.items():
        contenders = contenders_for(code)
        samples = await interleave(contenders, rounds=rounds, warmup=warmup)
        if plain_for is not None:  # apart: see the module docstring
            pair = {"jupyter_interp": contenders["jupyter_interp"], "websockets": plain_for(code)}
            paired = await interleave(pair, rounds=rounds, warmup=warmup)
            samples["websockets"] = paired["websockets"]
        medians = {
            name: report.timing(f"{where}.{label}.{name}", values).median
            for name, values in samples.items()
        }
        ratio = medians["jupyter_interp"] / medians["jupyter_client_zmq"]
        report.figure(f"{where}.{label}.ratio_vs_zmq", ratio, "x")
        if "io_floor" in medians:
            report.figure(
                f"{where}.{label}.io_floor_ratio_vs_zmq",
                medians["io_floor"] / medians["jupyter_client_zmq"],
                "x",
            )
        if plain_for is not None:
            gain = medians["websockets"] / statistics.median(paired["jupyter_interp"])
            report.figure(f"{where}.{label}.websockets_over_ours", gain, "x")
        report.target(
            f"1 {where} {code!r} median <= {TARGET_RATIO}x jupyter_client/ZMQ",
            ratio <= TARGET_RATIO,
            f"{ratio:.2f}x ({medians['jupyter_interp'] * 1e3:.2f} ms vs "
            f"{medians['jupyter_client_zmq'] * 1e3:.2f} ms)",
        )


async def _phase(options: Options, backend: str) -> None:
    report = Report(f"latency.{backend}", smoke=options.smoke)
    rounds, warmup = (1, 1) if options.smoke else (200, 20)
    async with AsyncExitStack() as stack:
        zmqs = [await stack.enter_async_context(zmq_kernel()) for _ in range(2)]
        # TCP to the kernels like the ZMQ peer's, though the embedded default's IPC
        # measured the same (5.09 vs 5.01 ms asyncio, 6.12 vs 6.20 ms trio)
        server = await stack.enter_async_context(jupyter_server(_TCP_KERNELS))
        starter = await stack.enter_async_context(raw_starter(server.url, server.token))
        await starter.start()  # the unmeasured first kernel (see the docstring)
        client = await stack.enter_async_context(Client(server.url, token=server.token))
        sessions = [await stack.enter_async_context(client.session()) for _ in range(2)]
        plain = None
        if backend == "asyncio" and importlib.util.find_spec("websockets") is not None:
            plain = await stack.enter_async_context(websockets_kernel(server.url, server.token))
        elif backend == "asyncio":
            print("note: websockets is not installed; its contender is left out", flush=True)
        floors = [await starter.start() for _ in range(2)]

        def contenders(code: str) -> dict[str, Contender]:
            return {
                "jupyter_interp": _alternating(*(_ours(s, code) for s in sessions)),
                "jupyter_client_zmq": _alternating(*(_zmq(z, code) for z in zmqs)),
                "io_floor": _alternating(*(partial(f.execute, code) for f in floors)),
            }

        plain_for = None if plain is None else (lambda code: lambda: plain.execute(code))
        await _compare(
            report,
            "jupyter_server",
            contenders,
            rounds=rounds,
            warmup=warmup,
            plain_for=plain_for,
        )

        gateway = None
        if not options.smoke:  # a gateway start alone would blow the smoke run's budget
            gateway = await stack.enter_async_context(enterprise_gateway())
        if gateway is None:
            why = (
                "skipped in smoke runs"
                if options.smoke
                else ("the Enterprise Gateway venv (tests/integration/gateway_env.py) is not built")
            )
            report.target(
                f"1 enterprise_gateway median <= {TARGET_RATIO}x jupyter_client/ZMQ", None, why
            )
            return
        eg_zmqs = [
            await stack.enter_async_context(zmq_kernel(python=gateway.python)) for _ in range(2)
        ]
        eg_starter = await stack.enter_async_context(raw_starter(gateway.url, gateway.token))
        await eg_starter.start()  # the unmeasured first kernel
        eg_client = await stack.enter_async_context(Client(gateway.url, token=gateway.token))
        eg_sessions = [await stack.enter_async_context(eg_client.session()) for _ in range(2)]
        eg_floors = [await eg_starter.start() for _ in range(2)]

        def eg_contenders(code: str) -> dict[str, Contender]:
            return {
                "jupyter_interp": _alternating(*(_ours(s, code) for s in eg_sessions)),
                "jupyter_client_zmq": _alternating(*(_zmq(z, code) for z in eg_zmqs)),
                "io_floor": _alternating(*(partial(f.execute, code) for f in eg_floors)),
            }

        await _compare(report, "enterprise_gateway", eg_contenders, rounds=rounds, warmup=warmup)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(__doc__ or "", argv)
    for backend in ("asyncio",) if options.smoke else ("asyncio", "trio"):
        anyio.run(_phase, options, backend, backend=backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
