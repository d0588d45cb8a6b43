"""Agents for the load and soak benchmarks: one workload, through Client or the provider.

Strategy: an agent is the gateway's unit of work: start a session, run stateful cells
(``x += 1; print(x)``, each checked: the count is a line of its stdout once
IPython's history-lock notice, which its thread may print into the line, is taken out;
lines the kernel printed itself around it are counted as noise), move a file up and back
(checked byte for byte), stop. ``ClientDriver`` runs it on a shared ``Client`` (one
per process, as a service would); ``ProviderDriver`` through
``JupyterCodeInterpreterProvider``, as the gateway calls it. A ``Tally`` records every
execute's latency and every failure by type; a failure ends that agent, never the run.

Invariants: every kernel an agent started is stopped by the agent (shielded), and its
id is kept in ``Tally.kernels`` so the caller can check the server has none left.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import anyio
import attrs

from jupyter_interp.client import Client
from jupyter_interp.errors import KernelNotFound
from jupyter_interp.provider import JupyterCodeInterpreterProvider
from jupyter_interp.session import Session

__all__ = [
    "ClientDriver",
    "Driver",
    "ProviderDriver",
    "Tally",
    "agents_parser",
    "counting_retries",
    "kernels_left",
    "process_sample",
    "run_agent",
]

CELL = "x += 1; print(x)"
FILE_BYTES = 256 * 1024
#: what IPython's history thread prints into a cell when other kernels hold its SQLite
#: file (see docs/operations.md); from another thread, so it may split the cell's line
HISTORY_LOCKED = re.compile(
    r"The history saving thread hit an unexpected error \(.*?\)\."
    r"History will not be written to the database\.\n?"
)


class WrongAnswer(Exception):
    """A cell printed something else than the count, or a file came back changed."""


@attrs.define
class Tally:
    """What the agents of one run saw."""

    latencies: list[float] = attrs.field(factory=list)
    failures: Counter[str] = attrs.field(factory=Counter)
    examples: dict[str, str] = attrs.field(factory=dict)
    kernels: set[str] = attrs.field(factory=set)
    agents_ok: int = 0
    outcomes: Counter[str] = attrs.field(factory=Counter)
    #: cells whose stdout had lines of the kernel's own before the answer
    noisy: int = 0
    noise_example: str = ""

    def fail(self, error: BaseException) -> None:
        """Count ``error`` by type (an exception group: each of its leaves)."""
        group: tuple[BaseException, ...] | None = getattr(error, "exceptions", None)
        if group:
            for leaf in group:
                self.fail(leaf)
            return
        kind = type(error).__name__
        self.failures[kind] += 1
        self.examples.setdefault(kind, str(error)[:200])

    def describe_failures(self) -> str:
        if not self.failures:
            return "none"
        return "; ".join(
            f"{count}x {kind} ({self.examples[kind]})" for kind, count in self.failures.items()
        )


class Driver(Protocol):
    """One way to drive a session: returns ids and plain values."""

    async def start(self) -> str: ...
    async def execute(self, handle: str, code: str) -> tuple[str, str]: ...
    async def upload(self, handle: str, name: str, data: bytes) -> None: ...
    async def download(self, handle: str, name: str) -> bytes: ...
    async def stop(self, handle: str) -> None: ...
    def kernel_id(self, handle: str) -> str: ...


class ClientDriver:
    """Sessions of one shared ``Client``; ``execute`` answers (status, stdout)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._sessions: dict[str, Session] = {}

    async def start(self) -> str:
        session = await self.client.start_session()
        self._sessions[session.kernel_id] = session
        return session.kernel_id

    async def execute(self, handle: str, code: str) -> tuple[str, str]:
        result = await self._sessions[handle].execute(code, timeout=60)
        return result.status.value, result.stdout

    async def upload(self, handle: str, name: str, data: bytes) -> None:
        await self._sessions[handle].upload(name, data)

    async def download(self, handle: str, name: str) -> bytes:
        return await self._sessions[handle].download(name)

    async def stop(self, handle: str) -> None:
        await self._sessions.pop(handle).shutdown()

    def kernel_id(self, handle: str) -> str:
        return handle


class ProviderDriver:
    """The gateway's calls on one provider; handles are session ids."""

    def __init__(self, provider: JupyterCodeInterpreterProvider) -> None:
        self.provider = provider
        self._kernels: dict[str, str] = {}

    async def start(self) -> str:
        info: dict[str, Any] = await self.provider.start_session()
        self._kernels[info["session_id"]] = info["metadata"]["kernel_id"]
        return str(info["session_id"])

    async def execute(self, handle: str, code: str) -> tuple[str, str]:
        answer = await self.provider.execute(handle, code)
        return str(answer["status"]), str(answer["stdout"])

    async def upload(self, handle: str, name: str, data: bytes) -> None:
        await self.provider.upload_file(handle, name, data)

    async def download(self, handle: str, name: str) -> bytes:
        return await self.provider.download_file(handle, name)

    async def stop(self, handle: str) -> None:
        await self.provider.stop_session(handle)

    def kernel_id(self, handle: str) -> str:
        return self._kernels[handle]


async def run_agent(
    driver: Driver, tally: Tally, *, cells: int, file_bytes: int = FILE_BYTES
) -> None:
    """One agent's workload; its failures go to ``tally``, its kernel is always stopped."""
    try:
        handle = await driver.start()
    except Exception as exc:
        tally.fail(exc)
        return
    tally.kernels.add(driver.kernel_id(handle))
    try:
        await _work(driver, handle, tally, cells, file_bytes)
        tally.agents_ok += 1
    except Exception as exc:
        tally.fail(exc)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(60):
            try:
                await driver.stop(handle)
            except Exception as exc:
                tally.fail(exc)


async def _work(driver: Driver, handle: str, tally: Tally, cells: int, file_bytes: int) -> None:
    status, _ = await driver.execute(handle, "x = 0")
    tally.outcomes[status] += 1
    for expected in range(1, cells + 1):
        began = time.perf_counter()
        status, stdout = await driver.execute(handle, CELL)
        tally.latencies.append(time.perf_counter() - began)
        tally.outcomes[status] += 1
        quiet = HISTORY_LOCKED.sub("", stdout)
        lines = quiet.strip().splitlines()
        if status != "ok" or str(expected) not in lines:
            raise WrongAnswer(f"cell {expected}: {status} {stdout.strip()[:200]!r}")
        noise = [line for line in stdout.strip().splitlines() if line != str(expected)]
        if noise:  # e.g. IPython's history database locked by other kernels
            tally.noisy += 1
            tally.noise_example = tally.noise_example or noise[0][:120]
    if file_bytes:
        data = os.urandom(file_bytes)
        name = f"load-{handle}.bin"  # Client sessions share the server's root directory
        await driver.upload(handle, name, data)
        if await driver.download(handle, name) != data:
            raise WrongAnswer("the file came back changed")


async def kernels_left(client: Client, kernel_ids: set[str]) -> list[str]:
    """Which of ``kernel_ids`` the server still runs (one GET each; gateways do not list)."""
    left: list[str] = []
    for kernel_id in sorted(kernel_ids):
        try:
            await client.get_kernel(kernel_id)
        except KernelNotFound:
            continue
        left.append(kernel_id)
    return left


def agents_parser(description: str | None, *, agents: int, smoke: str) -> argparse.ArgumentParser:
    """The options the load and soak benchmarks share (``--smoke``, ``--agents``, ``--backend``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help=smoke)
    parser.add_argument("--agents", type=int, default=agents)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return parser


def process_sample() -> dict[str, float]:
    """This process's RSS (MiB), open file descriptors and live anyio tasks (Linux)."""
    rss_kib = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return {
        "rss_mib": rss_kib / 1024,
        "fds": float(len(os.listdir("/proc/self/fd"))),
        "tasks": float(len(anyio.get_running_tasks())),
    }


class _RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = 0
        #: the first few retries' warnings: which failure, and how long its attempt took
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("kernel start attempt"):
            self.retries += 1
            if len(self.examples) < 3:
                self.examples.append(message)


@contextmanager
def counting_retries() -> Iterator[_RetryCounter]:
    """Count the kernel starts the client retried (its warnings) inside the block."""
    counter = _RetryCounter()
    logger = logging.getLogger("jupyter_interp.client")
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
